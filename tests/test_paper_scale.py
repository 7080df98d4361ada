"""Paper scale (issue 11): speed options reach TrainConfig from presets, the paper gain-surface
grid builds, plans cost presets from the table (with its sources), DWR chains run through the
sweep executors, notebooks have no per-cell limit by default."""
import json
import shutil

import pytest

from analysis import cost, sweep
from analysis.dwr import study as DS
from analysis.gain_surface import study as gs
from bnnlib.spec import ResNetSpec, spec_to_dict
from bnnlib.train_config import TrainConfig

SPEED = {"amp": "bf16", "channels_last": True, "compile": True, "compile_mode": "reduce-overhead",
         "deterministic": True}


@pytest.mark.slow  # counts OPs of ~50 shapes: 10-60 s on 2 busy cores
def test_paper_gain_surface_grid_builds_and_speed_options_reach_every_config():
    p = {**gs.load_preset("paper"), "dataset": "cifar10", **SPEED}
    cfgs = gs.study_configs(p)  # the first paper grid failed here: width_mult 0.8566 < stem
    assert len(cfgs) == 144 and {c.epochs for c in cfgs} == {200}
    assert all(all(getattr(c, k) == v for k, v in SPEED.items()) for c in cfgs)


def _one_shape(monkeypatch):
    """Replace the grid (its OPs fit counts ~20 nets: slow) by one small shape."""
    spec = gs.shape_spec("resnet20", 1, 0.5, 0.5).replace(binary=False)
    shape = gs.Shape(depth=1, width_mult=0.5, spec=spec, precisions=["fp", "bnn"])
    monkeypatch.setattr(gs, "make_grid", lambda *a, **k: [shape])


def test_speed_options_reach_gain_surface_configs_from_a_preset(monkeypatch):
    from analysis.notebooks import resolve
    _one_shape(monkeypatch)
    cfgs = gs.study_configs({**resolve("gain_surface", "test"), **SPEED})
    assert len(cfgs) == 2 and all(all(getattr(c, k) == v for k, v in SPEED.items()) for c in cfgs)
    plain = gs.study_configs(resolve("gain_surface", "test"))
    assert not any(c.compile or c.amp != "none" or c.deterministic for c in plain)  # off by default


def test_speed_options_reach_dwr_configs_and_defaults_stay_out():
    preset = {"seeds": [0], "epochs": 1, "pretrain_epochs": 1, "calib_images": 8,
              "dataset": "synthetic", "amp": "none", "compile": False}
    assert "amp" not in DS.train_kw(preset) and "compile" not in DS.train_kw(preset)  # defaults
    cfgs = DS.plan_configs(DS.jobs("table4", {**preset, **SPEED}), {**preset, **SPEED})
    assert cfgs and all(c.compile and c.amp == "bf16" and c.deterministic for c in cfgs)
    assert sweep.speed_options({"amp": None, "compile": True, "lr": 1}) == {"compile": True}


def test_cost_estimate_packs_by_seed_and_labels_quoted_numbers():
    base = TrainConfig(model="resnet20", dataset="synthetic", epochs=10, val_size=5000)
    cfgs = [base.replace(seed=s) for s in range(3)] + [base.replace(binary=False)]
    one, packed = cost.estimate(cfgs), cost.estimate(cfgs, pack=3, gpus=2)
    assert one["runs"] == packed["runs"] == 4 and one["epochs"] == 40
    assert one["gpu_hours"] == pytest.approx(4 * 10 * 7.6 / 3600)  # the quoted eager row, ResNet-20
    assert packed["gpu_hours"] == pytest.approx(2 * 10 * 7.6 / 3600)  # one pack of 3 + one single
    assert packed["wall_hours"] == pytest.approx(packed["gpu_hours"] / 2)
    text = cost.describe()
    assert "quoted, not measured here" in text and "Assumed" in text
    with pytest.raises(ValueError, match="^gpus: got"):
        cost.estimate(cfgs, gpus=0)


def test_plan_cli_prints_estimate_and_refuses_a_bad_grid_in_one_line(capsys, monkeypatch):
    from analysis.gain_surface.__main__ import load_preset, main
    _one_shape(monkeypatch)
    assert main(["plan", "--preset", "test", "--gpus", "2"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours" in out and "on 2 GPUs" in out and "quoted, not measured here" in out
    monkeypatch.undo()
    bad = {**load_preset("test"), "stem_mult": 4.0}
    monkeypatch.setattr("analysis.gain_surface.__main__.load_preset", lambda name: bad)
    assert main(["plan", "--preset", "test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: width_mult: got") and err.count("\n") == 1


def test_dwr_jobs_run_through_the_sweep_executors(tmp_path, monkeypatch):
    calls = []
    real = sweep.run_sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda cfgs, root, **kw: calls.append(len(cfgs)) or real(cfgs, root, **kw))
    tiny = ResNetSpec.uniform((2, 2), (8, 16), stem_width=8, block="bireal", shortcut="pad")
    kw = {"dataset": "synthetic", "synthetic_train": 240, "synthetic_test": 40, "val_size": 60,
          "batch_size": 32, "device": "cpu", "threads": 1, "eval_test": "end", "progress": False}
    preset = {"seeds": [0], "epochs": 1, "pretrain_epochs": 1, "calib_images": 24, "pack": 2, **kw}
    jobs = [{"kind": "train", "spec": tiny, "label": None, "table": "t", "key": "a", "row_id": "tiny/a", "seed": 0},
            {"kind": "dwr", "original": tiny, "s": 2.0, "start": None, "pretrain": None, "table": "t",
             "key": "b", "row_id": "tiny/b", "seed": 0}]
    out = DS.run_jobs(jobs, preset, tmp_path)
    assert [o[2] for o in out] == ["finished", "finished"] and calls == [2, 1]  # stage 1, then finals
    assert DS.run_jobs(jobs, preset, tmp_path, shard="1/2") == out[1:]  # done: read back, no training
    assert calls == [2, 1, 1]
    # a chain whose pre-training is done goes straight to the first stage with its final
    # training (no worker waits for the other runs of stage 1); a lost final run is retrained
    final = DS.run_job(jobs[1], preset, tmp_path, lookup=True)
    shutil.rmtree(tmp_path / "runs" / final["config_hash"])
    assert DS.run_jobs(jobs, preset, tmp_path) == out and calls == [2, 1, 1, 2]


@pytest.mark.parametrize("status,weights,need,done", [
    ("finished", False, False, True), ("diverged", False, False, True),
    ("finished", False, True, False), ("finished", True, True, True), ("running", True, True, False)])
def test_done_run_is_the_one_check_for_a_finished_run(tmp_path, status, weights, need, done):
    """``dwr run``'s first stage and ``pipeline.run_config`` decide 'already trained' alike:
    a finished or diverged record, and saved weights where the next stage prunes them."""
    from analysis.dwr import pipeline as D
    from bnnlib import records
    cfg = TrainConfig(spec=spec_to_dict(ResNetSpec.uniform((1,), (8,), stem_width=8)), epochs=1,
                      dataset="synthetic")
    out = tmp_path / "runs" / records.config_hash(cfg)
    out.mkdir(parents=True)
    (out / "record.json").write_text(json.dumps({"status": status, "config_hash": records.config_hash(cfg)}))
    if weights:
        (out / "weights.pt").write_bytes(b"w")
    assert (D.done_run(cfg, tmp_path, need_weights=need) is not None) is done


def test_notebooks_have_no_per_cell_limit_by_default():
    from analysis import notebooks
    assert notebooks.DEFAULT_TIMEOUT is None


def test_error_accumulation_trainings_go_through_the_sweep_executors(tmp_path, monkeypatch):
    from analysis.error_accumulation import study as EA
    from bnnlib import records
    seen = []
    real = sweep.run_sweep
    monkeypatch.setattr(sweep, "run_sweep", lambda cfgs, root, *a, **k: seen.append((len(cfgs), a)) or real(cfgs, root, *a, **k))
    cfgs = [EA.make_config(backbone="vgg", blocks=1, width=4, trained_epochs=e, train_subset=256,
                           val_size=200, dataset="synthetic", batch_size=8, ks=(4.0,)) for e in (0, 1)]
    recs = EA.run_study(cfgs, tmp_path, log=None, executor="packed")
    assert seen == [(1, ("packed", None, None))] and recs[1]["training"]["status"] == "finished"
    tc = EA.train_config(cfgs[1])
    assert (tmp_path / "train" / records.config_hash(tc) / "record.json").is_file()
    assert EA.train_config(cfgs[0]) is None
    EA.run_study(cfgs, tmp_path, log=None)  # all measured: nothing to train
    assert len(seen) == 1


def test_per_precision_options_give_the_bnn_its_own_recipe(monkeypatch):
    from analysis.notebooks import resolve
    _one_shape(monkeypatch)
    base = resolve("gain_surface", "test")
    plain = {c.binary: c for c in gs.study_configs(base)}
    own = {c.binary: c for c in gs.study_configs(
        {**base, "bnn_options": {"optimizer": "cifar_adam", "compile": True, "lr": None}})}
    assert (own[True].optimizer, own[True].compile) == ("cifar_adam", True)
    assert own[False] == plain[False]  # the FP runs (and their hashes) do not move
    assert sweep.config_hash(own[False]) == sweep.config_hash(plain[False])
    assert own[True].lr == plain[True].lr  # None: the shared value stands
    with pytest.raises(ValueError, match=r"^bnn_options: got unknown keys \['epochs'\]"):
        gs.study_configs({**base, "bnn_options": {"epochs": 3}})
    with pytest.raises(ValueError, match="^fp_options: got 3"):
        sweep.precision_options({"fp_options": 3}, False)


def test_per_precision_options_reach_dwr_rows_by_their_precision():
    preset = {"seeds": [0], "epochs": 1, "pretrain_epochs": 1, "calib_images": 8,
              "dataset": "synthetic", "bnn_options": {"optimizer": "cifar_adam"}}
    jobs = DS.jobs("table4", preset)
    cfgs = DS.plan_configs(jobs, preset)
    fp = [c for c in cfgs if c.tag == "dwr:resnet20/fp"]
    assert len(fp) == 1 and fp[0].optimizer == "cifar_sgd"  # the FP row keeps the shared recipe
    rest = [c for c in cfgs if c.tag != "dwr:resnet20/fp"]
    assert len(rest) == len(cfgs) - 1 and all(c.optimizer == "cifar_adam" for c in rest)
    assert "optimizer" not in DS.train_kw(preset) and DS.train_kw(preset, False) == DS.train_kw(preset)


def test_cpu_presets_train_each_precision_with_the_regimes_recipe(monkeypatch):
    """The cpu presets say what analysis/regime chose: FP SGD + label smoothing 0.1, BNN Adam,
    compiled; 30 epochs at 16x16."""
    from analysis.notebooks import resolve
    _one_shape(monkeypatch)
    cfgs = {c.binary: c for c in gs.study_configs({**resolve("gain_surface", "cpu"), "dataset": "cifar10"})}
    q = resolve("dwr_tables", "cpu")
    P = {**{k: q[k] for k in q if k in DS.PRESET_KEYS}, "dataset": "cifar10"}
    dwr = DS.plan_configs(DS.jobs("table4", P), P)
    fp = [cfgs[False]] + [c for c in dwr if c.tag == "dwr:resnet20/fp"]
    bnn = [cfgs[True]] + [c for c in dwr if c.tag != "dwr:resnet20/fp"]
    assert all((c.optimizer, c.label_smoothing, c.compile) == ("cifar_sgd", 0.1, False) for c in fp)
    assert all((c.optimizer, c.label_smoothing, c.compile) == ("cifar_adam", 0.0, True) for c in bnn)
    assert {c.resolution for c in fp + bnn} == {16}
    assert {c.epochs for c in fp + bnn if "dwr-pretrain" not in c.tag} == {30}
