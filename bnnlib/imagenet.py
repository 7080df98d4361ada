"""ImageNet-1k in the ImageFolder layout, read with Pillow and a torch DataLoader.

Layout (never downloaded): ``ROOT/train/<wnid>/*.JPEG`` and ``ROOT/val/<wnid>/*.JPEG``, ROOT
from the argument or ``$BNNLIB_IMAGENET``. Class labels are the sorted train folder names.

Splits: a stratified, seeded validation set is carved from *train* (``split_seed``,
``val_size``) for picking epochs and calibrating pruning; the official ``val/`` folder is the
test set and is only reported.

Transforms (the standard BNN recipe; sizes scale with ``size`` so tests can use tiny images):
- train: random-resized crop (area 8-100 %, aspect 3/4-4/3, Inception/ResNet practice) to
  ``size``, optional AlexNet-style PCA lighting noise (ReActNet's train.py uses
  ``Lighting(0.1)`` after the crop), horizontal flip;
- eval: resize the short side to ``round(size * 256 / 224)``, centre crop ``size``.
Images leave the workers as uint8 CHW tensors; the trainer normalises them on its device.

Determinism: the augmentation of item i in epoch e is drawn from a generator seeded with
(seed, e, i), so it does not depend on worker count, rank count or resumption. The sampler
hands (index, epoch) pairs to the dataset, which also works with persistent workers.
JPEGs are decoded at a reduced DCT scale (Pillow's ``draft``) when the crop would be
downsampled by 2x or more anyway: the usual decode speed-up, slightly different pixels than a
full decode followed by the resize.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["IMAGE_EXTS", "LAYOUT", "ImageFolderIndex", "scan", "resolve_root", "FolderImages",
           "EpochSampler", "LoaderSource", "train_transform", "eval_transform",
           "random_resized_crop_box", "fake_folder", "calibration_images"]

IMAGE_EXTS = (".jpeg", ".jpg", ".png")
LAYOUT = ("a folder holding train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (the ImageNet-1k "
          "ImageFolder layout; it is never downloaded)")
# AlexNet PCA lighting: eigenvalues/vectors of ImageNet RGB (pixels in [0, 1]), as published
# with fb.resnet.torch and used by ReActNet's Lighting transform.
EIGVAL = np.array([0.2175, 0.0188, 0.0045])
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]])


@dataclass
class ImageFolderIndex:
    """Paths and labels of both splits; ``classes[label]`` is the wnid."""

    root: Path
    classes: list
    train_paths: list
    train_labels: torch.Tensor
    test_paths: list
    test_labels: torch.Tensor


def resolve_root(root=None) -> Path:
    """The ImageNet root: argument, else $BNNLIB_IMAGENET; an error naming the layout if unset."""
    r = root if root is not None else os.environ.get("BNNLIB_IMAGENET")
    if not r:
        raise ValueError(f"data_root: got None and BNNLIB_IMAGENET is unset; allowed: {LAYOUT}")
    return Path(r).expanduser()


def _bad(root, why: str) -> ValueError:
    """The one error for a missing or malformed folder."""
    return ValueError(f"data_root: got {str(root)!r} ({why}); allowed: {LAYOUT}")


def _images(d: Path) -> list:
    """Sorted image files directly in ``d`` (scandir: no stat per file on a shared filesystem)."""
    with os.scandir(d) as it:
        return sorted(e.path for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_EXTS
                      and e.is_file())


def _read_split(root: Path, split: str) -> dict:
    """{wnid: [paths]} of ``root/split``; errors for a missing split, stray images, empty classes."""
    d = root / split
    if not d.is_dir():
        raise _bad(root, f"no {split}/ folder")
    with os.scandir(d) as it:
        subdirs = sorted(Path(e.path) for e in it if e.is_dir())
    if _images(d):
        raise _bad(root, f"images directly in {split}/, not in per-class folders")
    if not subdirs:
        raise _bad(root, f"{split}/ has no class folders")
    out = {p.name: _images(p) for p in subdirs}
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise _bad(root, f"{split}/ class folders without images: {empty[:5]}")
    return out


def scan(root=None) -> ImageFolderIndex:
    """Index ``root`` (see ``resolve_root``); every val class must be a train class."""
    root = resolve_root(root)
    if not root.is_dir():
        raise _bad(root, "no such folder")
    train, test = _read_split(root, "train"), _read_split(root, "val")
    classes = sorted(train)
    extra = sorted(set(test) - set(train))
    if extra:
        raise _bad(root, f"val/ classes missing from train/: {extra[:5]}")
    lab = {c: i for i, c in enumerate(classes)}

    def flat(d):
        """(paths, labels) in class order."""
        paths = [p for c in sorted(d) for p in d[c]]
        labels = [lab[c] for c in sorted(d) for _ in d[c]]
        return paths, torch.tensor(labels, dtype=torch.long)

    (trp, trl), (tep, tel) = flat(train), flat(test)
    return ImageFolderIndex(root, classes, trp, trl, tep, tel)


def random_resized_crop_box(w: int, h: int, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple:
    """(left, top, width, height) of a random crop covering ``scale`` of the area at an aspect
    ratio log-uniform in ``ratio``; 10 tries, then the largest centred crop within ``ratio``."""
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * ar)), round(math.sqrt(target / ar))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1)), cw, ch
    if w / h < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif w / h > ratio[1]:
        cw, ch = round(h * ratio[1]), h
    else:
        cw, ch = w, h
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def _open_draft(path: str, want_w: float, want_h: float):
    """Open an image, letting JPEG decode at the smallest DCT scale still >= (want_w, want_h)."""
    from PIL import Image
    img = Image.open(path)
    full = img.size
    if img.format == "JPEG":
        img.draft("RGB", (max(1, math.ceil(want_w)), max(1, math.ceil(want_h))))
    img = img.convert("RGB")
    return img, img.size[0] / full[0], img.size[1] / full[1]


def _to_tensor(img) -> torch.Tensor:
    """PIL RGB image -> uint8 CHW tensor."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def train_transform(path: str, size: int, rng, lighting: float = 0.0) -> torch.Tensor:
    """Random-resized crop to ``size``, PCA lighting noise (std ``lighting``), random flip."""
    from PIL import Image
    with Image.open(path) as probe:
        w, h = probe.size
    x0, y0, cw, ch = random_resized_crop_box(w, h, rng)
    img, sx, sy = _open_draft(path, w * size / cw, h * size / ch)
    box = (x0 * sx, y0 * sy, (x0 + cw) * sx, (y0 + ch) * sy)
    img = img.resize((size, size), Image.BILINEAR, box=box)
    arr = np.asarray(img, dtype=np.uint8)
    if lighting > 0:
        alpha = rng.normal(0.0, lighting, 3)
        rgb = EIGVEC @ (alpha * EIGVAL) * 255.0
        arr = np.clip(arr.astype(np.float32) + rgb.astype(np.float32), 0, 255).round().astype(np.uint8)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    return torch.from_numpy(np.array(arr, dtype=np.uint8, order="C")).permute(2, 0, 1)


def eval_transform(path: str, size: int) -> torch.Tensor:
    """Resize the short side to round(size * 256 / 224), centre crop ``size`` (uint8 CHW)."""
    from PIL import Image
    resize = round(size * 256 / 224)
    with Image.open(path) as probe:
        w, h = probe.size
    k = resize / min(w, h)
    nw, nh = max(resize, round(w * k)), max(resize, round(h * k))
    img, _, _ = _open_draft(path, nw, nh)
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = round((nw - size) / 2), round((nh - size) / 2)
    return _to_tensor(img.crop((left, top, left + size, top + size)))


class FolderImages(torch.utils.data.Dataset):
    """Items are (index, epoch) pairs -> (uint8 CHW image, label)."""

    def __init__(self, paths: list, labels: torch.Tensor, size: int, train: bool,
                 seed: int = 0, lighting: float = 0.0):
        self.paths, self.labels, self.size = paths, labels, size
        self.train, self.seed, self.lighting = train, seed, lighting

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item):
        i, epoch = item if isinstance(item, tuple) else (item, 0)
        path = self.paths[i]
        if self.train:
            rng = np.random.default_rng([self.seed, epoch, i])
            x = train_transform(path, self.size, rng, self.lighting)
        else:
            x = eval_transform(path, self.size)
        return x, self.labels[i]


class EpochSampler(torch.utils.data.Sampler):
    """Yields (index, epoch) from an inner sampler (e.g. DistributedSampler); ``set_epoch``
    reaches both, so the order and the per-item augmentation follow the epoch."""

    def __init__(self, inner, epoch: int = 0):
        self.inner, self.epoch = inner, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self):
        return ((int(i), self.epoch) for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


class LoaderSource:
    """ImageNet for ``bnnlib.train``: sharded DataLoaders for train, validation and test."""

    def __init__(self, cfg, batch_size: int, device: torch.device, env, index: ImageFolderIndex | None = None):
        from .data import CIFAR_MEAN, CIFAR_STD, split_train_val, stratified_subset
        from .distributed import world_size_check
        idx = index or scan(cfg.data_root)
        tr, va = split_train_val(idx.train_labels, cfg.val_size, cfg.split_seed)
        if cfg.train_subset is not None:
            tr = tr[stratified_subset(idx.train_labels[tr], cfg.train_subset, cfg.split_seed)]
        if len(tr) < batch_size:
            raise ValueError(f"batch_size: got {batch_size}; allowed: at most the {len(tr)} training images")
        world_size_check(env, batch_size, len(tr))
        self.env, self.device, self.cfg = env, device, cfg
        self.num_classes = len(idx.classes)
        self.counts = {"val": len(va), "test": len(idx.test_paths)}
        pick = lambda ids: ([idx.train_paths[i] for i in ids.tolist()], idx.train_labels[ids])
        size = cfg.image_size
        train_set = FolderImages(*pick(tr), size, True, cfg.seed, cfg.lighting)
        inner = torch.utils.data.DistributedSampler(
            train_set, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=cfg.seed,
            drop_last=True)
        self.sampler = EpochSampler(inner)
        self.train_loader = self._loader(train_set, batch_size // env.world_size, self.sampler, True)
        self.eval_sets = {"val": FolderImages(*pick(va), size, False),
                          "test": FolderImages(idx.test_paths, idx.test_labels, size, False)}
        self.steps_per_epoch = len(self.train_loader)
        self._eval_loaders = {}
        self.info = {"name": "imagenet", "note": f"ImageNet-1k ImageFolder ({len(idx.classes)} "
                     f"classes) at {size}x{size}; test = the official val/ folder",
                     "n_train": len(tr), "n_val": len(va), "n_test": len(idx.test_paths),
                     "val_size": cfg.val_size, "train_subset": cfg.train_subset,
                     "split_seed": cfg.split_seed, "image_size": size, "lighting": cfg.lighting,
                     "mean": list(CIFAR_MEAN), "std": list(CIFAR_STD), "n_classes": len(idx.classes)}

    def _loader(self, ds, bs: int, sampler, drop_last: bool):
        """A DataLoader with the config's workers, pinned memory on CUDA, persistent workers.

        Workers start from a forkserver, not by forking this process: a fork copies whatever
        thread pools the parent holds (CUDA, OpenMP, an OpenVINO runtime) in an undefined state,
        which crashed the test suite with a segmentation fault."""
        w = self.cfg.workers
        return torch.utils.data.DataLoader(
            ds, batch_size=bs, sampler=sampler, num_workers=w, drop_last=drop_last,
            pin_memory=self.device.type == "cuda", persistent_workers=w > 0,
            multiprocessing_context="forkserver" if w > 0 else None)

    def train_batches(self, epoch: int, gen=None):
        """This rank's share of each global batch of ``epoch``: (normalised float, labels)."""
        from .data import normalize
        self.sampler.set_epoch(epoch)
        for x, y in self.train_loader:
            x = x.to(self.device, non_blocking=True)
            yield normalize(x, channels_last=self.cfg.channels_last), y.to(self.device, non_blocking=True)

    def eval_count(self, split: str) -> int:
        """Images in ``split`` over all ranks."""
        return self.counts[split]

    def eval_batches(self, split: str, bs: int):
        """This rank's unpadded shard of ``split`` in batches of ``bs``."""
        from .data import normalize
        from .distributed import shard
        if split not in self._eval_loaders:  # built once: persistent workers serve every epoch
            ids = list(shard(self.counts[split], self.env))
            self._eval_loaders[split] = self._loader(self.eval_sets[split], bs, ids, False) if ids else ()
        for x, y in self._eval_loaders[split]:
            x = normalize(x.to(self.device, non_blocking=True), channels_last=self.cfg.channels_last)
            yield x, y.to(self.device, non_blocking=True)


def fake_folder(root, classes: int = 4, train_per_class: int = 12, val_per_class: int = 3,
                side=(36, 60), seed: int = 0, quality: int = 90) -> Path:
    """Write a small learnable ImageFolder of JPEGs (class = dominant colour + noise) for tests
    and decode benchmarks; image sides are drawn from ``side`` so crops see varied shapes."""
    from PIL import Image
    root, rng = Path(root), np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = (int(v) for v in rng.integers(side[0], side[1] + 1, 2))
                img = np.zeros((h, w, 3))
                img[..., c % 3] = 150 + 80 * ((c // 3) % 2)
                img = np.clip(img + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{split}_{c}_{i}.JPEG", quality=quality)
    return root


def calibration_images(cfg, n: int, seed: int):
    """(CalibrationSet, normalised images, info): ``n`` images of the validation split carved
    from train (as ``LoaderSource`` carves it), eval transform; no test image is read.
    Used to calibrate DWR's clustering pruning (``analysis.dwr.pipeline``)."""
    from .data import normalize, split_train_val
    from .prune import CalibrationSet
    idx = scan(cfg.data_root)
    tr, va = split_train_val(idx.train_labels, cfg.val_size, cfg.split_seed)
    if len(va) == 0:
        raise ValueError(f"val_size: got {cfg.val_size}; allowed: > 0 (calibration needs validation images)")
    cal = CalibrationSet.draw(va.tolist(), n, seed)
    cal.check_within(va.tolist())
    x = torch.stack([eval_transform(idx.train_paths[i], cfg.image_size) for i in cal.indices])
    return cal, normalize(x), {"name": "imagenet", "note": f"ImageNet ImageFolder at {cfg.image_size}px",
                               "source": "train split, validation part", "val_size": cfg.val_size,
                               "split_seed": cfg.split_seed}
