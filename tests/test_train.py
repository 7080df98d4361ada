"""bnnlib.train / bnnlib.train_config: records, determinism, exact resume, divergence, validation."""
import json

import pytest
import torch

from bnnlib import records
from bnnlib.train import StopTraining, TrainConfig, _set_real_weights, build_model, main, train

TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic", device="cpu",
            synthetic_train=352, synthetic_test=90, val_size=96, batch_size=64, epochs=2,
            threads=1, seed=0)


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One uninterrupted tiny BNN run shared by several tests."""
    out = tmp_path_factory.mktemp("base")
    return train(tiny(save_weights=True), out), out


def test_record_has_contract_keys(base_run):
    rec, out = base_run
    for k in ("status", "config", "config_hash", "seed", "dataset", "metrics", "complexity",
              "timings", "versions", "git_commit", "device", "weights_sha256"):
        assert k in rec, k
    assert rec["status"] == "finished" and rec["config_hash"] == records.config_hash(tiny(save_weights=True))
    assert json.loads((out / "record.json").read_text()) == rec
    m = rec["metrics"]
    for k in ("final_test_acc", "best_val_acc", "best_epoch", "test_acc_at_best_val", "final_val_acc"):
        assert m[k] is not None, k
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    assert set(m["epochs"][0]) >= {"epoch", "train_loss", "train_acc", "val_acc", "test_acc", "lr", "time_s"}
    assert rec["dataset"]["name"] == "synthetic" and rec["dataset"]["note"]
    assert rec["complexity"]["params"] > 0 and rec["timings"]["images_per_s"] > 0
    assert not (out / "checkpoint.pt").exists()


def test_test_set_fully_scored_and_best_epoch_from_validation(base_run):
    m = base_run[0]["metrics"]
    n_test, n_val = base_run[0]["dataset"]["n_test"], base_run[0]["dataset"]["n_val"]
    for e in m["epochs"]:  # accuracies are whole numbers of the 90 test / 96 val images
        assert abs(e["test_acc"] * n_test / 100 - round(e["test_acc"] * n_test / 100)) < 1e-9
        assert abs(e["val_acc"] * n_val / 100 - round(e["val_acc"] * n_val / 100)) < 1e-9
    vals = [e["val_acc"] for e in m["epochs"]]
    best = vals.index(max(vals))
    assert m["best_epoch"] == best + 1 and m["best_val_acc"] == vals[best]
    assert m["test_acc_at_best_val"] == m["epochs"][best]["test_acc"]
    assert m["final_test_acc"] == m["epochs"][-1]["test_acc"]


def test_lr_anneals_to_zero_with_cosine(base_run):
    lrs = [e["lr"] for e in base_run[0]["metrics"]["epochs"]]
    assert 0 < lrs[0] < 0.1 and lrs[-1] < 0.02  # last step is one step before zero


def test_saved_weights_match_hash(base_run):
    rec, out = base_run
    sd = torch.load(out / "weights.pt")
    assert records.weights_sha256(sd) == rec["weights_sha256"]


def test_same_seed_bit_identical_other_seed_differs(base_run, tmp_path):
    again = train(tiny(), tmp_path / "a")
    assert again["weights_sha256"] == base_run[0]["weights_sha256"]
    assert again["metrics"]["epochs"][1]["train_loss"] == base_run[0]["metrics"]["epochs"][1]["train_loss"]
    other = train(tiny(seed=1, epochs=1), tmp_path / "b")
    assert other["weights_sha256"] != base_run[0]["weights_sha256"]


def test_kill_and_resume_is_bit_identical(base_run, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(StopTraining):
        train(tiny(stop_after_epoch=1), out)
    assert (out / "checkpoint.pt").exists() and not (out / "record.json").exists()
    rec = train(tiny(), out, resume=True)
    assert rec["weights_sha256"] == base_run[0]["weights_sha256"]
    strip = lambda m: [{k: v for k, v in e.items() if k != "time_s"} for e in m["epochs"]]
    assert strip(rec["metrics"]) == strip(base_run[0]["metrics"])
    assert rec["timings"]["resumed"] is True
    assert train(tiny(), out, resume=True)["created_utc"] == rec["created_utc"]  # done: no rerun


def test_two_step_resume_at_the_phase_boundary_is_bit_identical(tmp_path):
    c = tiny(two_step=True, synthetic_train=160)  # phase 1 = epoch 1, phase 2 = epoch 2
    ref = train(c, tmp_path / "ref")
    with pytest.raises(StopTraining):
        train(c.replace(stop_after_epoch=1), tmp_path / "r")
    assert train(c, tmp_path / "r", resume=True)["weights_sha256"] == ref["weights_sha256"]


def test_resume_refuses_checkpoint_of_another_config(tmp_path):
    with pytest.raises(StopTraining):
        train(tiny(stop_after_epoch=1), tmp_path)
    with pytest.raises(ValueError, match="resume"):
        train(tiny(lr=0.05), tmp_path, resume=True)


def test_divergence_recorded_with_step(tmp_path):
    rec = train(tiny(binary=False, lr=1e30), tmp_path)
    assert rec["status"] == "diverged"
    assert rec["diverged_at"]["epoch"] in (1, 2) and 1 <= rec["diverged_at"]["step"] <= 8
    assert rec["metrics"]["final_test_acc"] is None
    assert records.read_json(tmp_path / "record.json")["status"] == "diverged"


def test_eval_test_at_end_scores_final_and_best(tmp_path):
    rec = train(tiny(eval_test="end", epochs=3), tmp_path)
    m = rec["metrics"]
    scored = [e["epoch"] for e in m["epochs"] if e["test_acc"] is not None]
    assert 3 in scored and m["best_epoch"] in scored and len(scored) <= 2
    assert m["test_acc_at_best_val"] is not None


def test_two_step_swaps_weight_binarizers_and_restores():
    model = build_model(tiny())
    convs = [m for m in model.modules() if hasattr(m, "weight_binarizer") and m.is_binary]
    saved = {}
    _set_real_weights(model, True, saved)
    assert convs and not any(m.is_binary for m in convs)
    _set_real_weights(model, False, saved)
    assert all(m.is_binary for m in convs) and not saved


def test_two_step_and_distillation_runs(tmp_path):
    from bnnlib.models import create_model
    torch.manual_seed(5)  # an untrained teacher is enough to exercise the distillation path
    torch.save(create_model("resnet20", binary=False).state_dict(), tmp_path / "teacher.pt")
    rec = train(tiny(two_step=True, teacher_model="resnet20",
                     teacher_weights=str(tmp_path / "teacher.pt"),
                     distill_weight=0.5, distill_temperature=2.0, synthetic_train=160),
                tmp_path / "student")
    assert rec["status"] == "finished" and len(rec["metrics"]["epochs"]) == 2
    plain = train(tiny(two_step=True, synthetic_train=160), tmp_path / "plain")
    assert rec["weights_sha256"] != plain["weights_sha256"]


def test_init_weights_and_spec_dict(tmp_path, base_run):
    _, out = base_run
    model = build_model(tiny(init_weights=str(out / "weights.pt")))
    assert records.weights_sha256(model.state_dict()) == base_run[0]["weights_sha256"]
    from bnnlib.spec import spec_to_dict
    cfg = tiny(spec=spec_to_dict(model.spec), width_mult=1.0, depth_div=1.0)
    assert cfg.build_spec() == model.spec


def test_batch_larger_than_train_set_rejected(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        train(tiny(batch_size=1024), tmp_path)


def test_cli_parses_flags_and_trains(tmp_path, capsys):
    args = ["--out", str(tmp_path)] + [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()
                                       if k != "epochs"] + ["--epochs", "1", "--binary"]
    assert main(args) == 0
    assert records.read_json(tmp_path / "record.json")["status"] == "finished"
    assert "finished" in capsys.readouterr().out


def test_no_cuda_device_rejected(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="device"):
        train(tiny(device="cuda"), tmp_path)


def test_evaluate_uses_eval_mode_and_leaves_bn_stats_alone():
    from bnnlib.data import resolve_dataset
    from bnnlib.train import evaluate
    cfg = tiny()
    model = build_model(cfg)
    d = resolve_dataset("synthetic", val_size=32, synthetic_train=288, synthetic_test=90)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = evaluate(model, d.x_test, d.y_test, cfg, "cpu")
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert evaluate(model, d.x_test, d.y_test, cfg.replace(eval_batch_size=7), "cpu") == a


def test_bf16_autocast_and_channels_last_paths_run_on_cpu(tmp_path):
    rec = train(tiny(amp="bf16", channels_last=True, epochs=1), tmp_path)
    assert rec["status"] == "finished" and rec["metrics"]["final_test_acc"] is not None


@pytest.mark.slow  # torch.compile needs a C++ build: a minute or more on 2 cores
def test_compiled_run_matches_eager_closely(tmp_path):
    a = train(tiny(binary=False, epochs=1), tmp_path / "eager")
    b = train(tiny(binary=False, epochs=1, compile=True), tmp_path / "compiled")
    assert b["metrics"]["epochs"][0]["train_loss"] == pytest.approx(
        a["metrics"]["epochs"][0]["train_loss"], rel=1e-3)


@pytest.mark.slow  # three compiled runs: several minutes on 2 busy cores
def test_compiled_bnn_rerun_and_resume_are_bit_identical(tmp_path):
    """The cpu presets train their BNNs compiled and resume them from checkpoints across
    sessions: a rerun and a kill-and-resume must give the same weights as one whole run."""
    c = tiny(compile=True)
    ref = train(c, tmp_path / "ref")
    assert train(c, tmp_path / "again")["weights_sha256"] == ref["weights_sha256"]
    with pytest.raises(StopTraining):
        train(c.replace(stop_after_epoch=1), tmp_path / "r")
    rec = train(c, tmp_path / "r", resume=True)
    assert rec["timings"]["resumed"] is True and rec["weights_sha256"] == ref["weights_sha256"]
