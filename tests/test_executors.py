"""analysis.sweep executors: shards partition a grid exactly, the local executor pins one
spawned worker per GPU (CPU stand-ins here), submitit builds GPU requests."""
import os

import pytest

from analysis import sweep
from bnnlib.train import TrainConfig

TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic", device="cpu",
            synthetic_train=160, synthetic_test=40, val_size=32, batch_size=64, epochs=1, threads=1)


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def test_shards_partition_the_distinct_configs_exactly():
    grid = [cfg(seed=s, lr=lr) for s in range(5) for lr in (0.1, 0.05)]
    grid += [grid[3], cfg(seed=3, lr=0.05, threads=2)]  # duplicates (by hash) run once
    for n in (1, 3, 4, 7, 15):
        shards = [sweep.select_shard(grid, f"{k}/{n}") for k in range(n)]
        hashes = [sweep.config_hash(c) for s in shards for c in s]
        assert sorted(hashes) == sorted({sweep.config_hash(c) for c in grid})  # disjoint, complete
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match=r"^shard: got"):
            sweep.parse_shard(bad)


def test_sweep_cli_runs_only_its_shard(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(
        "records_dir: r\nbase: {model: resnet20, width_mult: 0.25, depth_div: 3, dataset: synthetic,"
        " synthetic_train: 128, synthetic_test: 20, val_size: 0, batch_size: 64, epochs: 1,"
        " threads: 1, device: cpu}\ngrid: {seed: [0, 1, 2]}\n")
    assert sweep.main(["run", str(tmp_path / "s.yaml"), "--shard", "1/2"]) == 0
    assert "'finished': 1" in capsys.readouterr().out  # seed 1 only
    assert sweep.status(sweep.load_spec(tmp_path / "s.yaml")[1], tmp_path / "r")["pending"] == 2


def test_local_pool_pins_each_spawned_worker_to_its_own_device():
    import multiprocessing as mp

    from analysis import pool
    with mp.get_context("spawn").Manager() as m, sweep.local_pool(2, ["0", "1"]) as workers:
        barrier = m.Barrier(2)  # both tasks must be in flight at once: two distinct workers
        got = [f.result(timeout=180) for f in [workers.submit(pool.worker_info, barrier) for _ in range(2)]]
    assert len({g["pid"] for g in got}) == 2 and os.getpid() not in {g["pid"] for g in got}
    assert sorted(g["cuda_visible_devices"] for g in got) == ["0", "1"]
    assert all(g["pinned"] == g["cuda_visible_devices"] for g in got) and pool.pinned() is None


def test_local_devices_default_and_explicit(monkeypatch):
    assert sweep.local_devices([cfg()]) == []  # CPU: no pinning
    assert sweep.local_devices([cfg()], "2,3") == ["2", "3"]
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert sweep.local_devices([cfg(device="auto")]) == ["4", "6"]
    assert sweep.local_devices([cfg(device="cpu")]) == []
    with pytest.raises(ValueError, match="^devices: got"):
        sweep.local_devices([cfg()], [])
    with pytest.raises(ValueError, match="^executor_options: got"):
        sweep.run_sweep([cfg()], "unused", executor_options={"gpus_per_node": 1})


def test_submitit_request_from_cli_flags_and_spec_options():
    ns = sweep.argparse.Namespace(devices=None, gpus_per_node=2, timeout_min=90, partition="h100",
                                  requeue=5, tasks_per_node=None, nodes=None)
    opts = sweep.executor_options("submitit", {"slurm_qos": "high", "timeout_min": 30}, ns)
    req = sweep.submitit_request(opts, [cfg(device="auto")])
    assert req["parameters"] == {"gpus_per_node": 2, "timeout_min": 90, "slurm_partition": "h100",
                                 "slurm_qos": "high", "slurm_array_parallelism": 64}
    assert req["max_num_timeout"] == 5 and req["checkpointable"]
    assert sweep.submitit_request({}, [cfg(device="cuda")])["parameters"]["gpus_per_node"] == 1
    assert sweep.submitit_request({}, [cfg()])["parameters"]["gpus_per_node"] == 0  # all CPU
    assert not sweep.submitit_request({"requeue": 0})["checkpointable"]
    for bad, msg in (({"gpus": 1}, "executor_options"), ({"requeue": -1}, "requeue"),
                     ({"gpus_per_node": "2"}, "gpus_per_node")):
        with pytest.raises(ValueError, match=f"^{msg}: got"):
            sweep.submitit_request(bad)


def test_submitit_gpu_request_reaches_the_sbatch_script_and_debug_run(tmp_path):
    submitit = pytest.importorskip("submitit")
    from submitit.slurm import slurm
    req = sweep.submitit_request({"gpus_per_node": 2, "timeout_min": 90, "partition": "h100"})
    names = slurm.SlurmExecutor._equivalence_dict()
    params = {names.get(k, k.removeprefix("slurm_")): v for k, v in req["parameters"].items()}
    text = slurm._make_sbatch_string(command="python -c pass", folder=str(tmp_path), **params)
    for line in ("#SBATCH --gpus-per-node=2", "#SBATCH --time=90", "#SBATCH --partition=h100"):
        assert line in text, text
    # debug mode: the same request is accepted and the task runs in-process
    recs = sweep.run_sweep([cfg(seed=4)], tmp_path, executor="submitit",
                           executor_options={"cluster": "debug", "gpus_per_node": 1,
                                             "timeout_min": 10, "partition": "x", "requeue": 1})
    assert [r["status"] for r in recs] == ["finished"]
    assert submitit.__version__
