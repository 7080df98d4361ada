"""The depth/width/binarizer study: configs, data, one JSON record per measurement.

A config is a flat JSON-able dict (see ``make_config``); its record lives at
``records_dir/<config_hash>.json`` and is written atomically. ``run_study`` skips configs whose
record already exists, so a re-run only measures what is missing.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import time
from pathlib import Path

import torch

from bnnlib import records
from bnnlib.data import normalize
from bnnlib.data import choose_dataset as bnnlib_choose
from bnnlib.data import resolve_dataset as bnnlib_dataset
from bnnlib.models import build
from bnnlib.spec import ResNetSpec, VGGSpec, spec_to_dict

from .instruments import BN_MODES, measure

__all__ = ["BACKBONES", "BINARIZERS", "make_spec", "make_config", "config_hash", "grid",
           "load_batches", "run_config", "run_study", "load_records", "select_records",
           "AXES", "ACTS", "setting", "train_config"]

BACKBONES = ("resnet", "resnet_basic", "vgg")
BINARIZERS = ("sign", "approx_sign", "rsign")
DATASETS = ("auto", "cifar10", "synthetic")
AXES = ("backbone", "blocks", "width", "binarizer", "seed", "trained_epochs", "train_subset", "act",
        "train_options")
# Activation after every residual addition (ResNets) / after every conv's BN (VGG): hardtanh as
# in the authors' IR-Net-based CIFAR code (bnnlib's default), identity as in Bi-Real Net proper
# (bnnlib's resnet18_imagenet), RPReLU as in ReActNet.
ACTS = ("hardtanh", "identity", "rprelu")
DEFAULT_ACT = "hardtanh"
# Config keys added after records were committed: written only when they differ from these
# defaults, so every earlier record keeps its hash.
NEUTRAL = {"act": DEFAULT_ACT, "resolution": 32, "train_options": None}
# TrainConfig fields a trained measurement may set (the cpu preset's recipe); the rest of the
# training config is fixed by the study (spec, dataset, split, epochs, seed).
TRAIN_OPTION_KEYS = ("optimizer", "lr", "batch_size", "weight_decay", "label_smoothing",
                     "lr_schedule", "warmup_epochs", "channels_last", "compile", "amp")
RECORD_VERSION = 2  # 2: images from the bnnlib.data validation split


def make_spec(backbone: str, blocks: int, width: int, binarizer: str = "approx_sign",
              act: str = DEFAULT_ACT, input_size: int = 32):
    """Three-stage CIFAR net with ``blocks`` blocks (VGG: convs) per stage, widths w/2w/4w.

    'resnet': Bi-Real units (a real shortcut around every binary conv, as the paper's
    ResNet-20); 'resnet_basic': He et al. blocks (shortcut around two convs); 'vgg': a plain
    stack without shortcuts. Binary layers = 6*blocks (ResNets) or 3*blocks (VGG). ``act`` is
    the activation after every residual addition (VGG: after every BN), see ``ACTS``.
    """
    if act not in ACTS:
        raise ValueError(f"act: got {act!r}; allowed: {ACTS}")
    if backbone not in BACKBONES:
        raise ValueError(f"backbone: got {backbone!r}; allowed: {BACKBONES}")
    if binarizer not in BINARIZERS:
        raise ValueError(f"binarizer: got {binarizer!r}; allowed: {BINARIZERS}")
    widths = (width, 2 * width, 4 * width)
    if backbone == "vgg":
        return VGGSpec.uniform((blocks,) * 3, widths, stem_width=width, input_binarizer=binarizer,
                               act=act, input_size=input_size)
    block = "bireal" if backbone == "resnet" else "basic"
    return ResNetSpec.uniform((blocks,) * 3, widths, stem_width=width, block=block,
                              shortcut="pad", input_binarizer=binarizer, act=act,
                              input_size=input_size)


def _check_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name}: got {v!r}; allowed: an int >= {lo}")


def make_config(backbone="resnet", blocks=3, width=16, binarizer="approx_sign", seed=0,
                batches=1, batch_size=64, trained_epochs=0, train_subset=None, dataset="auto",
                bn_mode="batch", ks=(4.0, 64.0), data_seed=0, val_size=5000,
                act=DEFAULT_ACT, resolution=32, train_options=None) -> dict:
    """Validated config dict of one measurement (``dataset='auto'`` is resolved here).

    ``resolution``: image side for training and measuring (32, or 16/8 average-pooled, as the
    ``cpu`` regime); ``train_options``: TrainConfig fields of the training recipe (see
    ``TRAIN_OPTION_KEYS``). Both, and ``act``, are stored only when not at their defaults."""
    make_spec(backbone, 1, 1, binarizer, act)  # validates backbone, binarizer and act
    if resolution not in (32, 16, 8):
        raise ValueError(f"resolution: got {resolution!r}; allowed: 32, 16 or 8 (divisors of 32)")
    if train_options is not None:
        if not isinstance(train_options, dict):
            raise ValueError(f"train_options: got {train_options!r}; allowed: None or a dict")
        bad = sorted(set(train_options) - set(TRAIN_OPTION_KEYS))
        if bad:
            raise ValueError(f"train_options: got keys {bad}; allowed: {list(TRAIN_OPTION_KEYS)}")
        train_options = dict(sorted(train_options.items())) or None
    for name, v in (("blocks", blocks), ("width", width), ("batches", batches),
                    ("batch_size", batch_size)):
        _check_int(name, v)
    for name, v in (("seed", seed), ("trained_epochs", trained_epochs), ("data_seed", data_seed),
                    ("val_size", val_size)):
        _check_int(name, v, lo=0)
    if train_subset is not None:
        _check_int("train_subset", train_subset)
    if trained_epochs == 0:
        train_subset = None  # irrelevant at initialisation; keeps one record per init model
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode: got {bn_mode!r}; allowed: {BN_MODES}")
    if trained_epochs == 0:
        train_options = None  # no training: the recipe cannot change the measurement
    cfg = {"study": "error_accumulation", "version": RECORD_VERSION, "backbone": backbone,
           "blocks": blocks, "width": width, "binarizer": binarizer, "seed": seed,
           "batches": batches, "batch_size": batch_size, "trained_epochs": trained_epochs,
           "train_subset": train_subset, "dataset": resolve_dataset(dataset),
           "bn_mode": bn_mode, "ks": [float(k) for k in ks], "data_seed": data_seed,
           "val_size": val_size}
    for k, v in (("act", act), ("resolution", resolution), ("train_options", train_options)):
        if v != NEUTRAL[k]:
            cfg[k] = v
    return cfg


def setting(config: dict, key: str):
    """A config value, with the default for keys that older records leave out (``NEUTRAL``)."""
    return config.get(key, NEUTRAL.get(key))


def config_hash(config: dict) -> str:
    """Stable 16-hex hash of a config: the same hash every run record uses."""
    return records.config_hash(config)


def grid(backbones, depths, widths, binarizers, seeds, trained_epochs=(0,),
         trained_binarizers=None, acts=(DEFAULT_ACT,), **common) -> list[dict]:
    """Product of the study axes as configs; trained ones (epochs > 0) only for
    ``trained_binarizers`` (default: all), since training dominates the cost. ``acts``: the
    residual activations (a study axis: the error's decay with depth depends on it)."""
    axes = (backbones, acts, depths, widths, binarizers, seeds, trained_epochs)
    for name, v in zip(("backbones", "acts", "depths", "widths", "binarizers", "seeds",
                        "trained_epochs"), axes):
        if isinstance(v, (str, int)) or not len(v):
            raise ValueError(f"{name}: got {v!r}; allowed: a non-empty list")
    tb = binarizers if trained_binarizers is None else trained_binarizers
    return [make_config(backbone=b, blocks=d, width=w, binarizer=z, seed=s, trained_epochs=e,
                        act=a, **common) for b, a, d, w, z, s, e in itertools.product(*axes)
            if e == 0 or z in tb]


def resolve_dataset(dataset: str, records_dir=None) -> str:
    """'auto' -> see ``bnnlib.data.choose_dataset`` (data found, or CIFAR-10 records present)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset: got {dataset!r}; allowed: {DATASETS}")
    return bnnlib_choose(dataset, records_dir=records_dir)


def load_batches(dataset: str, n_batches: int, batch_size: int, seed: int = 0, root=None,
                 val_size: int = 5000, resolution: int = 32):
    """``n_batches`` normalised (x, y) batches drawn (seeded) from the validation split of
    ``bnnlib.data`` (the images ``bnnlib.train`` holds out with the same ``val_size`` and
    split_seed 0). Returns (batches, dataset_info)."""
    splits = _splits(dataset, None if root is None else str(root), val_size, resolution)
    n = n_batches * batch_size
    if n > len(splits.y_val):
        raise ValueError(f"batches*batch_size: got {n}; allowed: at most the {len(splits.y_val)} "
                         "validation images")
    idx = torch.randperm(len(splits.y_val), generator=torch.Generator().manual_seed(seed))[:n]
    x, y = normalize(splits.x_val[idx]), splits.y_val[idx]
    info = {k: splits.info.get(k) for k in ("name", "note", "val_size", "split_seed")}
    if resolution != 32:
        info.update(resolution=resolution, label=splits.info.get("label"))
    info["split"] = "validation (held out from bnnlib.train)"
    batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)]
    return batches, info


@functools.lru_cache(maxsize=2)
def _splits(dataset: str, root, val_size: int, resolution: int = 32):
    """bnnlib.data splits, loaded once per process (CIFAR-10 parsing is the slow part)."""
    if dataset not in ("cifar10", "synthetic"):
        raise ValueError(f"dataset: got {dataset!r}; allowed: ('cifar10', 'synthetic')")
    return bnnlib_dataset(dataset, root, val_size=val_size, split_seed=0, download=False,
                          resolution=resolution)


def _model_for(config: dict, work_dir: Path, device: str = "cpu"):
    """Seeded model at initialisation, or after ``trained_epochs`` of bnnlib.train."""
    spec = make_spec(config["backbone"], config["blocks"], config["width"], config["binarizer"],
                     setting(config, "act"), setting(config, "resolution"))
    with torch.random.fork_rng():
        torch.manual_seed(config["seed"])
        model = build(spec)
    if config["trained_epochs"] == 0:
        return model, None
    from bnnlib.train import train
    tc = train_config(config, device)
    out = work_dir / "train" / records.config_hash(tc)  # where the sweep executors train it
    legacy = work_dir / "train" / config_hash(config)  # earlier layout: keyed by the study's hash
    if not (out / "record.json").is_file() and legacy.is_dir():
        out = legacy
    rec = train(tc, str(out), resume=True)
    if rec.get("status") != "finished":
        raise RuntimeError(f"training {config_hash(config)} ended with status {rec.get('status')!r}")
    model.load_state_dict(torch.load(out / "weights.pt", map_location="cpu"))
    return model, {k: rec.get(k) for k in ("status", "config_hash", "metrics", "dataset")}


def train_config(config: dict, device: str = "cpu"):
    """The ``bnnlib.train`` run of a trained measurement (None at initialisation)."""
    if config["trained_epochs"] == 0:
        return None
    from bnnlib.train import TrainConfig
    spec = make_spec(config["backbone"], config["blocks"], config["width"], config["binarizer"],
                     setting(config, "act"), setting(config, "resolution"))
    return TrainConfig(spec=spec_to_dict(spec), dataset=config["dataset"],
                       train_subset=config["train_subset"], val_size=config["val_size"],
                       epochs=config["trained_epochs"], seed=config["seed"], device=device,
                       threads=1 if device == "cpu" else None, save_weights=True,
                       eval_test="end", progress=False, tag="error_accumulation",
                       resolution=setting(config, "resolution"),
                       **(setting(config, "train_options") or {}))


def _versions() -> dict:
    """Library versions plus the git commit (and dirty flag) of this checkout."""
    git = records.git_commit()
    return {**records.versions(), "git_commit": git["commit"], "git_dirty": git["dirty"]}


def _write_json(path: Path, obj) -> None:
    """Atomic write: temp file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _check_device(device: str) -> torch.device:
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device: got {device!r}; allowed: 'cpu' or 'cuda[:N]'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: got {device!r} but CUDA is not available; allowed: 'cpu'")
    return torch.device(device)


def run_config(config: dict, records_dir, data_root=None, device: str = "cpu") -> dict:
    """Measure one config on ``device`` and write its record; returns the record."""
    dev = _check_device(device)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model, training = _model_for(config, Path(records_dir), device)
    batches, info = load_batches(config["dataset"], config["batches"], config["batch_size"],
                                 config["data_seed"], data_root, config["val_size"],
                                 setting(config, "resolution"))
    batches = [(x.to(dev), y.to(dev)) for x, y in batches]
    out = measure(model.to(dev), batches, bn_mode=config["bn_mode"], ks=config["ks"])
    rec = {"status": "finished", "config": config, "config_hash": config_hash(config),
           "seed": config["seed"], "spec": spec_to_dict(model.spec), "dataset": info,
           "training": training, "metrics": out, "versions": _versions(), "device": str(dev),
           "timings": {"total_s": round(time.perf_counter() - t0, 3)}}
    _write_json(Path(records_dir) / f"{rec['config_hash']}.json", rec)
    return rec


def run_study(configs, records_dir, data_root=None, device: str = "cpu", log=print,
              executor: str = "local", workers: int | None = None,
              executor_options: dict | None = None) -> list[dict]:
    """Run every config whose record is missing; return all records of ``configs``. The
    trainings of trained measurements go first through the sweep executors (``executor``:
    local processes, one per visible GPU; packed; submitit) into ``records_dir/train``."""
    _check_device(device)
    records_dir = Path(records_dir)
    todo = [c for c in configs if c["trained_epochs"] > 0
            and not (records_dir / f"{config_hash(c)}.json").exists()]
    if todo:
        from analysis.sweep import run_sweep
        run_sweep([train_config(c, device) for c in todo], records_dir / "train", executor,
                  workers, executor_options)
    out = []
    for i, c in enumerate(configs):
        path = records_dir / f"{config_hash(c)}.json"
        if path.exists():
            out.append(json.loads(path.read_text()))
            continue
        rec = run_config(c, records_dir, data_root, device)
        if log:
            log(f"[{i + 1}/{len(configs)}] {c['backbone']} n={c['blocks']} w={c['width']} "
                f"{c['binarizer']} seed={c['seed']} ep={c['trained_epochs']}: "
                f"{rec['timings']['total_s']:.1f}s")
        out.append(rec)
    return out


def load_records(records_dir) -> list[dict]:
    """All finished error-accumulation records in ``records_dir`` (sorted by hash)."""
    recs = []
    for p in sorted(Path(records_dir).glob("*.json")):
        r = json.loads(p.read_text())
        if r.get("status") == "finished" and r.get("config", {}).get("study") == "error_accumulation":
            recs.append(r)
    return recs


def select_records(records, **settings) -> list[dict]:
    """Records whose measurement settings (every config field that is not a study axis)
    equal ``settings``, so that figures never pool differently measured records."""
    bad = sorted(set(settings) & set(AXES))
    if bad:
        raise ValueError(f"settings: got study axes {bad}; allowed: measurement fields only")
    want = make_config(**settings)
    keys = (set(want) | set(NEUTRAL)) - set(AXES)  # older records lack the NEUTRAL keys
    fixed = {k: setting(want, k) for k in sorted(keys)}
    out = [r for r in records if all(setting(r["config"], k) == v for k, v in fixed.items())]
    if not out:
        raise ValueError(f"settings: no record matches {fixed}")
    return out
