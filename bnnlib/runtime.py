"""Process-wide PyTorch settings a run depends on: determinism, TF32, the compiler cache.

``apply_determinism(True)`` makes GPU runs repeatable: cuDNN deterministic with autotuning off,
no TF32 in matmuls or convolutions, ``torch.use_deterministic_algorithms(True)`` (an op that
has no deterministic implementation raises, see ``determinism_error``) and the cuBLAS
workspace setting it needs. ``apply_determinism(False)`` restores what was there before a
deterministic run, so runs sharing one process (a sweep) do not leak settings into each other.
``backend_flags()`` is what every record stores about these settings.
"""
from __future__ import annotations

import os

import torch

__all__ = ["apply_determinism", "backend_flags", "determinism_error", "reset_compiler"]

_saved: dict | None = None  # the settings before the first deterministic run of this process


def _flags() -> dict:
    """The settable flags, as a dict that ``_set`` accepts."""
    return {"cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled()}


def _set(f: dict) -> None:
    """Set the flags of ``_flags()``."""
    torch.backends.cudnn.deterministic = f["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = f["cudnn_benchmark"]
    torch.backends.cuda.matmul.allow_tf32 = f["tf32_matmul"]
    torch.backends.cudnn.allow_tf32 = f["tf32_cudnn"]
    torch.use_deterministic_algorithms(f["deterministic_algorithms"],
                                       warn_only=f["deterministic_warn_only"])


def apply_determinism(on: bool) -> None:
    """Deterministic settings for this run (``on``), or the ones before the last such run."""
    global _saved
    if on:
        if _saved is None:
            _saved = _flags()
        # cuBLAS is only repeatable with a fixed workspace; read when its handle is created
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        _set({"cudnn_deterministic": True, "cudnn_benchmark": False, "tf32_matmul": False,
              "tf32_cudnn": False, "deterministic_algorithms": True, "deterministic_warn_only": False})
    elif _saved is not None:
        _set(_saved)
        _saved = None


def determinism_error(exc: BaseException) -> ValueError | None:
    """A ValueError naming the config field when ``exc`` is PyTorch refusing a
    non-deterministic op under ``deterministic=True``; None for any other error."""
    msg = str(exc)
    if not (isinstance(exc, RuntimeError) and torch.are_deterministic_algorithms_enabled()
            and ("deterministic" in msg or "CUBLAS_WORKSPACE_CONFIG" in msg)):
        return None
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    return ValueError(f"deterministic: got True; allowed: False for this model on this device "
                      f"(torch {torch.__version__} has no deterministic version of an op it uses: "
                      f"{first})")


def backend_flags() -> dict:
    """cuDNN version, TF32, determinism and compiler-relevant settings now in force."""
    out = _flags()
    out.update(cudnn_version=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
               float32_matmul_precision=torch.get_float32_matmul_precision(),
               cublas_workspace_config=os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
               cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    return out


def reset_compiler() -> None:
    """Forget every earlier ``torch.compile`` of this process (dynamo caches, recompile
    counts, CUDA-graph trees), so a new model of a sweep compiles afresh instead of silently
    falling back to eager once the recompile limit is hit."""
    torch.compiler.reset()
