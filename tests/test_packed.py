"""bnnlib.packed: K nets in one step equal K separate runs up to rounding."""
import pytest
import torch

from bnnlib import packed
from bnnlib.models import create_model
from bnnlib.train import TrainConfig, train

TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic", device="cpu",
            synthetic_train=288, synthetic_test=60, val_size=32, batch_size=64, epochs=2,
            threads=1)


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


@pytest.mark.parametrize("name,kw", [("resnet20", {}), ("resnet20_dwr_react", {}),
                                     ("vgg_small", {"width_mult": 0.125})])
def test_packed_forward_equals_each_model(name, kw):
    torch.manual_seed(0)
    models = [create_model(name, width_mult=kw.get("width_mult", 0.25)) for _ in range(3)]
    for m in models:  # non-trivial BN statistics and RSign thresholds
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
            if hasattr(mod, "beta") and isinstance(mod.beta, torch.nn.Parameter):
                mod.beta.data.uniform_(-0.1, 0.1)
        m.eval()
    net = packed.pack_models(models).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        out = net(x.repeat(1, 3, 1, 1)).view(4, 3, -1)
        for k, m in enumerate(models):
            torch.testing.assert_close(out[:, k], m(x), rtol=1e-4, atol=1e-4)
    for k, sd in enumerate(packed.unpack_state(net.state_dict(), 3)):
        for name_, t in models[k].state_dict().items():
            assert torch.equal(sd[name_], t), name_


@pytest.mark.parametrize("binary", [False, True])
def test_packed_training_equals_separate_runs(tmp_path, binary):
    cs = [cfg(seed=s, binary=binary, synthetic_train=160) for s in (0, 1)]  # 2 steps/epoch
    sep = [train(c, tmp_path / f"sep{c.seed}") for c in cs]
    recs = packed.train_packed(cs, [tmp_path / f"pk{c.seed}" for c in cs])
    for r, s in zip(recs, sep):
        assert r["status"] == "finished" and r["config_hash"] == s["config_hash"]
        for a, b in zip(r["metrics"]["epochs"], s["metrics"]["epochs"]):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
            assert a["lr"] == pytest.approx(b["lr"])
    assert recs[0]["weights_sha256"] != recs[1]["weights_sha256"]  # own seed, own net


@pytest.mark.parametrize("binary", [False, True])
def test_one_packed_step_equals_separate_step_to_rounding(tmp_path, binary):
    # 96 training images, 32 for validation: exactly one SGD step of batch 64
    cs = [cfg(seed=s, binary=binary, save_weights=True, epochs=1, synthetic_train=96)
          for s in (0, 1)]
    for c in cs:
        train(c, tmp_path / f"sep{c.seed}")
    recs = packed.train_packed(cs, [tmp_path / f"pk{c.seed}" for c in cs])
    assert recs[0]["timings"]["steps"] == 1
    for c in cs:
        a = torch.load(tmp_path / f"pk{c.seed}" / "weights.pt")
        b = torch.load(tmp_path / f"sep{c.seed}" / "weights.pt")
        for k in b:  # grouped and dense kernels round differently (~1e-7 relative)
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_packed_kill_and_resume_is_bit_identical(tmp_path):
    cs = [cfg(seed=s, synthetic_train=160) for s in (0, 1)]
    ref = packed.train_packed(cs, [tmp_path / f"ref{i}" for i in range(2)])
    dirs, ck = [tmp_path / f"r{i}" for i in range(2)], str(tmp_path / "pack.pt")
    with pytest.raises(packed.StopTraining):
        packed.train_packed([c.replace(stop_after_epoch=1) for c in cs], dirs, checkpoint=ck)
    recs = packed.train_packed(cs, dirs, checkpoint=ck)
    assert [r["weights_sha256"] for r in recs] == [r["weights_sha256"] for r in ref]
    assert recs[0]["timings"]["resumed"] and not (tmp_path / "pack.pt").exists()


def test_nan_in_one_net_stays_in_its_block():
    """A diverging net (NaN activations) must not leak into the other nets of its pack."""
    models = [create_model("resnet20", binary=False, width_mult=0.25, depth_div=3) for _ in range(2)]
    net = packed.pack_models(models)
    x = torch.randn(8, 6, 32, 32)
    x[:, 3:] = float("nan")
    out = net(x).view(8, 2, -1)
    assert torch.isfinite(out[:, 0]).all() and not torch.isfinite(out[:, 1]).any()


def test_run_packed_groups_and_isolates_failures(tmp_path):
    cs = [cfg(seed=0, epochs=1), cfg(seed=1, epochs=1), cfg(seed=0, epochs=1, lr=0.05),
          cfg(seed=0, epochs=1, init_weights=str(tmp_path / "missing.pt"))]
    recs = packed.run_packed(cs, [tmp_path / str(i) for i in range(4)], pack_size=2)
    assert [r["status"] for r in recs] == ["finished", "finished", "finished", "failed"]
    assert recs[0]["timings"]["packed"]["k"] == 2 and recs[2]["timings"]["packed"]["k"] == 1
    assert "FileNotFoundError" in recs[3]["traceback"]


def test_unpackable_configs_rejected(tmp_path):
    with pytest.raises(ValueError, match="configs"):
        packed.train_packed([cfg(seed=0), cfg(seed=1, lr=0.01)], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="two_step"):
        packed.train_packed([cfg(two_step=True)], [tmp_path / "a"])
    with pytest.raises(ValueError, match="pack_size"):
        packed.run_packed([cfg()], [tmp_path / "a"], pack_size=0)
    assert packed.pack_key(cfg(seed=3, tag="x", threads=2)) == packed.pack_key(cfg())


def test_eval_test_end_packs_and_scores_the_best_validation_epoch(tmp_path):
    cs = [cfg(seed=s, eval_test="end") for s in range(2)]
    recs = packed.train_packed(cs, [tmp_path / str(s) for s in range(2)])
    for r, c in zip(recs, cs):
        m = r["metrics"]
        assert r["status"] == "finished" and r["config_hash"] == packed.records.config_hash(c)
        assert m["test_acc_at_best_val"] == m["epochs"][m["best_epoch"] - 1]["test_acc"] is not None
