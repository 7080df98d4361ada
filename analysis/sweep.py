"""Sweeps: many ``TrainConfig`` runs, each in ``records_dir/<config_hash>/``, resumable.

Finished (and diverged: a deterministic outcome) runs are skipped, so re-running a sweep does
nothing new and an interrupted sweep resumes, mid-run too, from the per-epoch checkpoint.
A config that raises is recorded as ``status: failed`` with its traceback and the others go
on; failed runs are retried on the next invocation.

Executors:
- ``local``: ``workers`` processes on this machine (1: in this process). Give each process its
  share of the cores with ``threads`` in the configs (2 workers x 1 thread on 2 cores).
- ``packed``: same-shape runs trained K at a time in one vectorised step (``bnnlib.packed``),
  the way to fill a GPU with small nets.
- ``submitit``: one SLURM array task per run (``pip install bnn-dwr[cluster]``); runs are
  requeued on preemption and resume from their last epoch checkpoint.

YAML spec (``python -m analysis.sweep run SPEC.yaml``)::

    records_dir: results/my_sweep     # relative to the YAML file's folder
    base: {model: resnet20, epochs: 2, dataset: synthetic, threads: 1}
    runs: [{binary: true}, {binary: false}]   # optional list of overrides (default [{}])
    grid: {seed: [0, 1, 2]}                    # optional cartesian product over fields
    executor: local                           # optional; CLI flags override
    workers: 1
"""
from __future__ import annotations

import argparse
import itertools
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bnnlib import records
from bnnlib.train_config import TrainConfig

__all__ = ["run_sweep", "load_records", "config_hash", "expand", "load_spec", "status",
           "records_table", "EXECUTORS", "DONE", "main"]

EXECUTORS = ("local", "packed", "submitit")
DONE = ("finished", "diverged")


def config_hash(config: TrainConfig | dict) -> str:
    """The hash that names a run's folder (operational fields such as threads excluded)."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    return records.config_hash(cfg)


def _as_config(c) -> TrainConfig:
    return c if isinstance(c, TrainConfig) else TrainConfig.from_dict(c)


def _done_record(run_dir: Path) -> dict | None:
    """The run's record when it is finished or diverged, else None."""
    p = run_dir / "record.json"
    if p.is_file():
        rec = records.read_json(p)
        if rec.get("status") in DONE:
            return rec
    return None


def run_one(config: dict, run_dir: str) -> dict:
    """Train one config in ``run_dir`` (resuming); a raised error becomes a 'failed' record."""
    from bnnlib.train import train
    cfg = TrainConfig.from_dict(config)
    try:
        return train(cfg, run_dir, resume=True)
    except Exception as exc:  # isolation: one bad run must not stop the sweep
        rec = records.failure_record(cfg, exc)
        records.write_json_atomic(Path(run_dir) / "record.json", rec)
        return rec


def run_sweep(configs, records_dir, executor: str = "local", workers: int = 1,
              executor_options: dict | None = None) -> list[dict]:
    """Run every config not yet done; return all records in the order of ``configs``."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor: got {executor!r}; allowed: {EXECUTORS}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: got {workers!r}; allowed: an int >= 1")
    cfgs = [_as_config(c) for c in configs]
    root = Path(records_dir)
    dirs = [root / config_hash(c) for c in cfgs]
    todo = {}
    for c, d in zip(cfgs, dirs):
        if _done_record(d) is None and str(d) not in todo:  # duplicates run once
            todo[str(d)] = c
    if todo:
        jobs = [(records.config_dict(c), d) for d, c in todo.items()]
        if executor == "local":
            _run_local(jobs, workers)
        elif executor == "packed":
            from bnnlib.packed import run_packed
            run_packed([TrainConfig.from_dict(c) for c, _ in jobs], [d for _, d in jobs],
                       **(executor_options or {}))
        else:
            _run_submitit(jobs, root, executor_options or {})
    return [records.read_json(d / "record.json") for d in dirs]


def _run_local(jobs: list, workers: int) -> None:
    if workers == 1:
        for cfg, d in jobs:
            run_one(cfg, d)
        return
    import multiprocessing as mp
    # spawn: a fresh interpreter per worker (no forked torch thread pools or RNG state)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        for f in [pool.submit(run_one, cfg, d) for cfg, d in jobs]:
            f.result()


def _run_submitit(jobs: list, root: Path, options: dict) -> None:
    """SLURM job array through submitit; blocks until every task is done."""
    try:
        import submitit
    except ImportError as e:
        raise ValueError("executor: got 'submitit' but submitit is not installed; "
                         "allowed: install it with `pip install bnn-dwr[cluster]`") from e

    class _Task(submitit.helpers.Checkpointable):
        """Requeued on preemption; the rerun resumes from the run's epoch checkpoint."""

        def __call__(self, cfg, d):
            return run_one(cfg, d)

    ex = submitit.AutoExecutor(folder=str(root / "_submitit"))
    ex.update_parameters(**{"timeout_min": 240, "slurm_array_parallelism": 64, **options})
    task = _Task()
    handles = ex.map_array(task, [c for c, _ in jobs], [d for _, d in jobs])
    for h in handles:
        h.result()


def load_records(records_dir) -> list[dict]:
    """Every ``record.json`` under ``records_dir`` (any depth), sorted by path."""
    return [records.read_json(p) for p in sorted(Path(records_dir).rglob("record.json"))]


# ---- YAML specs ---------------------------------------------------------------------------

def expand(spec: dict) -> list[TrainConfig]:
    """Configs of a sweep spec: each of ``runs`` merged over ``base``, crossed with ``grid``."""
    allowed = {"records_dir", "base", "runs", "grid", "executor", "workers", "executor_options"}
    bad = sorted(set(spec) - allowed)
    if bad:
        raise ValueError(f"sweep spec key: got {bad}; allowed: {sorted(allowed)}")
    base, runs, grid = spec.get("base") or {}, spec.get("runs") or [{}], spec.get("grid") or {}
    for name, v, t in (("base", base, dict), ("runs", runs, list), ("grid", grid, dict)):
        if not isinstance(v, t):
            raise ValueError(f"{name}: got {type(v).__name__}; allowed: a {t.__name__}")
    keys = list(grid)
    out = []
    for run in runs:
        for combo in itertools.product(*(grid[k] for k in keys)):
            out.append(TrainConfig.from_dict({**base, **run, **dict(zip(keys, combo))}))
    return out


def load_spec(path) -> tuple[dict, list[TrainConfig], Path]:
    """(spec dict, configs, records_dir) of a YAML sweep file."""
    import yaml
    path = Path(path)
    spec = yaml.safe_load(path.read_text()) or {}
    if "records_dir" not in spec:
        raise ValueError(f"records_dir: missing in {path}; allowed: a folder for the run records")
    return spec, expand(spec), (path.parent / spec["records_dir"])


def status(configs, records_dir) -> dict:
    """Counts of finished / diverged / failed / pending runs of a sweep."""
    out = {"finished": 0, "diverged": 0, "failed": 0, "pending": 0}
    for c in configs:
        p = Path(records_dir) / config_hash(c) / "record.json"
        st = records.read_json(p).get("status") if p.is_file() else "pending"
        out[st if st in out else "pending"] += 1
    return out


def records_table(recs: list[dict]):
    """A pandas DataFrame, one row per record: key config fields and headline metrics."""
    import pandas as pd
    rows = []
    for r in recs:
        c, m = r.get("config", {}), r.get("metrics") or {}
        rows.append({"config_hash": r.get("config_hash"), "status": r.get("status"),
                     "model": c.get("model"), "binary": c.get("binary"), "tag": c.get("tag"),
                     "dataset": c.get("dataset"), "epochs": c.get("epochs"), "seed": r.get("seed"),
                     "final_test_acc": m.get("final_test_acc"), "best_val_acc": m.get("best_val_acc"),
                     "test_acc_at_best_val": m.get("test_acc_at_best_val"),
                     "ops": (r.get("complexity") or {}).get("ops"),
                     "images_per_s": (r.get("timings") or {}).get("images_per_s")})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    """CLI: run | status | table. ``run`` exits 1 when any run failed."""
    p = argparse.ArgumentParser(prog="python -m analysis.sweep")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run every pending config of SPEC.yaml")
    r.add_argument("spec")
    r.add_argument("--executor", choices=EXECUTORS)
    r.add_argument("--workers", type=int)
    s = sub.add_parser("status", help="finished/diverged/failed/pending counts")
    s.add_argument("spec")
    t = sub.add_parser("table", help="print the records of SPEC.yaml (or of a folder) as a table")
    t.add_argument("spec")
    t.add_argument("--csv", help="also write the table to this CSV file")
    a = p.parse_args(argv)
    if a.cmd == "table" and Path(a.spec).is_dir():
        recs = load_records(a.spec)
    else:
        spec, cfgs, rdir = load_spec(a.spec)
        if a.cmd == "status":
            print(status(cfgs, rdir))
            return 0
        if a.cmd == "run":
            recs = run_sweep(cfgs, rdir, a.executor or spec.get("executor", "local"),
                             a.workers or spec.get("workers", 1), spec.get("executor_options"))
            st = status(cfgs, rdir)
            print(st)
            return 1 if st["failed"] else 0
        recs = [records.read_json(rdir / config_hash(c) / "record.json") for c in cfgs
                if (rdir / config_hash(c) / "record.json").is_file()]
    import pandas as pd
    df = records_table(recs)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(df.to_string(index=False))
    if a.cmd == "table" and a.csv:
        df.to_csv(a.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
