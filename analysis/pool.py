"""Spawned worker processes for the local sweep executor, each pinned to its own GPU.

Kept free of torch imports so a worker starts in well under a second until it imports what
its task needs (the test of the pinning spawns two). ``analysis.sweep`` is the user-facing side.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

__all__ = ["local_pool", "pinned", "worker_info"]

_PINNED: str | None = None  # in a pinned worker: the GPU id it owns (its CUDA_VISIBLE_DEVICES)


def pinned() -> str | None:
    """The GPU id this process was pinned to by ``local_pool``, else None."""
    return _PINNED


def _pin_worker(slots) -> None:
    """Worker initializer: take the next GPU id and make it the only visible one."""
    global _PINNED
    _PINNED = slots.get()
    os.environ["CUDA_VISIBLE_DEVICES"] = _PINNED  # before this process touches CUDA


def local_pool(workers: int, devices: list[str] | None = None) -> ProcessPoolExecutor:
    """``workers`` spawned processes (never fork: CUDA and torch's thread pools do not survive
    it); with ``devices``, worker i owns devices[i % len(devices)] alone."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    if not devices:
        return ProcessPoolExecutor(workers, mp_context=ctx)
    slots = ctx.Queue()
    for i in range(workers):
        slots.put(str(devices[i % len(devices)]))
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_pin_worker, initargs=(slots,))


def worker_info(barrier=None) -> dict:
    """pid, CUDA_VISIBLE_DEVICES and pinned GPU of the calling worker; with ``barrier``, first
    wait until as many workers hold one task each (so each report comes from another process)."""
    if barrier is not None:
        barrier.wait(timeout=120)
    return {"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pinned": _PINNED}
