"""bnnlib.runtime and its use by the trainer: determinism flags, compiler reset per run,
records that state the backend settings, evaluation without inference_mode, and resume after
a change in the number of visible GPUs."""
import pytest
import torch

from bnnlib import records, runtime
from bnnlib.train import StopTraining, TrainConfig, evaluate, train

TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic", device="cpu",
            synthetic_train=160, synthetic_test=40, val_size=32, batch_size=64, epochs=2,
            threads=1, seed=0)


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def test_determinism_sets_flags_and_restores_them():
    before = runtime.backend_flags()
    runtime.apply_determinism(True)
    try:
        f = runtime.backend_flags()
        assert f["deterministic_algorithms"] and f["cudnn_deterministic"] and not f["cudnn_benchmark"]
        assert not f["tf32_matmul"] and not f["tf32_cudnn"] and f["cublas_workspace_config"]
        err = runtime.determinism_error(RuntimeError("foo_cuda does not have a deterministic "
                                                     "implementation, but you set ..."))
        assert isinstance(err, ValueError) and str(err).startswith("deterministic: got True; allowed:")
        assert runtime.determinism_error(RuntimeError("shape mismatch")) is None
    finally:
        runtime.apply_determinism(False)
    after = runtime.backend_flags()
    assert {k: after[k] for k in before if k != "cublas_workspace_config"} == \
        {k: before[k] for k in before if k != "cublas_workspace_config"}


def test_deterministic_is_hash_neutral_at_default_and_recorded(tmp_path):
    assert records.config_hash(tiny(deterministic=False)) == records.config_hash(tiny())
    assert records.config_hash(tiny(deterministic=True)) != records.config_hash(tiny())
    rec = train(tiny(deterministic=True, epochs=1), tmp_path)
    b = rec["device"]["backends"]
    assert b["deterministic_algorithms"] is True and b["tf32_matmul"] is False
    assert {"cudnn_version", "tf32_cudnn", "cudnn_deterministic", "cudnn_benchmark"} <= set(b)
    assert torch.are_deterministic_algorithms_enabled()  # until the next run of the process
    train(tiny(epochs=1, seed=1), tmp_path / "b")
    assert not torch.are_deterministic_algorithms_enabled()


def test_compiler_reset_at_the_start_of_every_compiled_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "reset_compiler", lambda: calls.append("reset"))
    # the real torch.compile needs a C++ build (slow on CPU; tests/test_cuda.py compiles for real)
    monkeypatch.setattr(torch, "compile", lambda m, **kw: calls.append("compile") or m)
    train(tiny(epochs=1, compile=True), tmp_path / "a")
    train(tiny(epochs=1, compile=True, width_mult=0.5), tmp_path / "b")
    train(tiny(epochs=1), tmp_path / "c")  # eager: nothing to reset
    assert calls == ["reset", "compile", "reset", "compile"]


def test_evaluate_runs_under_no_grad_not_inference_mode():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
            return torch.zeros(len(x), 10)
    x, y = torch.zeros(5, 3, 32, 32, dtype=torch.uint8), torch.zeros(5, dtype=torch.long)
    assert evaluate(Probe(), x, y, tiny(), "cpu") == 100.0
    assert seen == [(False, False)]


def test_set_rng_state_with_more_saved_gpus_than_visible(monkeypatch):
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: restored.append((int(s[0]), i)))
    gen = torch.Generator().manual_seed(1)
    st = {"torch": torch.get_rng_state(), "gen": gen.get_state(), "numpy": records.np.random.get_state(),
          "python": records.random.getstate(), "cuda": [torch.full((4,), k, dtype=torch.uint8) for k in range(8)]}
    records.set_rng_state(st, gen)
    assert restored == [(0, 0), (1, 1)]


def test_resume_after_the_visible_gpu_count_shrank(tmp_path, monkeypatch):
    ref = train(tiny(), tmp_path / "ref")
    out = tmp_path / "r"
    with pytest.raises(StopTraining):
        train(tiny(stop_after_epoch=1), out)
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    ck["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 8  # saved on an 8-GPU node
    torch.save(ck, out / "checkpoint.pt")
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resumed on a 1-GPU node
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.zeros(16, dtype=torch.uint8)])
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: restored.append(i))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda s: (_ for _ in ()).throw(IndexError("8 > 1")))
    rec = train(tiny(), out, resume=True)
    assert restored == [0] and rec["timings"]["resumed"]
    assert rec["weights_sha256"] == ref["weights_sha256"]
