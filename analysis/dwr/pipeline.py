"""DWR pipeline (Sec. 4.2): widen -> pre-train -> prune to the OPs budget -> train.

``dwr(original_spec, s, ...)`` runs the three stages and writes one JSON record per stage:
the two training stages through the engine (``bnnlib.train.train``, one folder per config
hash under ``records_dir/runs``), the prune stage as ``records_dir/prune/<hash>.json``,
holding the pruned spec as data so tables can be rebuilt without weights. Every stage is
skipped when its finished record is already there, so a pipeline resumes where it stopped.

Calibration images for pruning come from the validation split of the training data (the
same split the engine carves, ``bnnlib.data.split_train_val``); the test set is never read.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from bnnlib import data as bdata
from bnnlib import records
from bnnlib.complexity import count
from bnnlib.models import build
from bnnlib.prune import CalibrationSet, prune_to_budget
from bnnlib.prune_weights import inherit_weights
from bnnlib.reshape import widen
from bnnlib.spec import BaseSpec, spec_from_dict, spec_to_dict
from bnnlib.train import train
from bnnlib.train_config import TrainConfig

__all__ = ["dwr", "run_config", "done_run", "read_run", "prune_stage", "calibration_images", "load_stage_records",
           "PRUNE_DEFAULTS", "budget_for", "pretrain_config", "final_config", "existing_prune"]

PRUNE_DEFAULTS = {"tol": 0.02, "represent": "spatial", "min_samples": 5, "tie": "max",
                  "monotone": None, "fill": True}


def done_run(cfg: TrainConfig, records_dir: str | Path, need_weights: bool = False) -> dict | None:
    """The record of ``cfg`` if its run is over (finished or diverged) and, when
    ``need_weights``, its weights are saved beside it; else None (the run must be trained)."""
    rec = read_run(cfg, records_dir)
    if rec is None or rec.get("status") not in ("finished", "diverged"):
        return None
    out = Path(records_dir) / "runs" / records.config_hash(cfg)
    return rec if not need_weights or (out / "weights.pt").is_file() else None


def run_config(cfg: TrainConfig, records_dir: str | Path, need_weights: bool = False) -> dict:
    """Train ``cfg`` in ``records_dir/runs/<config hash>/`` unless a finished record is there."""
    rec = done_run(cfg, records_dir, need_weights)
    if rec is not None:
        return rec
    out = Path(records_dir) / "runs" / records.config_hash(cfg)
    train(cfg, out)
    return records.read_json(out / "record.json")  # JSON form, identical to what a rerun reads


def _load_dataset(cfg: TrainConfig) -> bdata.Dataset:
    if cfg.dataset == "synthetic":
        return bdata.synthetic(cfg.synthetic_train, cfg.synthetic_test, seed=cfg.split_seed)
    return bdata.load_cifar10(cfg.data_root)


def calibration_images(cfg: TrainConfig, n: int, seed: int):
    """(CalibrationSet, normalised images, dataset info): ``n`` validation images of ``cfg``'s
    split. The train/val split is recomputed exactly as the engine does; test data is unused."""
    if cfg.dataset == "imagenet":  # image files: same split, eval transform (bnnlib.imagenet)
        from bnnlib.imagenet import calibration_images as imagenet_calibration
        return imagenet_calibration(cfg, n, seed)
    ds = _load_dataset(cfg)
    tr, va = bdata.split_train_val(ds.y_train, cfg.val_size, cfg.split_seed)
    if len(va) == 0:
        raise ValueError(f"val_size: got {cfg.val_size}; allowed: > 0 (calibration needs "
                         "validation images)")
    cal = CalibrationSet.draw(va.tolist(), n, seed)
    cal.check_within(va.tolist())
    assert not set(cal.indices) & set(tr.tolist()), "calibration overlaps the training split"
    # the images the net trains on: average-pooled to cfg.resolution as bnnlib.data does
    x = bdata.normalize(bdata.downsample(ds.x_train[torch.as_tensor(cal.indices)], cfg.resolution))
    return cal, x, {"name": ds.name, "note": ds.note, "source": "train split, validation part",
                    "val_size": cfg.val_size, "split_seed": cfg.split_seed}


def prune_stage(pre_cfg: TrainConfig, pre_rec: dict, records_dir: str | Path, budget: float,
                calib_images: int, calib_seed: int, prune_kw: dict | None = None,
                inherit: bool = False) -> dict:
    """Load the pre-trained weights, prune to ``budget`` OPs, write the prune record."""
    key, ph, path = _prune_key(records_dir, pre_cfg, budget, calib_images, calib_seed, prune_kw,
                               inherit)
    kw = {k: key[k] for k in PRUNE_DEFAULTS}
    if path.is_file():
        return records.read_json(path)
    t0 = time.perf_counter()
    wide = pre_cfg.build_spec()
    model = build(wide)
    wpath = Path(records_dir) / "runs" / key["pretrain_hash"] / "weights.pt"
    model.load_state_dict(torch.load(wpath, map_location="cpu", weights_only=True))
    cal, x, info = calibration_images(pre_cfg, calib_images, calib_seed)
    res = prune_to_budget(model, x, budget, calibration=cal, **kw)
    init = None
    if inherit:
        pruned = build(res.spec)
        inherit_weights(model, pruned, res.index_map)
        init = str(path.with_suffix(".init.pt"))
        records.save_atomic(pruned.state_dict(), init)
    rec = {"stage": "prune", "status": "finished", "prune_hash": ph, "key": key,
           "pretrain": {"config_hash": key["pretrain_hash"],
                        "final_val_acc": pre_rec.get("metrics", {}).get("final_val_acc")},
           "result": res.to_dict(), "spec": spec_to_dict(res.spec), "init_weights": init,
           "complexity": count(res.spec).totals, "source_complexity": count(wide).totals,
           "calibration_data": info, "timings": {"prune_s": time.perf_counter() - t0},
           "versions": records.versions(), "git_commit": records.git_commit()["commit"]}
    records.write_json_atomic(path, rec)
    return records.read_json(path)  # the JSON form, as a rerun would read it


def budget_for(original_spec: BaseSpec, train_kw: dict | None = None) -> float:
    """The original's OPs at the input size the chain trains at (``resolution`` in train_kw:
    a 16x16 regime prunes to the 16x16 budget, about a quarter of the 32x32 one)."""
    res = (train_kw or {}).get("resolution", 32)
    at = original_spec if res == 32 else original_spec.replace(input_size=res)
    return float(count(at).totals["ops"])


def dwr(original_spec: BaseSpec, s: float, budget: float | None = None, pretrain_epochs: int = 5,
        epochs: int = 10, seed: int = 0, records_dir: str | Path = "runs/dwr",
        train_kw: dict | None = None, calib_images: int = 400, prune_kw: dict | None = None,
        inherit: bool = False, start_spec: BaseSpec | None = None, tag: str = "",
        lookup: bool = False, train_final: bool = True) -> dict:
    """widen(original, s) (or ``start_spec``) -> pre-train -> prune to ``budget`` (default:
    the original's OPs) -> train; returns {'pretrain', 'prune', 'train'} records.
    ``lookup=True`` only reads existing records (missing stages are None);
    ``train_final=False`` stops after pruning (the sweep executors train the final nets)."""
    if not isinstance(original_spec, BaseSpec):
        raise ValueError(f"original_spec: got {type(original_spec).__name__}; allowed: a spec")
    for name, v in (("pretrain_epochs", pretrain_epochs), ("epochs", epochs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: got {v!r}; allowed: a positive int")
    budget = budget_for(original_spec, train_kw) if budget is None else budget
    base = dict(train_kw or {})
    pre_cfg = pretrain_config(original_spec, s, pretrain_epochs, seed, base, start_spec, tag)
    run_dir = Path(records_dir)
    prune_rec = existing_prune(run_dir, pre_cfg, budget, calib_images, seed, prune_kw, inherit)
    pre_rec = read_run(pre_cfg, run_dir)
    if prune_rec is None:
        if lookup:
            return {"pretrain": pre_rec, "prune": None, "train": None}
        pre_rec = run_config(pre_cfg, run_dir, need_weights=True)
        prune_rec = prune_stage(pre_cfg, pre_rec, run_dir, budget, calib_images, seed, prune_kw,
                                inherit)
    fin_cfg = final_config(prune_rec, epochs, seed, base, tag)
    if not train_final:
        return {"pretrain": pre_rec, "prune": prune_rec, "train": read_run(fin_cfg, run_dir),
                "final_config": fin_cfg}
    fin_rec = read_run(fin_cfg, run_dir) if lookup else run_config(fin_cfg, run_dir)
    return {"pretrain": pre_rec, "prune": prune_rec, "train": fin_rec}


def pretrain_config(original_spec: BaseSpec, s: float, pretrain_epochs: int, seed: int,
                    train_kw: dict | None = None, start_spec: BaseSpec | None = None,
                    tag: str = "") -> TrainConfig:
    """The pre-training run of a chain: the widened net (or ``start_spec``), weights saved."""
    wide = start_spec if start_spec is not None else widen(original_spec, s)
    return TrainConfig(spec=spec_to_dict(wide), epochs=pretrain_epochs, seed=seed,
                       save_weights=True, tag=f"{tag}|dwr-pretrain", **dict(train_kw or {}))


def final_config(prune_rec: dict, epochs: int, seed: int, train_kw: dict | None = None,
                 tag: str = "") -> TrainConfig:
    """The final training run of a chain: the pruned net of ``prune_rec``."""
    return TrainConfig(spec=prune_rec["spec"], epochs=epochs, seed=seed,
                       init_weights=prune_rec["init_weights"],
                       tag=f"{tag}|dwr-train|prune={prune_rec['prune_hash']}", **dict(train_kw or {}))


def read_run(cfg: TrainConfig, records_dir: str | Path) -> dict | None:
    """The record of ``cfg`` under ``records_dir/runs`` if it exists (never trains)."""
    p = Path(records_dir) / "runs" / records.config_hash(cfg) / "record.json"
    return records.read_json(p) if p.is_file() else None


def _prune_key(records_dir, pre_cfg, budget, calib_images, calib_seed, prune_kw, inherit):
    """(key dict, hash, record path) of a prune stage."""
    kw = {**PRUNE_DEFAULTS, **(prune_kw or {})}
    bad = sorted(set(kw) - set(PRUNE_DEFAULTS))
    if bad:
        raise ValueError(f"prune_kw: got {bad}; allowed: {sorted(PRUNE_DEFAULTS)}")
    key = {"pretrain_hash": records.config_hash(pre_cfg), "budget": float(budget),
           "calib_images": calib_images, "calib_seed": calib_seed, "inherit": inherit, **kw}
    ph = records.config_hash(key)
    return key, ph, Path(records_dir) / "prune" / f"{ph}.json"


def existing_prune(run_dir, pre_cfg, budget, calib_images, seed, prune_kw=None, inherit=False):
    """The finished prune record for these settings, if any (then no pre-training is needed)."""
    path = _prune_key(run_dir, pre_cfg, budget, calib_images, seed, prune_kw, inherit)[2]
    return records.read_json(path) if path.is_file() else None


def load_stage_records(records_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(training records, prune records) found under ``records_dir``."""
    d = Path(records_dir)
    runs = [records.read_json(p) for p in sorted(d.glob("runs/*/record.json"))]
    prunes = [records.read_json(p) for p in sorted(d.glob("prune/*.json"))]
    return runs, prunes


def spec_of(rec: dict) -> BaseSpec:
    """The architecture a training or prune record describes."""
    if rec.get("stage") == "prune":
        return spec_from_dict(rec["spec"])
    if rec.get("model_spec"):  # the spec of the model the engine actually built
        return spec_from_dict(rec["model_spec"])
    return TrainConfig.from_dict(rec["config"]).build_spec()
