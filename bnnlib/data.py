"""Datasets as uint8 tensors: CIFAR-10 (official python layout) and a learnable synthetic set.

Everything is held in memory as ``uint8`` NCHW tensors (CIFAR-10 is 180 MB), so batching and
augmentation are tensor ops on whole batches (see ``augment``) on whatever device holds them.

Root resolution: argument, else ``$BNNLIB_DATA``, else the user cache dir
(``$XDG_CACHE_HOME/bnnlib`` or ``~/.cache/bnnlib``). The loader accepts either the folder that
contains ``cifar-10-batches-py`` or that folder itself.

Selection hygiene: ``split_train_val`` carves a stratified, seeded validation set out of the
*training* images; the test set is only for reporting.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["CIFAR10_URL", "CIFAR10_MD5", "CIFAR_MEAN", "CIFAR_STD", "Dataset", "Splits",
           "default_root", "load_cifar10", "download_cifar10", "synthetic", "split_train_val",
           "stratified_subset", "resolve_dataset", "augment", "normalize", "DATASETS",
           "downsample", "augment_pad", "name_label", "describe"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # published md5 of the official archive
DIRNAME = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
# The DWR authors normalise CIFAR with the ImageNet statistics; we follow them (BN after the
# stem makes the choice nearly irrelevant, but it keeps inputs identical to theirs).
CIFAR_MEAN = (0.485, 0.456, 0.406)
CIFAR_STD = (0.229, 0.224, 0.225)
DATASETS = ("cifar10", "synthetic")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
OFFICIAL_NOTE = "official CIFAR-10 pixels (python layout)"
JPEG_NOTE = ("JPEG-rebuilt CIFAR-10 copy (quality 75, 4:2:0; see SOURCE.md beside the batches): "
             "NOT the official pixels; accuracies are expected about 2-3 points below published "
             "CIFAR-10 numbers; compare only with runs on the same copy")


@dataclass
class Dataset:
    """Images (N, 3, H, W) uint8 and int64 labels for train and test, plus provenance."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    note: str
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes (largest training label + 1)."""
        return int(self.y_train.max()) + 1


@dataclass
class Splits:
    """Train / validation / test tensors (uint8 images, int64 labels) and a record-ready info dict."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    info: dict

    def to(self, device) -> "Splits":
        """All tensors moved to ``device`` (kept uint8: 4x less memory than float)."""
        t = {k: getattr(self, k).to(device) for k in
             ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Splits(**t, info=self.info)


def default_root(root: str | os.PathLike | None = None) -> Path:
    """Data root: ``root``, else $BNNLIB_DATA, else the user cache directory."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("BNNLIB_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bnnlib"


def _batch_dir(root: Path) -> Path | None:
    """The folder holding the batch files, or None when absent."""
    for d in (root / DIRNAME, root):
        if all((d / f).is_file() for f in TRAIN_FILES + (TEST_FILE,)):
            return d
    return None


def _md5(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _offline_message(root: Path, url: str, err: Exception) -> str:
    """The one error message for missing data: where to put the files."""
    return (f"CIFAR-10 not found under {root} and the download from {url} failed ({err}). "
            f"Put the official python-version batches in {root / DIRNAME} (data_batch_1..5, "
            f"test_batch), or pass root=..., or set BNNLIB_DATA to the folder that holds "
            f"{DIRNAME}.")


def download_cifar10(root: str | os.PathLike, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5) -> Path:
    """Download the archive from ``url``, check its md5, extract it under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tar.gz", dir=root)
    os.close(fd)
    try:
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:  # URLError is an OSError
            raise FileNotFoundError(_offline_message(root, url, e)) from e
        got = _md5(Path(tmp))
        if got != md5:
            raise ValueError(f"md5 of {url}: got {got}; expected {md5} (corrupt or wrong file; "
                             f"nothing was extracted)")
        with tarfile.open(tmp, "r:gz") as tar:
            # the 'data' filter refuses absolute paths and links out of root (Python >= 3.10.12)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(root, **safe)
    finally:
        Path(tmp).unlink(missing_ok=True)
    d = _batch_dir(root)
    if d is None:
        raise FileNotFoundError(f"archive from {url} did not contain {DIRNAME} with "
                                f"{TRAIN_FILES + (TEST_FILE,)}")
    return d


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels int64) of one pickled batch file."""
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    y = np.asarray(d[b"labels"], dtype=np.int64)
    return x, y


def _note_for(d: Path) -> tuple[str, dict]:
    """Dataset note: flags the JPEG-rebuilt copy by the SOURCE.md that sits beside it."""
    src = d / "SOURCE.md"
    if src.is_file():
        text = src.read_text(errors="replace")
        sha = hashlib.sha256(text.encode()).hexdigest()[:16]
        if "JPEG" in text:
            return JPEG_NOTE, {"source_md_sha256": sha, "jpeg_rebuilt": True}
        return f"CIFAR-10 copy described by its SOURCE.md (sha256 {sha})", {"source_md_sha256": sha}
    return OFFICIAL_NOTE, {"jpeg_rebuilt": False}


def load_cifar10(root: str | os.PathLike | None = None, download: bool = True,
                 url: str = CIFAR10_URL, md5: str = CIFAR10_MD5) -> Dataset:
    """CIFAR-10 from the official python layout; downloads (md5-checked) when missing."""
    base = default_root(root)
    d = _batch_dir(base)
    if d is None:
        if not download:
            raise FileNotFoundError(_offline_message(base, "(download disabled)", RuntimeError("not attempted")))
        d = download_cifar10(base, url=url, md5=md5)
    key = (str(d.resolve()), tuple((d / f).stat().st_mtime_ns if (d / f).exists() else None
                                   for f in TRAIN_FILES + (TEST_FILE, "SOURCE.md")))
    if key not in _CACHE:  # unpickling takes seconds; sweeps load the same files many times
        _CACHE.clear()
        _CACHE[key] = _read_all(d)
    return _CACHE[key]


_CACHE: dict = {}


def _read_all(d: Path) -> Dataset:
    """Parse the five training batches and the test batch in ``d``."""
    xs, ys = zip(*(_read_batch(d / f) for f in TRAIN_FILES))
    xt, yt = _read_batch(d / TEST_FILE)
    note, extra = _note_for(d)
    return Dataset(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                   torch.from_numpy(xt), torch.from_numpy(yt), name="cifar10", note=note,
                   info={"classes": list(CLASSES), **extra})


def synthetic(n_train: int = 10000, n_test: int = 2000, seed: int = 0, num_classes: int = 10,
              size: int = 32, noise: float = 32.0) -> Dataset:
    """Seeded CIFAR-shaped images a small CNN can learn: smooth class prototypes, random
    brightness, random shifts, pixel noise. Test images come from the same distribution."""
    for name, v in (("n_train", n_train), ("n_test", n_test), ("num_classes", num_classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name}: got {v!r}; allowed: a positive int")
    xtr, ytr, xte, yte = _synthetic_draw(n_train, n_test, seed, num_classes, size, float(noise))
    note = (f"synthetic CIFAR-shaped data (seed {seed}, {n_train} train / {n_test} test, "
            f"{num_classes} classes); not CIFAR-10, accuracies say nothing about real images")
    return Dataset(xtr, ytr, xte, yte, name="synthetic", note=note,
                   info={"synthetic_seed": seed, "classes": [str(c) for c in range(num_classes)]})


@functools.lru_cache(maxsize=4)
def _synthetic_draw(n_train: int, n_test: int, seed: int, num_classes: int, size: int, noise: float):
    """The images of ``synthetic``, drawn once per process and argument set (1.4 s for the
    default 12k images; every run of a synthetic sweep asks for the same ones). Callers index
    or pool them into new tensors and never write into them."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 1.0, (num_classes, 3, 4, 4))
    protos = coarse.repeat(size // 4, axis=2).repeat(size // 4, axis=3)  # blocky low-frequency
    protos = 50.0 * protos / protos.std()

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` labelled images from the prototypes."""
        y = rng.integers(0, num_classes, n)
        x = np.empty((n, 3, size, size), dtype=np.uint8)
        for s in range(0, n, 2048):  # chunks bound the float temporary
            yy = y[s:s + 2048]
            m = len(yy)
            # per-image cyclic shift of up to 3 pixels, done as one gather
            dy, dx = rng.integers(-3, 4, (2, m, 1, 1))
            r = (np.arange(size).reshape(1, size, 1) + dy) % size
            c = (np.arange(size).reshape(1, 1, size) + dx) % size
            img = protos[yy[:, None, None], :, r, c].transpose(0, 3, 1, 2)
            img = img * rng.uniform(0.6, 1.4, (m, 1, 1, 1))
            img += 128.0 + rng.normal(0.0, noise, img.shape)
            x[s:s + 2048] = np.clip(img, 0, 255).astype(np.uint8)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    xtr, ytr = draw(n_train)
    xte, yte = draw(n_test)
    return xtr, ytr, xte, yte


def _stratified_pick(labels: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Indices of ``n`` items whose class proportions follow ``labels`` (largest remainder)."""
    classes, counts = torch.unique(labels, return_counts=True)
    quota = counts.double() * n / len(labels)
    take = quota.floor().long()
    rest = n - int(take.sum())
    if rest > 0:  # give leftovers to the largest fractional parts, ties by class id
        order = torch.argsort(-(quota - take.double()), stable=True)[:rest]
        take[order] += 1
    picked = []
    for c, k in zip(classes.tolist(), take.tolist()):
        idx = torch.nonzero(labels == c).flatten()
        picked.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    return torch.sort(torch.cat(picked)).values


def split_train_val(labels: torch.Tensor, val_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_idx, val_idx): a stratified, seeded validation set carved from training labels."""
    n = len(labels)
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < n:
        raise ValueError(f"val_size: got {val_size!r}; allowed: an int in [0, {n - 1}]")
    gen = torch.Generator().manual_seed(int(seed))
    val = _stratified_pick(labels, val_size, gen) if val_size else torch.zeros(0, dtype=torch.long)
    mask = torch.ones(n, dtype=torch.bool)
    mask[val] = False
    return torch.nonzero(mask).flatten(), val


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of a stratified, seeded subset of size ``n``."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= len(labels):
        raise ValueError(f"train_subset: got {n!r}; allowed: an int in [1, {len(labels)}]")
    return _stratified_pick(labels, n, torch.Generator().manual_seed(int(seed) + 1))


def choose_dataset(dataset: str, data_root=None, records_dir=None) -> str:
    """Resolve 'auto': 'cifar10' when its batches are found (argument, $BNNLIB_DATA, cache) or
    when ``records_dir`` already holds CIFAR-10 records (so a fresh clone re-plots the committed
    records instead of retraining on synthetic data); else 'synthetic'. Other names pass
    through validated."""
    if dataset != "auto":
        if dataset not in DATASETS:
            raise ValueError(f"dataset: got {dataset!r}; allowed: 'auto' or one of {DATASETS}")
        return dataset
    if _batch_dir(default_root(data_root)) is not None:
        return "cifar10"
    return "cifar10" if records_dir is not None and _has_cifar_records(Path(records_dir)) else "synthetic"


def _has_cifar_records(records_dir: Path) -> bool:
    """True when any JSON record under ``records_dir`` was made on CIFAR-10."""
    for f in sorted(records_dir.rglob("*.json")) if records_dir.is_dir() else ():
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        ds = rec.get("dataset") if isinstance(rec, dict) else None
        if (ds.get("name") if isinstance(ds, dict) else ds) == "cifar10":
            return True
    return False


def downsample(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 images average-pooled to ``resolution`` px (a divisor of their side), rounded.

    The proxy regime of the ``cpu`` presets trains at 16x16: 4x fewer pixels per conv. The
    pooling is done once on load, so every epoch sees the same low-resolution images."""
    side = x.shape[-1]
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution <= 0 \
            or side % resolution:
        raise ValueError(f"resolution: got {resolution!r}; allowed: a divisor of the image "
                         f"side {side} (e.g. 32, 16, 8)")
    if resolution == side:
        return x
    k = side // resolution
    out = torch.empty((*x.shape[:2], resolution, resolution), dtype=torch.uint8)
    for s in range(0, len(x), 10000):  # chunks bound the float temporary
        f = torch.nn.functional.avg_pool2d(x[s:s + 10000].float(), k)
        out[s:s + 10000] = f.round_().clamp_(0, 255).to(torch.uint8)
    return out


def augment_pad(resolution: int) -> int:
    """Crop padding: the standard 4 px at 32 px, scaled with the input side (2 px at 16)."""
    return max(1, 4 * resolution // 32)


def resolve_dataset(name: str = "cifar10", root=None, val_size: int = 5000,
                    train_subset: int | None = None, split_seed: int = 0, download: bool = True,
                    synthetic_train: int = 10000, synthetic_test: int = 2000,
                    resolution: int = 32) -> Splits:
    """Load ``name`` and split it: validation carved from train first, then the optional
    stratified training subset drawn from what remains. Test set untouched (all of it).
    ``resolution`` < 32 average-pools every image once (recorded in ``info``)."""
    if name == "cifar10":
        ds = load_cifar10(root, download=download)
    elif name == "synthetic":
        ds = synthetic(synthetic_train, synthetic_test, seed=split_seed)
    else:
        raise ValueError(f"dataset: got {name!r}; allowed: {DATASETS}")
    tr, va = split_train_val(ds.y_train, val_size, split_seed)
    if train_subset is not None:
        tr = tr[stratified_subset(ds.y_train[tr], train_subset, split_seed)]
    info = {"name": ds.name, "note": ds.note, "n_train": len(tr), "n_val": len(va),
            "n_test": len(ds.y_test), "val_size": val_size, "train_subset": train_subset,
            "split_seed": split_seed, "mean": list(CIFAR_MEAN), "std": list(CIFAR_STD), **ds.info}
    x_tr, x_va, x_te = (downsample(v, resolution) for v in (ds.x_train[tr], ds.x_train[va], ds.x_test))
    if resolution != ds.x_train.shape[-1]:  # 32-px records keep their old dataset dict
        info.update(resolution=resolution, augment_pad=augment_pad(resolution),
                    label=f"{name_label(ds.name)} at {resolution}x{resolution}")
    return Splits(x_tr, ds.y_train[tr], x_va, ds.y_train[va], x_te, ds.y_test, info)


def name_label(name: str) -> str:
    """Display name of a dataset ('cifar10' -> 'CIFAR-10')."""
    return {"cifar10": "CIFAR-10", "synthetic": "synthetic"}.get(name, name)


def describe(info: dict, short: bool = False) -> str | None:
    """The one line that says which data a record comes from, e.g. 'CIFAR-10 at 16x16
    (JPEG-rebuilt CIFAR-10 copy ...)': display name, input size when it is not 32x32, then
    the data note. Every figure, table and manifest labels its data with this.

    ``short=True`` gives a footnote that fits under a figure: the JPEG-rebuilt copy becomes
    'JPEG-rebuilt CIFAR-10 at 16x16 (lossy copy, not the official pixels; see SOURCE.md)'."""
    name, note, res = info.get("name"), info.get("note"), info.get("resolution")
    label = info.get("label") or (name_label(name) if name else None)
    if label and res and res != 32 and f"{res}x{res}" not in label:
        label = f"{label} at {res}x{res}"
    if short and info.get("jpeg_rebuilt") and label:
        return f"JPEG-rebuilt {label} (lossy copy, not the official pixels; see SOURCE.md)"
    return f"{label} ({note})" if label and note else label or note


_NORM_CONST: dict = {}


def _norm_constants(device: torch.device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean*255, 1/(std*255)) as (1, 3, 1, 1) tensors, made once per device and dtype.

    Building them per call would copy host memory to the GPU twice per step (a sync each)."""
    key = (str(device), dtype)
    if key not in _NORM_CONST:
        mean = torch.tensor(CIFAR_MEAN, dtype=dtype).view(1, 3, 1, 1) * 255
        inv = 1.0 / (torch.tensor(CIFAR_STD, dtype=dtype).view(1, 3, 1, 1) * 255)
        _NORM_CONST[key] = (mean.to(device), inv.to(device))
    return _NORM_CONST[key]


def normalize(x: torch.Tensor, dtype=torch.float32, channels_last: bool = False) -> torch.Tensor:
    """uint8 images -> normalised float (ImageNet statistics, as the DWR authors)."""
    mean, inv = _norm_constants(x.device, dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return ((x.to(dtype) - mean) * inv).contiguous(memory_format=fmt)


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop (zero pad ``pad``) + horizontal flip for a whole uint8 batch in one gather.

    Offsets and flips come from ``gen`` (on x's device); no per-sample Python.
    """
    n, c, h, w = x.shape
    dev = x.device
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen, device=dev)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), generator=gen, device=dev)
    rows = oy + torch.arange(h, device=dev)
    ar = torch.arange(w, device=dev)
    if flip:
        f = torch.randint(0, 2, (n, 1), generator=gen, device=dev).bool()
        cols = ox + torch.where(f, w - 1 - ar, ar)  # flip folded into the gather indices
    else:
        cols = ox + ar
    idx_n = torch.arange(n, device=dev).view(n, 1, 1)
    out = xp.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2)  # NCHW view with channels-last strides
