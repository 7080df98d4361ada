"""Data-parallel training helpers on PyTorch's own stack (torchrun + DistributedDataParallel).

``bnnlib.train`` calls ``init(cfg.device)`` at start. Launched by ``torchrun`` (or by a SLURM
task whose environment was exported by ``submitit.helpers.TorchDistributedEnvironment``) it
joins the process group that the environment describes: NCCL when the run is on CUDA, gloo on
CPU. Launched plainly it returns a one-process ``DistEnv`` and nothing here does any I/O.

Conventions (the trainer and the tests rely on them):
- ``batch_size`` is the *global* batch; each rank trains on ``batch_size / world_size`` images.
  A global batch is split by position, rank r taking positions r, r + R, r + 2R, ... of it, so
  the union over ranks of step k is exactly the single-process batch k.
- BatchNorm statistics are per rank (plain ``nn.BatchNorm2d``, as in the published BNN ImageNet
  code) unless ``sync_bn`` (CUDA only). Running statistics follow DDP's ``broadcast_buffers``:
  rank 0's are copied to every rank at each forward and once more at the end of every epoch,
  so evaluation and checkpoints use rank 0's.
- Evaluation shards the images without padding (rank r scores items r, r + R, ...) and sums
  (correct, count) over ranks: every image is scored exactly once.
"""
from __future__ import annotations

import atexit
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistEnv", "init", "wrap_model", "shard", "all_sum", "all_ok", "check_in_sync",
           "broadcast_buffers", "gather_objects", "barrier", "world_size_check", "record_info",
           "rank_stats", "export_submitit_env"]


@dataclass
class DistEnv:
    """This process's place in the job; ``world_size == 1`` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None
    owns_group: bool = False  # we created the group, so we destroy it at the end

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes records and checkpoints."""
        return self.rank == 0

    def close(self) -> None:
        """Destroy the process group when this module created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def _env_int(name: str, default: int) -> int:
    """Integer environment variable (torchrun / submitit set RANK, WORLD_SIZE, LOCAL_RANK...)."""
    v = os.environ.get(name)
    return default if v in (None, "") else int(v)


def _want_cuda(device: str) -> bool:
    """Whether this run trains on CUDA ('auto' picks CUDA when present)."""
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def init(device: str = "auto") -> tuple[DistEnv, torch.device | None]:
    """Join the process group the environment describes; (env, per-rank device or None).

    Returns device None for a single process (the caller resolves ``device`` as before).
    With more than one process on CUDA each rank takes ``cuda:LOCAL_RANK``.
    """
    world = _env_int("WORLD_SIZE", 1)
    if dist.is_initialized():
        world = dist.get_world_size()
    if world <= 1:
        return DistEnv(), None
    env = DistEnv(rank=_env_int("RANK", 0), world_size=world, local_rank=_env_int("LOCAL_RANK", 0),
                  local_world_size=_env_int("LOCAL_WORLD_SIZE", 1))
    cuda = _want_cuda(device)
    if cuda:
        if not torch.cuda.is_available():
            raise ValueError(f"device: got {device!r}; allowed here: 'cpu' or 'auto' (no CUDA device)")
        n = torch.cuda.device_count()
        if env.local_rank >= n:
            raise ValueError(f"nproc_per_node: got {env.local_world_size} processes on this node "
                             f"(local rank {env.local_rank}); allowed: at most {n}, the CUDA "
                             f"devices of this node (one process per GPU)")
        torch.cuda.set_device(env.local_rank)
    if dist.is_initialized():
        env.rank, env.backend = dist.get_rank(), dist.get_backend()
    else:
        env.backend = "nccl" if cuda else "gloo"
        dist.init_process_group(env.backend)
        env.owns_group = True
        atexit.register(env.close)  # one group per process, kept across runs (a DWR chain)
    return env, torch.device("cuda", env.local_rank) if cuda else torch.device("cpu")


def export_submitit_env() -> bool:
    """Inside a submitit (SLURM) job with more than one task, export torch's env:// variables
    (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) through submitit's own
    ``TorchDistributedEnvironment`` so that ``init`` joins the job; True when it did.
    Every task keeps seeing all GPUs of its node and takes ``cuda:LOCAL_RANK``."""
    if os.environ.get("RANK") is not None:
        return False  # torchrun (or the user) already set the environment
    try:
        import submitit
        job = submitit.JobEnvironment()
    except Exception:  # submitit missing, or not inside a submitit job
        return False
    if job.num_tasks <= 1:
        return False
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True


def world_size_check(env: DistEnv, batch_size: int, n_train: int) -> None:
    """The global batch must split evenly over the ranks, and every rank needs a full batch."""
    w = env.world_size
    if batch_size % w:
        raise ValueError(f"world_size: got {w}; allowed: a divisor of the global batch_size "
                         f"{batch_size} (each rank trains on batch_size / world_size images)")
    if n_train // w < batch_size // w:
        raise ValueError(f"world_size: got {w}; allowed: at most {max(1, n_train * w // batch_size)} "
                         f"here: each of the {w} ranks needs a full per-rank batch of "
                         f"{batch_size // w} from {n_train} training images")


def wrap_model(model: torch.nn.Module, env: DistEnv, device: torch.device, sync_bn: bool):
    """DistributedDataParallel around ``model`` (optionally with SyncBatchNorm), or the model."""
    if sync_bn and device.type != "cuda":
        raise ValueError("sync_bn: got True; allowed: False on CPU (torch's SyncBatchNorm needs CUDA)")
    if not env.enabled:
        return model
    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    # default broadcast_buffers: rank 0's BN buffers are copied to every rank at each forward
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(n: int, env: DistEnv) -> range:
    """This rank's evaluation items: r, r + R, ... (no padding, no duplicates)."""
    return range(env.rank, n, env.world_size)


def all_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum of ``t`` over ranks (in place; identity for one process)."""
    if env.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_ok(flags: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Element-wise AND of boolean ``flags`` over ranks, so every rank stops at the same step."""
    if not env.enabled:
        return flags
    f = flags.to(torch.float32)
    dist.all_reduce(f, op=dist.ReduceOp.MIN)
    return f > 0.5


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op for one process)."""
    if env.enabled:
        dist.barrier()


def gather_objects(obj, env: DistEnv) -> list:
    """``obj`` from every rank, in rank order (``[obj]`` for one process)."""
    if not env.enabled:
        return [obj]
    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(model: torch.nn.Module, env: DistEnv) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank."""
    if env.enabled:
        for b in model.buffers():
            dist.broadcast(b, 0)


def _fingerprint(model: torch.nn.Module, buffers: bool) -> str:
    """sha256 of the parameters (and buffers) as bytes: equal only when bit-identical."""
    from .records import weights_sha256
    named = dict(model.named_parameters())
    if buffers:
        named.update(model.named_buffers())
    return weights_sha256(named)


def check_in_sync(model: torch.nn.Module, env: DistEnv, buffers: bool = False) -> None:
    """Raise when any rank's parameters (and buffers) differ from rank 0's by a single bit."""
    if not env.enabled:
        return
    prints = gather_objects(_fingerprint(model, buffers), env)
    if len(set(prints)) != 1:
        bad = [r for r, p in enumerate(prints) if p != prints[0]]
        raise RuntimeError(f"data-parallel ranks {bad} hold weights that differ from rank 0's")


def rank_stats(env: DistEnv, images_per_s: float | None) -> list[dict]:
    """Every rank's training throughput (its own images per second) and host, in rank order."""
    return gather_objects({"rank": env.rank, "images_per_s": images_per_s,
                           "host": socket.gethostname(), "local_rank": env.local_rank}, env)


def record_info(env: DistEnv, rank_stats: list[dict], sync_bn: bool, checks: int) -> dict:
    """The record's ``distributed`` entry: world, backend, per-rank throughput, sync checks."""
    return {"world_size": env.world_size, "backend": env.backend,
            "local_world_size": env.local_world_size, "sync_bn": sync_bn,
            "bn_statistics": ("whole batch (one process)" if not env.enabled else
                              "synchronised over ranks" if sync_bn else
                              "per rank (running statistics from rank 0)"),
            "ranks": rank_stats, "sync_checks_passed": checks,
            "master": os.environ.get("MASTER_ADDR"), "host": socket.gethostname()}
