"""Sweeps: many ``TrainConfig`` runs, each in ``records_dir/<config_hash>/``, resumable.

Finished (and diverged: a deterministic outcome) runs are skipped, so re-running a sweep does
nothing new and an interrupted sweep resumes, mid-run too, from the per-epoch checkpoint.
A config that raises is recorded as ``status: failed`` with its traceback and the others go
on; failed runs are retried on the next invocation.

Executors:
- ``local``: ``workers`` processes on this machine (1: in this process). With CUDA, one
  spawned worker per visible GPU by default, each pinned to its own GPU through
  ``CUDA_VISIBLE_DEVICES`` (``executor_options: {devices: ["0", "1"]}`` picks them). On CPU,
  give each process its share of the cores with ``threads`` (2 workers x 1 thread on 2 cores).
- ``packed``: same-shape runs trained K at a time in one vectorised step (``bnnlib.packed``),
  the way to fill a GPU with small nets.
- ``submitit``: one SLURM array task per run (``pip install bnn-dwr[cluster]``); runs are
  requeued on preemption and resume from their last epoch checkpoint. ``executor_options``
  (or the CLI flags) ``gpus_per_node`` (default 1 unless the configs say ``device: cpu``),
  ``timeout_min``, ``partition``, ``requeue`` (how many timeouts are requeued; 0: none),
  ``cpus_per_task``, ``mem_gb``, ``array_parallelism``, ``tasks_per_node`` and ``nodes``
  (data-parallel runs: one task per GPU, each task a DDP rank through submitit's
  ``TorchDistributedEnvironment``; ``gpus_per_node`` follows ``tasks_per_node`` unless given);
  any other ``slurm_*`` key goes to
  ``AutoExecutor.update_parameters`` as is (``submitit_request``). ``cluster: debug`` runs
  the tasks in-process (what the test uses).

``shard="k/N"`` (``--shard k/N``, 0 <= k < N) runs only every N-th distinct config starting
at the k-th: N machines given 0/N ... N-1/N together run the whole grid, each run exactly once.

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
import os
import sys
from pathlib import Path

from analysis.pool import local_pool, pinned
from bnnlib import records
from bnnlib.train_config import TrainConfig

__all__ = ["run_sweep", "load_records", "config_hash", "expand", "load_spec", "status",
           "records_table", "EXECUTORS", "DONE", "main", "parse_shard", "select_shard",
           "local_devices", "local_pool", "submitit_request", "SPEED_KEYS", "speed_options", "REGIME_KEYS", "regime_options",
           "PRECISION_KEYS", "precision_options"]

EXECUTORS = ("local", "packed", "submitit")
DONE = ("finished", "diverged")


def config_hash(config: TrainConfig | dict) -> str:
    """The hash that names a run's folder (operational fields such as threads excluded)."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    return records.config_hash(cfg)


def _as_config(c) -> TrainConfig:
    """A TrainConfig from a config or a dict."""
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
    from bnnlib.distributed import export_submitit_env
    from bnnlib.train import train
    export_submitit_env()  # a multi-task SLURM job: this task becomes one DDP rank
    if pinned() is not None and str(config.get("device", "auto")).startswith(("auto", "cuda")):
        config = {**config, "device": "auto"}  # this worker sees only its own GPU
    cfg = TrainConfig.from_dict(config)
    try:
        return train(cfg, run_dir, resume=True)
    except Exception as exc:  # isolation: one bad run must not stop the sweep
        rec = records.failure_record(cfg, exc)
        records.write_json_atomic(Path(run_dir) / "record.json", rec)
        return rec


def parse_shard(shard: str | tuple | None) -> tuple[int, int] | None:
    """'k/N' (or (k, N)) -> (k, N) with 0 <= k < N; None stays None."""
    if shard is None:
        return None
    try:
        k, n = (int(v) for v in (shard.split("/") if isinstance(shard, str) else shard))
        ok = 0 <= k < n
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"shard: got {shard!r}; allowed: 'k/N' with integers 0 <= k < N")
    return k, n


def select_shard(configs, shard, group=None) -> list[TrainConfig]:
    """The configs of shard k/N: distinct configs (by hash, first occurrence order) whose
    position is k modulo N. The N shards partition the distinct configs exactly. ``group``
    (a function of a config, e.g. ``bnnlib.packed.pack_key``): whole groups go to one shard,
    so packable runs stay together."""
    cfgs = [_as_config(c) for c in configs]
    k, n = parse_shard(shard)
    seen = {}
    for c in cfgs:
        seen.setdefault(config_hash(c), c)
    key = group or config_hash
    order = list(dict.fromkeys(key(c) for c in seen.values()))
    mine = {g for i, g in enumerate(order) if i % n == k}
    return [c for c in seen.values() if key(c) in mine]


# TrainConfig fields that set how a run executes on a GPU (speed; rounding; repeatability),
# settable from every study's preset. Off unless a preset turns them on: none has been
# measured to help here (no GPU in this repository's sessions so far).
SPEED_KEYS = ("amp", "channels_last", "compile", "compile_mode", "deterministic")


def speed_options(params: dict) -> dict:
    """The SPEED_KEYS a preset/notebook sets (None: leave TrainConfig's default)."""
    return {k: params[k] for k in SPEED_KEYS if params.get(k) is not None}


# Recipe and input options of the cpu regime (16x16 inputs, Adam, label smoothing, schedule);
# TrainConfig leaves them out of the hash at their defaults, so earlier records still match.
REGIME_KEYS = ("optimizer", "weight_decay", "resolution", "label_smoothing", "lr_schedule",
               "warmup_epochs")


def regime_options(params: dict) -> dict:
    """The REGIME_KEYS a preset/notebook sets (None: leave TrainConfig's default)."""
    return {k: params[k] for k in REGIME_KEYS if params.get(k) is not None}


# What a preset may set for one precision only (``fp_options`` / ``bnn_options``): the cpu
# regime trains FP ResNets with SGD and BNNs with Adam (analysis/regime), and compiles only the
# BNN runs (benchmarks/cpu_trainer.py: compile helps the BNN step, slows the FP one on CPU).
PRECISION_KEYS = ("lr",) + REGIME_KEYS + SPEED_KEYS


def precision_options(params: dict, binary: bool) -> dict:
    """The overrides ``params`` gives the binary (``bnn_options``) or FP (``fp_options``) runs,
    over the options shared by both; None values are dropped (the shared value stands)."""
    name = "bnn_options" if binary else "fp_options"
    opts = params.get(name) or {}
    if not isinstance(opts, dict):
        raise ValueError(f"{name}: got {opts!r}; allowed: a mapping with keys from {list(PRECISION_KEYS)}")
    bad = sorted(set(opts) - set(PRECISION_KEYS))
    if bad:
        raise ValueError(f"{name}: got unknown keys {bad}; allowed: {list(PRECISION_KEYS)}")
    return {k: v for k, v in opts.items() if v is not None}


def run_sweep(configs, records_dir, executor: str = "local", workers: int | None = None,
              executor_options: dict | None = None, shard: str | None = None) -> list[dict]:
    """Run every config not yet done; return all records in the order of ``configs`` (with
    ``shard``: the records of that shard's configs only). ``workers`` None: one per visible
    GPU for CUDA configs on the local executor, else 1."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor: got {executor!r}; allowed: {EXECUTORS}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: got {workers!r}; allowed: an int >= 1")
    cfgs = [_as_config(c) for c in configs]
    if shard is not None:
        from bnnlib.packed import pack_key
        cfgs = select_shard(cfgs, shard, pack_key if executor == "packed" else None)
    root = Path(records_dir)
    dirs = [root / config_hash(c) for c in cfgs]
    todo = {}
    for c, d in zip(cfgs, dirs):
        if _done_record(d) is None and str(d) not in todo:  # duplicates run once
            todo[str(d)] = c
    if todo:
        jobs = [(records.config_dict(c), d) for d, c in todo.items()]
        if executor == "local":
            opts = dict(executor_options or {})
            devices = local_devices(list(todo.values()), opts.pop("devices", None))
            if opts:
                raise ValueError(f"executor_options: got {sorted(opts)}; allowed for 'local': ['devices']")
            _run_local(jobs, workers or max(1, len(devices)), devices)
        elif executor == "packed":
            from bnnlib.packed import run_packed
            run_packed([TrainConfig.from_dict(c) for c, _ in jobs], [d for _, d in jobs],
                       **(executor_options or {}))
        else:
            _run_submitit(jobs, root, executor_options or {})
    return [records.read_json(d / "record.json") for d in dirs]


def local_devices(configs, devices=None) -> list[str]:
    """GPUs the local executor pins workers to: ``devices`` when given (ids as in
    ``CUDA_VISIBLE_DEVICES``), else every visible GPU when some config may use CUDA, else []."""
    if devices is not None:
        if isinstance(devices, str):
            devices = [d for d in devices.split(",") if d]
        if not isinstance(devices, (list, tuple)) or not devices:
            raise ValueError(f"devices: got {devices!r}; allowed: a non-empty list of GPU ids")
        return [str(d) for d in devices]
    import torch
    if not torch.cuda.is_available() or all(_as_config(c).device == "cpu" for c in configs):
        return []
    vis = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in vis.split(",") if v.strip()] if vis else []
    return ids[:torch.cuda.device_count()] or [str(i) for i in range(torch.cuda.device_count())]


def _run_local(jobs: list, workers: int, devices: list[str] | None = None) -> None:
    """Run jobs here (one worker, no GPU pinning) or in spawned worker processes."""
    if workers == 1 and not devices:
        for cfg, d in jobs:
            run_one(cfg, d)
        return
    if not devices:
        share = max(1, (os.cpu_count() or 1) // workers)  # no oversubscription when threads unset
        jobs = [({**c, "threads": c["threads"] or share}, d) for c, d in jobs]
    with local_pool(workers, devices) as pool:
        for f in [pool.submit(run_one, cfg, d) for cfg, d in jobs]:
            f.result()


# our submitit option names -> AutoExecutor parameter names (None: handled here)
_SUBMITIT_KEYS = {"gpus_per_node": "gpus_per_node", "timeout_min": "timeout_min",
                  "partition": "slurm_partition", "cpus_per_task": "cpus_per_task",
                  "mem_gb": "mem_gb", "array_parallelism": "slurm_array_parallelism",
                  "requeue": None, "cluster": None, "tasks_per_node": "tasks_per_node", "nodes": "nodes"}


def submitit_request(options: dict, configs=()) -> dict:
    """{'cluster', 'max_num_timeout', 'checkpointable', 'parameters'} of a submitit job array:
    ``parameters`` go to ``AutoExecutor.update_parameters`` (a GPU per task unless every
    config runs on CPU; 4 h; 64 tasks at a time; ``requeue`` timeouts requeued, default 3)."""
    opts = dict(options or {})
    bad = sorted(k for k in opts if k not in _SUBMITIT_KEYS and not k.startswith("slurm_"))
    if bad:
        raise ValueError(f"executor_options: got {bad}; allowed for 'submitit': "
                         f"{sorted(_SUBMITIT_KEYS)} or any slurm_* parameter of submitit")
    requeue = opts.pop("requeue", 3)
    if isinstance(requeue, bool):
        requeue = 3 if requeue else 0
    if not isinstance(requeue, int) or requeue < 0:
        raise ValueError(f"requeue: got {requeue!r}; allowed: an int >= 0 (timeouts requeued)")
    cpu_only = bool(configs) and all(_as_config(c).device == "cpu" for c in configs)
    params = {"timeout_min": 240, "slurm_array_parallelism": 64, "gpus_per_node": 0 if cpu_only else 1}
    cluster = opts.pop("cluster", None)  # None: SLURM when available, else local processes
    for k, v in opts.items():
        if v is not None:
            params[_SUBMITIT_KEYS.get(k) or k] = v
    if params.get("tasks_per_node", 1) != 1 and "gpus_per_node" not in opts and not cpu_only:
        params["gpus_per_node"] = params["tasks_per_node"]  # data-parallel: one task per GPU
    for k in ("gpus_per_node", "timeout_min", "cpus_per_task", "tasks_per_node", "nodes"):
        v = params.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"{k}: got {v!r}; allowed: an int >= 0")
    return {"cluster": cluster, "max_num_timeout": requeue, "checkpointable": requeue > 0,
            "parameters": params}


def _run_submitit(jobs: list, root: Path, options: dict) -> None:
    """SLURM job array through submitit; blocks until every task is done."""
    try:
        import submitit
    except ImportError as e:
        raise ValueError("executor: got 'submitit' but submitit is not installed; "
                         "allowed: install it with `pip install bnn-dwr[cluster]`") from e

    class _Task(submitit.helpers.Checkpointable):
        """Requeued on preemption and timeout; the rerun resumes from the run's epoch checkpoint."""

        def __call__(self, cfg, d):
            """Run one config (on the cluster node)."""
            return run_one(cfg, d)

    req = submitit_request(options, [c for c, _ in jobs])
    ex = submitit.AutoExecutor(folder=str(root / "_submitit"), cluster=req["cluster"],
                               slurm_max_num_timeout=req["max_num_timeout"])
    try:
        ex.update_parameters(**req["parameters"])
    except NameError as e:  # submitit's message lists the valid names
        raise ValueError(f"executor_options: got {sorted(options)}; {e}") from e
    task = _Task() if req["checkpointable"] else run_one
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


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    """The executor flags every study's CLI shares (``executor_options`` reads them back)."""
    g = p.add_argument_group("executors")
    g.add_argument("--shard", help="k/N: run only shard k (0-based) of N; N machines cover the grid once")
    g.add_argument("--devices", help="local: GPU ids to pin one worker each to, e.g. 0,1 "
                   "(default: every visible GPU)")
    g.add_argument("--gpus-per-node", type=int, help="submitit: GPUs per task (default 1; 0 for CPU)")
    g.add_argument("--timeout-min", type=int, help="submitit: wall time per task in minutes (default 240)")
    g.add_argument("--partition", help="submitit: SLURM partition")
    g.add_argument("--requeue", type=int, help="submitit: timeouts requeued per task (default 3; 0: none)")
    g.add_argument("--tasks-per-node", type=int, help="submitit: DDP ranks per node, one per GPU (default 1)")
    g.add_argument("--nodes", type=int, help="submitit: nodes per run (default 1)")


def add_seeds_flag(p: argparse.ArgumentParser) -> None:
    """``--seeds``: run a chunk of a preset (the study CLIs' plan/run/sweep commands)."""
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="only these of the preset's seeds, e.g. 0 1 (a chunk of a long sweep; "
                   "records keep the hashes they have in the whole preset); none: all")


def restrict_seeds(params: dict, seeds) -> dict:
    """``params`` with ``seeds`` narrowed to ``seeds`` (None: unchanged). Only the preset's own
    seeds are allowed, so a chunk never trains a run that the preset's figures would not read."""
    if seeds is None:
        return params
    have = list(params["seeds"])
    bad = [s for s in seeds if s not in have]
    if bad or not seeds:
        raise ValueError(f"seeds: got {list(seeds)}; allowed: a non-empty subset of the preset's {have}")
    return {**params, "seeds": [s for s in have if s in seeds]}


def executor_options(executor: str, spec_options: dict | None, a: argparse.Namespace) -> dict:
    """A spec's ``executor_options`` with the CLI flags of ``add_executor_flags`` on top."""
    out = dict(spec_options or {})
    if executor == "local" and a.devices:
        out["devices"] = a.devices
    if executor == "submitit":
        for k in ("gpus_per_node", "timeout_min", "partition", "requeue", "tasks_per_node", "nodes"):
            if getattr(a, k) is not None:
                out[k] = getattr(a, k)
    return out


def main(argv=None) -> int:
    """CLI: run | status | table. ``run`` exits 1 when any run failed."""
    from bnnlib.cli import Parser, fail
    p = Parser(prog="python -m analysis.sweep", description="Run, count or tabulate the runs of a "
               "YAML sweep spec (one record folder per config hash; finished runs are skipped).",
               example="python -m analysis.sweep run SPEC.yaml --workers 2")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND",
                           help="one of: run, status, table")
    spec_help = "sweep spec (YAML: records_dir, base, runs, grid; see the module docstring)"
    r = sub.add_parser("run", help="run every pending config of SPEC.yaml",
                       example="python -m analysis.sweep run SPEC.yaml --executor local --workers 2")
    r.add_argument("spec", help=spec_help)
    r.add_argument("--executor", choices=EXECUTORS, help="where runs execute; none: the spec's, else local")
    r.add_argument("--workers", type=int, help="local processes, an int >= 1; none: the spec's, "
                   "else one per visible GPU or 1")
    add_executor_flags(r)
    s = sub.add_parser("status", help="finished/diverged/failed/pending counts",
                       example="python -m analysis.sweep status SPEC.yaml")
    s.add_argument("spec", help=spec_help)
    t = sub.add_parser("table", help="print the records of SPEC.yaml (or of a folder) as a table",
                       example="python -m analysis.sweep table results/quick/gain_surface --csv runs.csv")
    t.add_argument("spec", help=spec_help + ", or a folder of records")
    t.add_argument("--csv", help="also write the table to this CSV file (path)")
    a = p.parse_args(argv)
    if not Path(a.spec).exists():
        return fail(f"spec: got {a.spec!r}; allowed: an existing YAML file"
                    + (" or records folder" if a.cmd == "table" else ""))
    try:
        if a.cmd == "table" and Path(a.spec).is_dir():
            recs = load_records(a.spec)
        else:
            spec, cfgs, rdir = load_spec(a.spec)
            if a.cmd == "status":
                print(status(cfgs, rdir))
                return 0
            if a.cmd == "run":
                ex = a.executor or spec.get("executor", "local")
                recs = run_sweep(cfgs, rdir, ex, a.workers or spec.get("workers"),
                                 executor_options(ex, spec.get("executor_options"), a), shard=a.shard)
                st = status(select_shard(cfgs, a.shard) if a.shard else cfgs, rdir)
                print(st)
                return 1 if st["failed"] else 0
            recs = [records.read_json(rdir / config_hash(c) / "record.json") for c in cfgs
                    if (rdir / config_hash(c) / "record.json").is_file()]
    except ValueError as e:  # bad spec, config or flag: one line
        return fail(e)
    import pandas as pd
    df = records_table(recs)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(df.to_string(index=False))
    if a.cmd == "table" and a.csv:
        df.to_csv(a.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
