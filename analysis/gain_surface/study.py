"""Gain surface G = f(w, d) of FP and binary nets, and the equilibrium depth (DWR Sec. 3.3).

The study trains one backbone family over a grid of depth ``d`` (blocks per stage) and width
multiplier ``w``, FP and BNN from the same specs and recipe, several seeds, and reads the
optimal depth at a fixed budget two ways: model-free along iso-OPs diagonals, and from fitted
surfaces (``analysis.gain_surface.fit``).

Conventions (all explicit here):
- Width: every stage width is ``round_width(w * base)``; the real stem keeps one width over
  the whole grid, as the paper keeps first and last layers (Sec. 4.1): ``stem_mult`` x the
  backbone's stem (a cheaper CPU family uses 0.5). A stem wider than the first stage is
  refused, since that stage would get a real 1x1 shortcut conv the others lack.
- Matched OPs are defined within each precision: FP OPs = FLOPs, BNN OPs = BOPs/64 + FLOPs
  (``bnnlib.complexity``). The iso-OPs diagonal through a precision's own reference net
  N[w0, d0] is solved from that precision's counted OPs (``fit.OpsModel``), not from the
  idealised w0 sqrt(d0/d): the half-width first conv of each later stage makes shallow nets
  cheaper than d w^2 (FP ResNet-20: w = 1.94, not 1.73, at d = 1), and in a BNN the real
  stem and head are a large share of the OPs. With the stem fixed, the FP and BNN diagonals
  coincide up to rounding; where they do not, each precision trains its own. Each config's
  OPs deviation from its reference is reported (``iso_slices``).
- G is a test accuracy in percent (``metric``; default the final epoch, so no selection on
  the test set). The optimum is a measurement of the surface, not a model choice.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bnnlib import complexity
from bnnlib.models import get_spec
from bnnlib.reshape import round_width
from bnnlib.spec import ResNetSpec, spec_to_dict

from . import fit as gf

__all__ = ["Shape", "diagonal_only", "shape_spec", "count_ops", "ops_model", "make_grid", "make_configs",
           "runs_frame", "load_runs", "curves_frame", "config_means", "iso_slices", "seed_groups", "points", "TAG",
           "study_configs", "run", "resolve_dataset", "load_preset", "plan_estimate"]

TAG = "gain_surface"
PRECISIONS = ("fp", "bnn")
METRICS = ("final_test_acc", "test_acc_at_best_val", "best_val_acc", "final_val_acc")
ISO_TOL = 0.03  # relative OPs tolerance for a config to count as on a diagonal (width rounding)


class Shape(dict):
    """One (w, d) grid point: keys depth, width_mult, spec (FP spec; BNN flips ``binary``),
    precisions (those it is trained in: all on the rectangle, one on a diagonal)."""


def _base(backbone: str) -> ResNetSpec:
    spec = get_spec(backbone)
    if not isinstance(spec, ResNetSpec) or len(set(len(s[0]) for s in spec.stages)) != 1:
        raise ValueError(f"backbone: got {backbone!r}; allowed: a registered ResNet with uniform "
                         "blocks (e.g. 'resnet20', 'resnet18')")
    return spec


def shape_spec(backbone: str, depth: int, width_mult: float, stem_mult: float = 1.0,
               divisor: int = 1) -> ResNetSpec:
    """``backbone`` with ``depth`` blocks in every stage, stages scaled by width_mult and the
    stem by stem_mult (fixed across a grid)."""
    base = _base(backbone)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth: got {depth!r}; allowed: a positive int (blocks per stage)")
    if not (isinstance(width_mult, (int, float)) and width_mult > 0 and math.isfinite(width_mult)):
        raise ValueError(f"width_mult: got {width_mult!r}; allowed: a positive finite number")
    widths = tuple(round_width(w * width_mult, divisor) for w in base.widths)
    new = ResNetSpec.uniform((depth,) * len(widths), widths, convs_per_block=len(base.stages[0][0]),
                             strides=base.strides)
    stem = round_width(base.stem_width * stem_mult, divisor)
    if stem > widths[0]:
        raise ValueError(f"width_mult: got {width_mult!r} (first stage {widths[0]} channels); allowed: "
                         f"a first stage at least as wide as the stem ({stem} = stem_mult x "
                         f"{base.stem_width}), else it gets a real 1x1 shortcut conv; or lower stem_mult")
    return base.replace(stages=new.stages, stem_width=stem)


def count_ops(spec, precision: str) -> float:
    """OPs of ``spec`` built in ``precision`` (FP: FLOPs; BNN: BOPs/64 + FLOPs)."""
    return float(complexity.count(spec.replace(binary=precision == "bnn")).totals["ops"])


def ops_model(backbone: str, precision: str, stem_mult: float = 1.0, depths=(1, 2, 3),
              width_mults=(1.0, 1.5, 2.0), divisor: int = 1) -> gf.OpsModel:
    """``gf.OpsModel`` fitted to counted OPs of ``backbone`` probes in one precision."""
    pts = [(w * stem_mult, d, count_ops(shape_spec(backbone, d, w * stem_mult, stem_mult, divisor),
                                        precision)) for d in depths for w in width_mults]
    return gf.OpsModel.fit(*np.array(pts).T)


def make_grid(backbone: str = "resnet20", depths=(1, 2, 3), width_mults=(1.0, 1.5, 2.0),
              ref_depth: int = 3, iso_refs=(1.0,), stem_mult: float = 1.0, precisions=PRECISIONS,
              divisor: int = 1) -> list[Shape]:
    """Rectangular grid depths x width_mults (all precisions) plus, per precision and w0 in
    iso_refs, the iso-OPs diagonal through N[w0, ref_depth] over ``depths``, its widths solved
    from that precision's counted OPs. Deduplicated by built architecture."""
    if not depths or not (width_mults or iso_refs):
        raise ValueError(f"depths/width_mults: got {depths!r}/{width_mults!r}; allowed: non-empty "
                         "depths, and width_mults unless iso_refs gives diagonals (an empty "
                         "width_mults trains the iso-OPs diagonals only)")
    if ref_depth not in depths:
        raise ValueError(f"ref_depth: got {ref_depth!r}; allowed: one of depths {list(depths)}")
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise ValueError(f"precisions: got {list(precisions)}; allowed: a non-empty subset of {PRECISIONS}")
    pts = [(float(w), int(d), p) for d in depths for w in width_mults for p in precisions]
    for p in precisions:
        model = ops_model(backbone, p, stem_mult, sorted(set(depths) | {1, 2, 3}), divisor=divisor)
        pts += [(round(float(gf.iso_width(d, w0, ref_depth, model)), 4), int(d), p)
                for w0 in iso_refs for d in depths]
    shapes: dict = {}
    for w, d, p in pts:  # rectangle first: a diagonal net that rounds to a grid net keeps grid w
        spec = shape_spec(backbone, d, w, stem_mult, divisor).replace(binary=False)
        key = (spec.stem_width, spec.stages)
        shapes.setdefault(key, Shape(depth=d, width_mult=w, spec=spec, precisions=[]))
        if p not in shapes[key]["precisions"]:
            shapes[key]["precisions"].append(p)
    shapes = dict(sorted(shapes.items(), key=lambda kv: (kv[1]["depth"], kv[1]["width_mult"])))
    for sh in shapes.values():
        sh["precisions"] = [p for p in PRECISIONS if p in sh["precisions"]]
    return list(shapes.values())


def make_configs(shapes, seeds=(0, 1), precisions=PRECISIONS, backbone: str = "resnet20",
                 by_precision: dict | None = None, **train):
    """One ``TrainConfig`` per shape x precision (those the shape is for) x seed; ``train`` holds
    (epochs, train_subset, val_size, dataset, data_root, device, threads, ...) and
    ``by_precision`` {precision: fields} what one precision sets differently (its recipe)."""
    from bnnlib.train import TrainConfig
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise ValueError(f"precisions: got {list(precisions)}; allowed: a non-empty subset of {PRECISIONS}")
    if not seeds:
        raise ValueError("seeds: got an empty list; allowed: one or more ints")
    out = []  # seed-major, so a partial sweep already covers the whole grid once
    for seed in seeds:
        for s in shapes:
            for p in [p for p in precisions if p in s.get("precisions", precisions)]:
                tag = f"{TAG} {backbone} w={s['width_mult']:.4f} d={s['depth']}"
                kw = {**train, **(by_precision or {}).get(p, {})}
                out.append(TrainConfig(model=backbone, spec=spec_to_dict(s["spec"]),
                                       binary=(p == "bnn"), seed=int(seed), tag=tag, **kw))
    return out


def _parse_tag(tag: str) -> dict:
    words = tag.split()
    parts = dict(p.split("=", 1) for p in words if "=" in p)
    return {"backbone": words[1], "width_mult": float(parts["w"]), "depth": int(parts["d"])}


def diagonal_only(df: pd.DataFrame) -> bool:
    """True when no (precision, depth) was run at two widths: the grid is iso-OPs diagonals
    only, so width is a function of depth and a surface f(w, d) is not identifiable."""
    return bool(len(df)) and int(df.groupby(["precision", "depth"])["width_mult"].nunique().max()) == 1


def _finished(records):
    """(record, config) of each finished gain-surface record."""
    for r in records:
        cfg = r.get("config", {})
        if str(cfg.get("tag", "")).startswith(TAG) and r.get("status") == "finished":
            yield r, cfg


def runs_frame(records, metric: str = "final_test_acc") -> pd.DataFrame:
    """One row per finished gain-surface record: precision, depth, width_mult, seed, acc, OPs."""
    if metric not in METRICS:
        raise ValueError(f"metric: got {metric!r}; allowed: {METRICS}")
    rows = []
    for r, cfg in _finished(records):
        acc = (r.get("metrics") or {}).get(metric)
        if acc is None:
            continue
        cx = r.get("complexity") or {}
        rows.append({"precision": "bnn" if cfg.get("binary") else "fp", **_parse_tag(cfg["tag"]),
                     "seed": int(cfg.get("seed", r.get("seed", 0))), "acc": float(acc),
                     "ops": cx.get("ops"), "flops": cx.get("flops"), "bops": cx.get("bops"),
                     "params": cx.get("params"), "epochs": cfg.get("epochs"),
                     "dataset": (r.get("dataset") or {}).get("name"),
                     "dataset_note": (r.get("dataset") or {}).get("note"),
                     "config_hash": r.get("config_hash")})
    cols = ["precision", "backbone", "depth", "width_mult", "seed", "acc", "ops", "flops", "bops", "params",
            "epochs", "dataset", "dataset_note", "config_hash"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["precision", "depth", "width_mult", "seed"], ignore_index=True)


def curves_frame(records) -> pd.DataFrame:
    """One row per (finished gain-surface record, epoch) with a validation accuracy: precision,
    depth, width_mult, seed, epoch, epochs (the schedule), val_acc. Empty when the runs had no
    validation split (the quick preset)."""
    rows = []
    for r, cfg in _finished(records):
        head = {"precision": "bnn" if cfg.get("binary") else "fp", **_parse_tag(cfg["tag"]),
                "seed": int(cfg.get("seed", r.get("seed", 0))), "epochs": cfg.get("epochs")}
        for e in (r.get("metrics") or {}).get("epochs") or []:
            if e.get("val_acc") is not None:
                rows.append({**head, "epoch": int(e["epoch"]), "val_acc": float(e["val_acc"])})
    cols = ["precision", "backbone", "depth", "width_mult", "seed", "epochs", "epoch", "val_acc"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["precision", "depth", "width_mult", "seed", "epoch"], ignore_index=True)


def load_runs(records_dir, metric: str = "final_test_acc") -> pd.DataFrame:
    """``runs_frame`` of every record under ``records_dir`` (a partial sweep is fine)."""
    from analysis.sweep import load_records
    return runs_frame(load_records(records_dir), metric)


def config_means(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and n over seeds per (precision, depth, width_mult), with OPs."""
    g = df.groupby(["precision", "depth", "width_mult"], sort=True)
    out = g.agg(acc=("acc", "mean"), acc_std=("acc", "std"), n_seeds=("acc", "size"),
                ops=("ops", "first"), params=("params", "first")).reset_index()
    return out


def iso_slices(means: pd.DataFrame, ref_depth: int, iso_refs) -> pd.DataFrame:
    """Rows of ``means`` on each iso-OPs diagonal: OPs within ISO_TOL of the OPs of the same
    precision's reference N[w0, ref_depth] (which must have been run), tagged w0 and ops_dev."""
    parts = []
    for w0 in iso_refs:
        for p, m in means.groupby("precision"):
            ref = m[(m["depth"] == ref_depth) & np.isclose(m["width_mult"], w0, atol=1e-4)]
            if ref.empty or not ref["ops"].iloc[0]:
                continue
            dev = m["ops"].astype(float) / float(ref["ops"].iloc[0]) - 1
            on = m[np.abs(dev) < ISO_TOL].assign(w0=float(w0), ops_dev=dev[np.abs(dev) < ISO_TOL])
            parts.append(on.sort_values("depth"))
    cols = list(means.columns) + ["w0", "ops_dev"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def seed_groups(df: pd.DataFrame) -> dict:
    """{(precision, width_mult, depth): accuracies over seeds} (the bootstrap unit)."""
    return {(p, float(w), int(d)): g["acc"].to_numpy(float)
            for (p, w, d), g in df.groupby(["precision", "width_mult", "depth"])}


def points(groups: dict, precision: str):
    w, d, y = [], [], []
    for (p, wm, dep), acc in groups.items():
        if p == precision:
            w += [wm] * len(acc)
            d += [dep] * len(acc)
            y += list(acc)
    return np.array(w), np.array(d, float), np.array(y)


# ---- study entry points (notebook and CLI) --------------------------------------------------
TRAIN_KEYS = ("epochs", "train_subset", "val_size", "batch_size", "lr", "optimizer", "device",
              "threads", "data_root")
STUDY_KEYS = ("backbone", "depths", "width_mults", "stem_mult", "ref_depth", "iso_refs",
              "precisions", "seeds", "dataset", "records_dir") + TRAIN_KEYS
# optional: recipe/regime options (analysis.sweep.REGIME_KEYS, the cpu preset), and per-precision
# overrides fp_options / bnn_options (analysis.sweep.PRECISION_KEYS: e.g. Adam for the BNN only)
# optional: speed options (analysis.sweep.SPEED_KEYS) reach every TrainConfig; ``pack`` K > 1
# trains the seeds of one shape K at a time in one packed model (bnnlib.packed)


def resolve_dataset(dataset: str, data_root: str | None = None, records_dir: str | None = None) -> str:
    """'auto' -> see ``bnnlib.data.choose_dataset`` (data found, or CIFAR-10 records present)."""
    from bnnlib.data import choose_dataset
    return choose_dataset(dataset, data_root, records_dir)


def study_configs(params: dict) -> list:
    """Every ``TrainConfig`` of a study described by notebook parameters ``params``."""
    missing = [k for k in STUDY_KEYS if k not in params]
    if missing:
        raise ValueError(f"params: missing {missing}; allowed: a dict with all of {list(STUDY_KEYS)}")
    p = params
    shapes = make_grid(p["backbone"], p["depths"], p["width_mults"], p["ref_depth"], p["iso_refs"],
                       p["stem_mult"], p["precisions"])
    from analysis.sweep import precision_options, regime_options, speed_options
    train = {**{k: p[k] for k in TRAIN_KEYS}, **speed_options(p), **regime_options(p)}
    by_precision = {q: precision_options(p, q == "bnn") for q in PRECISIONS}
    return make_configs(shapes, p["seeds"], p["precisions"], p["backbone"], by_precision, eval_test="end",
                        dataset=resolve_dataset(p["dataset"], p["data_root"], p["records_dir"]), **train)


def run(params: dict, workers: int | None = None, executor: str | None = None,
        executor_options: dict | None = None, shard: str | None = None) -> list[dict]:
    """Train what is missing (the sweep runner skips finished runs); returns the records.
    Executor: ``executor`` or, by default, 'packed' when the preset's ``pack`` > 1, else
    'local' (one worker per visible GPU, or ``workers`` processes)."""
    from analysis.sweep import run_sweep
    pack = int(params.get("pack") or 1)
    executor = executor or ("packed" if pack > 1 else "local")
    opts = dict(executor_options or ({"pack_size": pack} if executor == "packed" else {}))
    return run_sweep(study_configs(params), params["records_dir"], executor, workers, opts, shard)


def plan_estimate(params: dict, gpus: int = 1) -> dict:
    """``analysis.cost.estimate`` of the study's runs (packed as the preset says)."""
    from analysis import cost
    return cost.estimate(study_configs(params), pack=int(params.get("pack") or 1), gpus=gpus)


def load_preset(name: str) -> dict:
    """The study parameters of preset ``name`` (notebooks/presets/gain_surface/NAME.yaml)."""
    import yaml
    path = Path(__file__).resolve().parents[2] / "notebooks" / "presets" / "gain_surface" / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"preset: got {name!r}; allowed: {sorted(q.stem for q in path.parent.glob('*.yaml'))}")
    return yaml.safe_load(path.read_text()) or {}
