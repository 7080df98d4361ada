"""Run records: atomic JSON files plus the provenance every result must carry.

A record is plain JSON (one per run). Writes go to a temp file in the same folder followed by
``os.replace``, so a reader (or a killed writer) never sees half a file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["write_json_atomic", "read_json", "config_hash", "config_dict", "versions",
           "git_commit", "device_info", "weights_sha256", "save_atomic", "jsonable",
           "HASH_EXCLUDED", "failure_record", "rng_state", "set_rng_state"]

# Operational fields: they change where/how a run executes, not what it computes, so two
# configs differing only here are the same experiment (and share one records folder).
HASH_EXCLUDED = frozenset({"device", "threads", "data_root", "save_weights", "progress",
                           "stop_after_epoch", "eval_batch_size", "workers", "ddp_check_every"})


def jsonable(obj: Any) -> Any:
    """Recursively convert tuples, paths, numpy/torch scalars and non-finite floats to JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # JSON has no NaN/inf; keep the information as text
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` via temp file + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(jsonable(obj), f, indent=1, sort_keys=True, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temp file + os.replace (checkpoints, weights)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Load a JSON file."""
    with open(path) as f:
        return json.load(f)


def config_dict(config: Any) -> dict:
    """A config (dataclass or dict) as a JSON-ready dict."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return jsonable(dataclasses.asdict(config))
    if isinstance(config, dict):
        return jsonable(config)
    raise ValueError(f"config: got {type(config).__name__}; allowed: a dataclass or a dict")


def config_hash(config: Any) -> str:
    """16-hex sha256 of the sorted-key JSON of the config, operational fields left out.

    A config class may list ``HASH_NEUTRAL_DEFAULTS`` (fields added after records existed):
    such a field is left out while it holds that default, so older records keep their hash.
    """
    neutral = getattr(config, "HASH_NEUTRAL_DEFAULTS", {})
    d = {k: v for k, v in config_dict(config).items()
         if k not in HASH_EXCLUDED and not (k in neutral and v == neutral[k])}
    s = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(s.encode()).hexdigest()[:16]


def versions() -> dict:
    """Versions of python, torch, numpy and this package."""
    import numpy
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": numpy.__version__, "platform": platform.platform()}
    try:
        from importlib.metadata import version
        out["bnn_dwr"] = version("bnn-dwr")
    except Exception:  # not installed (running from a checkout): the git commit identifies it
        out["bnn_dwr"] = None
    return out


def git_commit(path: str | os.PathLike | None = None) -> dict:
    """{'commit', 'dirty'} of the checkout holding ``path`` (default: this package)."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=where, capture_output=True, text=True,
                                        timeout=10, check=True).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _cpu_name() -> str:
    """CPU model name (from /proc/cpuinfo where available)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str | torch.device = "cpu") -> dict:
    """What ran the job: device type/name, torch threads, CPU count, and the backend settings
    the numbers depend on (cuDNN version, TF32, determinism; ``bnnlib.runtime.backend_flags``)."""
    from .runtime import backend_flags
    dev = torch.device(device)
    out = {"type": dev.type, "threads": torch.get_num_threads(), "cpu": _cpu_name(),
           "cpu_count": os.cpu_count(), "backends": backend_flags()}
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        out["name"] = torch.cuda.get_device_name(idx)
        out["cuda"] = torch.version.cuda
        out["capability"] = list(torch.cuda.get_device_capability(idx))
        out["visible_gpus"] = torch.cuda.device_count()
    else:
        out["name"] = out["cpu"]
    return out


def weights_sha256(state_dict: dict) -> str:
    """sha256 over (name, dtype, shape, raw bytes) of every tensor, in sorted name order.

    Independent of how the file is serialised, so equal weights always give equal hashes.
    """
    h = hashlib.sha256()
    for k in sorted(state_dict):
        v = state_dict[k]
        if not torch.is_tensor(v):
            continue
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def failure_record(config: Any, exc: BaseException) -> dict:
    """Record of a run that raised: its config, hash, error and full traceback."""
    import traceback
    from datetime import datetime, timezone
    cd = config_dict(config)
    return {"status": "failed", "config": cd, "config_hash": config_hash(config),
            "seed": cd.get("seed"), "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc)),
            "git_commit": git_commit()["commit"], "versions": versions(),
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def rng_state(gen: torch.Generator) -> dict:
    """Every RNG a run touches: torch (CPU, CUDA), its data generator, numpy, python."""
    st = {"torch": torch.get_rng_state(), "gen": gen.get_state(), "numpy": np.random.get_state(),
          "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict, gen: torch.Generator) -> None:
    """Inverse of ``rng_state``, whatever the number of GPUs visible now.

    The trainer draws its data order and augmentation from its own generator (``gen``, saved
    whole); the global CUDA states are restored for the devices that exist now and the rest
    are dropped, so a checkpoint saved with 8 visible GPUs resumes on 1 (or on CPU).
    """
    torch.set_rng_state(st["torch"])
    gen.set_state(st["gen"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if st.get("cuda") and torch.cuda.is_available():
        for i, s in enumerate(st["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)


def python_info() -> dict:
    """Interpreter path and argv (how the run was launched)."""
    return {"executable": sys.executable, "argv": list(sys.argv)}
