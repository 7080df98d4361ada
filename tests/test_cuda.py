"""Tests that need a CUDA device (marker ``cuda``; skipped cleanly without one).

Run them alone with ``pytest -m cuda`` (``benchmarks/gpu_check.py`` does). They check what CPU
tests cannot: bit-identical resume and repeatability under ``deterministic=True`` on the GPU,
a second model compiling in the same process (compiler reset), CUDA-graph evaluation, and the
backend settings recorded for a GPU run.
"""
import pytest
import torch

from bnnlib.train import StopTraining, TrainConfig, train

pytestmark = pytest.mark.cuda

TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic", device="cuda",
            synthetic_train=640, synthetic_test=200, val_size=128, batch_size=64, epochs=2, seed=0)


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def test_cuda_record_states_gpu_and_backend_settings(tmp_path):
    d = train(tiny(epochs=1), tmp_path)["device"]
    assert d["type"] == "cuda" and d["name"] and d["visible_gpus"] >= 1
    assert d["backends"]["cudnn_version"] and "tf32_matmul" in d["backends"]


def test_cuda_deterministic_runs_repeat_and_resume_bit_identically(tmp_path):
    c = tiny(deterministic=True)
    a = train(c, tmp_path / "a")
    assert a["device"]["backends"]["deterministic_algorithms"] is True
    assert train(c, tmp_path / "b")["weights_sha256"] == a["weights_sha256"]
    with pytest.raises(StopTraining):
        train(c.replace(stop_after_epoch=1), tmp_path / "r")
    assert train(c, tmp_path / "r", resume=True)["weights_sha256"] == a["weights_sha256"]


def test_cuda_two_models_compile_in_one_process_with_graphs(tmp_path):
    import torch._dynamo.utils as du
    for i, w in enumerate((0.25, 0.5)):  # two shapes: each run starts from a reset compiler
        du.counters.clear()
        rec = train(tiny(epochs=1, width_mult=w, compile=True, compile_mode="reduce-overhead",
                         amp="bf16", channels_last=True), tmp_path / str(i))
        assert rec["status"] == "finished" and rec["metrics"]["final_test_acc"] is not None
        assert du.counters["stats"]["unique_graphs"] >= 1, "dynamo compiled nothing"


def test_cuda_packed_compiled_bf16_runs(tmp_path):
    from bnnlib.packed import train_packed
    cs = [tiny(epochs=1, seed=s, compile=True, amp="bf16") for s in range(4)]
    recs = train_packed(cs, [tmp_path / str(s) for s in range(4)])
    assert [r["status"] for r in recs] == ["finished"] * 4
    assert torch.cuda.max_memory_allocated() > 0
