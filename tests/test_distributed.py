"""Data-parallel training through torchrun + DDP on gloo (CPU), on a tiny generated ImageFolder.

BatchNorm under DDP normalises each rank's share of the batch (and keeps rank 0's running
statistics), so a 2-rank run is *not* a 1-process run with plain BatchNorm over the whole
batch. The single-process reference here trains the same global batch as two position-shards
r::2 with gradients averaged and running statistics updated from shard 0 only: that is what
the 2-rank run computes, and the test checks it does so.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bnnlib.distributed import DistEnv, shard, world_size_check
from bnnlib.imagenet import LoaderSource, fake_folder
from bnnlib.train import TrainConfig, build_model, evaluate_split, schedule_lr, train
from bnnlib.train_config import make_optimizer, resolved_hparams

ROOT = Path(__file__).resolve().parents[1]
FLAGS = dict(model="resnet18_imagenet", width_mult=0.125, model_kwargs={"num_classes": 4},
             dataset="imagenet", image_size=32, val_size=8, batch_size=8, optimizer="imagenet_adam",
             epochs=2, workers=0, threads=1, device="cpu", seed=0, save_weights=True)


def _argv(**kw) -> list:
    """CLI flags of ``FLAGS`` updated with ``kw``."""
    out = []
    for k, v in {**FLAGS, **kw}.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + k.replace("_", "-"))
        else:
            out += [flag, json.dumps(v) if isinstance(v, dict) else str(v)]
    return out


def torchrun(nproc: int, out, *extra, **kw) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc_per_node N -m bnnlib.train ...``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "bnnlib.train", *_argv(**kw), "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """4 classes x (12 train + 3 val) small JPEGs."""
    return fake_folder(tmp_path_factory.mktemp("inet"))


@pytest.fixture(scope="module")
def ddp_run(folder, tmp_path_factory):
    """One uninterrupted 2-rank run, weights compared across ranks after every step."""
    out = tmp_path_factory.mktemp("ddp")
    p = torchrun(2, out, data_root=str(folder), ddp_check_every=1)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads((out / "record.json").read_text()), out


def _reference(folder, world: int = 2):
    """Single process, same global batch, per-shard BN as DDP computes it; (model, history)."""
    cfg = TrainConfig(**{**FLAGS, "data_root": str(folder)})
    h = resolved_hparams(cfg)
    src = LoaderSource(cfg, h["batch_size"], torch.device("cpu"), DistEnv())
    model = build_model(cfg)
    opt = make_optimizer(model, h, h["weight_decay"])
    total, hist, step = cfg.epochs * src.steps_per_epoch, [], 0
    for epoch in range(cfg.epochs):
        model.train()
        loss_sum = 0.0
        for x, y in src.train_batches(epoch):
            for g in opt.param_groups:
                g["lr"] = schedule_lr(h["lr"], step, total)
            opt.zero_grad(set_to_none=True)
            for r in range(world):
                if r == 1:  # running statistics: rank 0's shard only (DDP broadcasts rank 0's)
                    bufs = {k: b.clone() for k, b in model.named_buffers()}
                loss = F.cross_entropy(model(x[r::world]), y[r::world])
                (loss / world).backward()
                loss_sum += loss.item() / world
            if world > 1:
                with torch.no_grad():
                    for k, b in model.named_buffers():
                        b.copy_(bufs[k])
            opt.step()
            step += 1
        ctx = {"source": src, "device": torch.device("cpu"), "dist": DistEnv(), "eval_fwd": model}
        hist.append({"train_loss": loss_sum / src.steps_per_epoch,
                     "val_acc": evaluate_split(ctx, cfg, "val"), "test_acc": evaluate_split(ctx, cfg, "test")})
    return model, hist


def test_two_ranks_equal_the_sharded_single_process_run(folder, ddp_run):
    rec, out = ddp_run
    d = rec["distributed"]
    assert d["world_size"] == 2 and d["backend"] == "gloo" and len(d["ranks"]) == 2
    assert all(r["images_per_s"] > 0 for r in d["ranks"])
    steps = rec["timings"]["steps"]
    assert steps == 2 * (40 // 8)  # 48 train images - 8 validation = 40, global batch 8
    assert d["sync_checks_passed"] == steps + 2  # after every step and at every epoch end
    # exactly one record (rank 0), no checkpoint left, nothing else written
    assert sorted(p.name for p in out.iterdir()) == ["record.json", "weights.pt"]
    model, hist = _reference(folder)
    sd = torch.load(out / "weights.pt")
    ref = model.state_dict()
    assert sd.keys() == ref.keys()
    worst = max(float((sd[k].double() - ref[k].double()).abs().max()) for k in sd)
    assert worst < 1e-5, worst
    for e, r in zip(rec["metrics"]["epochs"], hist):
        assert e["train_loss"] == pytest.approx(r["train_loss"], rel=1e-5)
        assert e["val_acc"] == r["val_acc"] and e["test_acc"] == r["test_acc"]


def test_shards_are_disjoint_and_cover_train_val_and_test(folder):
    cfg = TrainConfig(**{**FLAGS, "data_root": str(folder)})
    single = LoaderSource(cfg, 8, torch.device("cpu"), DistEnv())
    ranks = [LoaderSource(cfg, 8, torch.device("cpu"), DistEnv(rank=r, world_size=2)) for r in (0, 1)]
    for epoch in (0, 1):
        for s in [single] + ranks:
            s.sampler.set_epoch(epoch)
        full = [i for i, _ in single.sampler]
        per = [[i for i, _ in s.sampler] for s in ranks]
        assert not set(per[0]) & set(per[1]) and sorted(per[0] + per[1]) == list(range(40))
        for k in range(5):  # global batch k == the union of the ranks' batch k, by position
            assert full[8 * k:8 * k + 8][0::2] == per[0][4 * k:4 * k + 4]
            assert full[8 * k:8 * k + 8][1::2] == per[1][4 * k:4 * k + 4]
    assert single.sampler.inner.seed == 0 and [i for i, _ in single.sampler] != sorted(range(40))
    for n in (0, 1, 7, 12):  # evaluation: no padding, no duplicates
        got = sorted(list(shard(n, DistEnv(0, 3))) + list(shard(n, DistEnv(1, 3))) + list(shard(n, DistEnv(2, 3))))
        assert got == list(range(n))


def test_impossible_world_size_is_a_clear_error(folder, tmp_path):
    with pytest.raises(ValueError, match=r"world_size: got 3; allowed: a divisor of the global batch_size 8"):
        world_size_check(DistEnv(rank=0, world_size=3), 8, 40)
    cfg = TrainConfig(**{**FLAGS, "data_root": str(folder)})
    with pytest.raises(ValueError, match="world_size: got 3"):
        LoaderSource(cfg, 8, torch.device("cpu"), DistEnv(rank=0, world_size=3))
    with pytest.raises(ValueError, match="sync_bn: got True"):
        train(cfg.replace(sync_bn=True, epochs=1), tmp_path)


@pytest.mark.slow
def test_killed_two_rank_run_resumes_bit_identically(folder, ddp_run, tmp_path):
    p = torchrun(2, tmp_path, data_root=str(folder), stop_after_epoch=1)
    assert p.returncode != 0 and "StopTraining" in p.stderr
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "record.json").exists()
    p = torchrun(2, tmp_path, "--resume", data_root=str(folder))
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["timings"]["resumed"] and rec["weights_sha256"] == ddp_run[0]["weights_sha256"]
    assert rec["metrics"]["epochs"] == [dict(e, time_s=r["time_s"]) for e, r in
                                        zip(ddp_run[0]["metrics"]["epochs"], rec["metrics"]["epochs"])]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["record.json", "weights.pt"]


@pytest.mark.slow
def test_cli_world_size_error_is_one_line(folder, tmp_path):
    p = torchrun(3, tmp_path, data_root=str(folder))
    assert p.returncode != 0
    assert "error: world_size: got 3; allowed: a divisor of the global batch_size 8" in p.stderr
    assert "Traceback" not in p.stderr.split("error: world_size")[0][-2000:]


@pytest.mark.slow
def test_in_memory_cifar_path_two_ranks_equal_sharded_reference(tmp_path):
    """The uint8-on-device path: every rank draws the same permutation and augmentation."""
    args = ["--model", "resnet20", "--width-mult", "0.25", "--depth-div", "3", "--dataset", "synthetic",
            "--synthetic-train", "160", "--synthetic-test", "40", "--val-size", "32", "--batch-size", "32",
            "--epochs", "1", "--threads", "1", "--device", "cpu", "--ddp-check-every", "1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "bnnlib.train", *args, "--out", str(tmp_path)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "record.json").read_text())
    assert rec["distributed"]["world_size"] == 2 and rec["dataset"]["n_train"] == 128
    assert rec["distributed"]["sync_checks_passed"] == 4 + 1


def test_slurm_request_one_task_per_gpu_and_env_export_outside_a_job(monkeypatch):
    from analysis.sweep import submitit_request
    from bnnlib.distributed import export_submitit_env
    req = submitit_request({"tasks_per_node": 8, "nodes": 2})
    assert req["parameters"]["tasks_per_node"] == 8 and req["parameters"]["gpus_per_node"] == 8
    assert req["parameters"]["nodes"] == 2
    assert submitit_request({"tasks_per_node": 4, "gpus_per_node": 8})["parameters"]["gpus_per_node"] == 8
    with pytest.raises(ValueError, match="tasks_per_node: got -1"):
        submitit_request({"tasks_per_node": -1, "gpus_per_node": 1})
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    assert export_submitit_env() is False and "RANK" not in os.environ


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices (NCCL)")
def test_nccl_two_gpus_with_sync_bn(folder, tmp_path):
    """On a 2-GPU machine: NCCL backend, one GPU per rank, SyncBatchNorm, one record."""
    p = torchrun(2, tmp_path, data_root=str(folder), device="cuda", sync_bn=True, workers=2,
                 ddp_check_every=1)
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "record.json").read_text())
    d = rec["distributed"]
    assert d["backend"] == "nccl" and d["sync_bn"] and d["bn_statistics"] == "synchronised over ranks"
    assert rec["device"]["type"] == "cuda" and d["sync_checks_passed"] == rec["timings"]["steps"] + 2
