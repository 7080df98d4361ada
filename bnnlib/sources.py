"""Data sources for ``bnnlib.train``: what an epoch iterates over, for one rank.

Two kinds share one small interface (``info``, ``num_classes``, ``steps_per_epoch``,
``train_batches(epoch, gen)``, ``eval_batches(split, bs)``, ``eval_count(split)``):

- ``TensorSource``: CIFAR-10 / synthetic held as uint8 on the training device (no DataLoader).
  Every rank draws the same permutation and augments the whole global batch from the same
  generator, then keeps positions r, r + R, ... : the single-process stream, sharded.
- ``bnnlib.imagenet.LoaderSource``: ImageFolder files through DataLoader workers with a
  DistributedSampler.
"""
from __future__ import annotations

import torch

from .data import augment, augment_pad, normalize, resolve_dataset
from .distributed import DistEnv, shard, world_size_check

__all__ = ["TensorSource", "make_source"]


class TensorSource:
    """In-memory uint8 splits (``bnnlib.data.Splits``) on the device."""

    def __init__(self, data, batch_size: int, cfg, env: DistEnv | None = None, pad: int | None = None):
        self.data, self.bs, self.cfg, self.env = data, batch_size, cfg, env or DistEnv()
        self.info = data.info
        self.num_classes = int(data.y_train.max()) + 1 if len(data.y_train) else 0
        self.steps_per_epoch = len(data.y_train) // batch_size  # last partial batch dropped
        self.pad = augment_pad(cfg.resolution) if pad is None else pad

    def train_batches(self, epoch: int, gen: torch.Generator):
        """This rank's share of each global batch (same RNG draws on every rank)."""
        d, bs, env = self.data, self.bs, self.env
        perm = torch.randperm(len(d.y_train), generator=gen, device=gen.device)
        for i in range(self.steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            xb, yb = d.x_train[idx], d.y_train[idx]
            if self.cfg.augment:
                xb = augment(xb, gen, pad=self.pad)
            if env.enabled:
                xb, yb = xb[env.rank::env.world_size], yb[env.rank::env.world_size]
            yield normalize(xb, channels_last=self.cfg.channels_last), yb

    def _split(self, split: str):
        """(x, y) of 'val' or 'test'."""
        return (self.data.x_val, self.data.y_val) if split == "val" else (self.data.x_test, self.data.y_test)

    def eval_count(self, split: str) -> int:
        """Images in ``split`` over all ranks."""
        return len(self._split(split)[1])

    def eval_batches(self, split: str, bs: int):
        """This rank's unpadded shard of ``split``."""
        x, y = self._split(split)
        if self.env.enabled:
            s = shard(len(y), self.env)
            x, y = x[s.start::s.step], y[s.start::s.step]
        for s in range(0, len(y), bs):
            yield normalize(x[s:s + bs], channels_last=self.cfg.channels_last), y[s:s + bs]


def make_source(cfg, batch_size: int, device: torch.device, env: DistEnv):
    """The config's data source on ``device`` for this rank (validates world size and head)."""
    if cfg.dataset == "imagenet":
        from .imagenet import LoaderSource
        src = LoaderSource(cfg, batch_size, device, env)
        head = cfg.build_spec().num_classes
        if head != src.num_classes:
            raise ValueError(f"num_classes: got a model head of {head} classes for an ImageFolder "
                             f"of {src.num_classes} classes; allowed: {src.num_classes} (e.g. "
                             f"--model-kwargs '{{\"num_classes\": {src.num_classes}}}')")
        return src
    data = resolve_dataset(cfg.dataset, cfg.data_root, cfg.val_size, cfg.train_subset,
                           cfg.split_seed, synthetic_train=cfg.synthetic_train,
                           synthetic_test=cfg.synthetic_test, resolution=cfg.resolution).to(device)
    if len(data.y_train) < batch_size:
        raise ValueError(f"batch_size: got {batch_size}; allowed: at most the "
                         f"{len(data.y_train)} training images")
    world_size_check(env, batch_size, len(data.y_train))
    return TensorSource(data, batch_size, cfg, env)
