"""Gain surface G = f(w, d) of FP and binary nets, and the equilibrium depth (DWR Sec. 3.3).

The study trains one backbone family over a grid of depth ``d`` (blocks per stage) and width
multiplier ``w``, FP and BNN from the same specs and recipe, several seeds, and reads the
optimal depth at a fixed budget two ways: model-free along iso-OPs diagonals, and from fitted
surfaces (``analysis.gain_fit``).

Conventions (all explicit here):
- Width: every stage width is ``round_width(w * base)``. The real stem keeps its base width
  as in the paper (Sec. 4.1), except that it shrinks with w below 1 (stem = base * min(w, 1)):
  a stem wider than the first stage would give that stage a real 1x1 shortcut conv.
- Matched OPs are defined within each precision: FP OPs = FLOPs, BNN OPs = BOPs/64 + FLOPs
  (``bnnlib.complexity``). The iso-OPs diagonal through a precision's own reference net
  N[w0, d0] is solved from that precision's counted OPs (``gain_fit.OpsModel``), not from the
  idealised w0 sqrt(d0/d): in a BNN the real stem and head are a large share of the OPs, so
  its diagonal is not the FP one. Each config's OPs deviation from its reference is reported.
- G is a test accuracy in percent (``metric``; default the final epoch, so no selection on
  the test set). The optimum is a measurement of the surface, not a model choice.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bnnlib import complexity
from bnnlib.models import get_spec
from bnnlib.reshape import round_width
from bnnlib.spec import ResNetSpec, spec_to_dict

from . import gain_fit as gf

__all__ = ["Shape", "shape_spec", "count_ops", "ops_model", "make_grid", "make_configs", "runs_frame", "load_runs", "config_means",
           "iso_slices", "raw_properties", "seed_groups", "points", "fit_table", "ops_models", "equilibrium_table", "properties_table", "TAG"]

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


def shape_spec(backbone: str, depth: int, width_mult: float, divisor: int = 1) -> ResNetSpec:
    """``backbone`` with ``depth`` blocks in every stage, stages scaled by width_mult, stem by
    min(width_mult, 1)."""
    base = _base(backbone)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth: got {depth!r}; allowed: a positive int (blocks per stage)")
    if not (isinstance(width_mult, (int, float)) and width_mult > 0 and math.isfinite(width_mult)):
        raise ValueError(f"width_mult: got {width_mult!r}; allowed: a positive finite number")
    widths = tuple(round_width(w * width_mult, divisor) for w in base.widths)
    new = ResNetSpec.uniform((depth,) * len(widths), widths, convs_per_block=len(base.stages[0][0]),
                             strides=base.strides)
    stem = round_width(base.stem_width * min(width_mult, 1.0), divisor)
    return base.replace(stages=new.stages, stem_width=stem)


def count_ops(spec, precision: str) -> float:
    """OPs of ``spec`` built in ``precision`` (FP: FLOPs; BNN: BOPs/64 + FLOPs)."""
    return float(complexity.count(spec.replace(binary=precision == "bnn")).totals["ops"])


def ops_model(backbone: str, precision: str, depths=(1, 2, 3), width_mults=(0.5, 1.0, 1.5, 2.0),
              divisor: int = 1) -> gf.OpsModel:
    """``gf.OpsModel`` fitted to counted OPs of ``backbone`` probes in one precision."""
    pts = [(w, d, count_ops(shape_spec(backbone, d, w, divisor), precision))
           for d in depths for w in width_mults]
    return gf.OpsModel.fit(*np.array(pts).T)


def make_grid(backbone: str = "resnet20", depths=(1, 2, 3), width_mults=(0.5, 0.75, 1.0),
              ref_depth: int = 3, iso_refs=(1.0,), precisions=PRECISIONS, divisor: int = 1) -> list[Shape]:
    """Rectangular grid depths x width_mults (all precisions) plus, per precision and w0 in
    iso_refs, the iso-OPs diagonal through N[w0, ref_depth] over ``depths``, its widths solved
    from that precision's counted OPs. Deduplicated by built architecture."""
    if not depths or not width_mults:
        raise ValueError(f"depths/width_mults: got {depths!r}/{width_mults!r}; allowed: non-empty")
    if ref_depth not in depths:
        raise ValueError(f"ref_depth: got {ref_depth!r}; allowed: one of depths {list(depths)}")
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise ValueError(f"precisions: got {list(precisions)}; allowed: a non-empty subset of {PRECISIONS}")
    pts = [(float(w), int(d), p) for d in depths for w in width_mults for p in precisions]
    for p in precisions:
        model = ops_model(backbone, p, sorted(set(depths) | {1, 2, 3}), divisor=divisor)
        pts += [(round(float(gf.iso_width(d, w0, ref_depth, model)), 4), int(d), p)
                for w0 in iso_refs for d in depths]
    shapes: dict = {}
    for w, d, p in sorted(pts, key=lambda t: (t[1], t[0], t[2])):
        spec = shape_spec(backbone, d, w, divisor).replace(binary=False)
        key = (spec.stem_width, spec.stages)
        shapes.setdefault(key, Shape(depth=d, width_mult=w, spec=spec, precisions=[]))
        if p not in shapes[key]["precisions"]:
            shapes[key]["precisions"].append(p)
    for sh in shapes.values():
        sh["precisions"] = [p for p in PRECISIONS if p in sh["precisions"]]
    return list(shapes.values())


def make_configs(shapes, seeds=(0, 1), precisions=PRECISIONS, backbone: str = "resnet20", **train):
    """One ``TrainConfig`` per shape x precision (those the shape is for) x seed; ``train`` holds
    (epochs, train_subset, val_size, dataset, data_root, device, threads, ...)."""
    from bnnlib.train import TrainConfig
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise ValueError(f"precisions: got {list(precisions)}; allowed: a non-empty subset of {PRECISIONS}")
    if not seeds:
        raise ValueError("seeds: got an empty list; allowed: one or more ints")
    out = []
    for s in shapes:
        for p in [p for p in precisions if p in s.get("precisions", precisions)]:
            for seed in seeds:
                tag = f"{TAG} {backbone} w={s['width_mult']:.4f} d={s['depth']}"
                out.append(TrainConfig(model=backbone, spec=spec_to_dict(s["spec"]),
                                       binary=(p == "bnn"), seed=int(seed), tag=tag, **train))
    return out


def _parse_tag(tag: str) -> dict:
    words = tag.split()
    parts = dict(p.split("=", 1) for p in words if "=" in p)
    return {"backbone": words[1], "width_mult": float(parts["w"]), "depth": int(parts["d"])}


def runs_frame(records, metric: str = "final_test_acc") -> pd.DataFrame:
    """One row per finished gain-surface record: precision, depth, width_mult, seed, acc, OPs."""
    if metric not in METRICS:
        raise ValueError(f"metric: got {metric!r}; allowed: {METRICS}")
    rows = []
    for r in records:
        cfg = r.get("config", {})
        if not str(cfg.get("tag", "")).startswith(TAG) or r.get("status") != "finished":
            continue
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


def load_runs(records_dir, metric: str = "final_test_acc") -> pd.DataFrame:
    """``runs_frame`` of every record under ``records_dir`` (a partial sweep is fine)."""
    from .sweep import load_records
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


def _sign_share(values) -> tuple[float, int]:
    v = [x for x in values if np.isfinite(x)]
    return (float(np.mean(np.array(v) > 0)) if v else np.nan), len(v)


def raw_properties(means: pd.DataFrame, ref_depth: int, iso_refs) -> pd.DataFrame:
    """Model-free check of Sec. 3.3 a)-d) on config means, per precision (share of cases)."""
    rows, sl = [], iso_slices(means, ref_depth, iso_refs)
    for p, m in means.groupby("precision"):
        dw = [np.diff(g.sort_values("width_mult")["acc"].to_numpy()) for _, g in m.groupby("depth")]
        dd = [np.diff(g.sort_values("depth")["acc"].to_numpy()) for _, g in m.groupby("width_mult")]
        cw = [_second_diff(g, "width_mult") for _, g in m.groupby("depth")]
        cd = [_second_diff(g, "depth") for _, g in m.groupby("width_mult")]
        steps = [np.diff(g.sort_values("depth")["acc"].to_numpy()) for _, g in
                 sl[sl["precision"] == p].groupby("w0")]
        interior = [int(g.loc[g["acc"].idxmax(), "depth"] not in (g["depth"].min(), g["depth"].max()))
                    for _, g in sl[sl["precision"] == p].groupby("w0") if len(g) >= 3]
        checks = [("a) wider is better (fixed d)", dw), ("a) deeper is better (fixed w)", dd),
                  ("b) deeper beats wider at equal OPs (diagonal steps)", steps),
                  ("c) diminishing returns in w (2nd diff < 0)", [-x for x in cw]),
                  ("c) diminishing returns in d (2nd diff < 0)", [-x for x in cd]),
                  ("d) interior optimum on a diagonal", [[x - 0.5] for x in interior])]
        for name, vals in checks:
            share, n = _sign_share(np.concatenate([np.ravel(v) for v in vals]) if vals else [])
            rows.append({"precision": p, "property": name, "share_true": share, "n_cases": n})
    return pd.DataFrame(rows, columns=["precision", "property", "share_true", "n_cases"])


def _second_diff(g: pd.DataFrame, col: str) -> np.ndarray:
    """Change of slope between consecutive segments (divided differences, uneven spacing)."""
    g = g.sort_values(col)
    x, y = g[col].to_numpy(float), g["acc"].to_numpy(float)
    if len(x) < 3:
        return np.array([])
    s = np.diff(y) / np.diff(x)
    return np.diff(s) / ((x[2:] - x[:-2]) / 2)


# ---- fits and equilibria --------------------------------------------------------------------
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


def fit_table(df: pd.DataFrame, families=tuple(gf.FAMILIES)) -> tuple[pd.DataFrame, dict]:
    """Held-out (leave-one-config-out) RMSE of each family per precision, and the winners."""
    rows, chosen, groups = [], {}, seed_groups(df)
    for p in sorted(set(df["precision"])):
        w, d, y = points(groups, p)
        try:
            best, scores = gf.select_family(w, d, y, families)
            chosen[p] = best
        except ValueError as e:
            best, scores = None, {f: str(e) for f in families}
        for fam, s in scores.items():
            ok = isinstance(s, float)
            fit = gf.fit_surface(fam, w, d, y) if ok else None
            rows.append({"precision": p, "family": fam, "cv_rmse": s if ok else np.nan,
                         "train_rmse": fit.rmse if fit else np.nan, "selected": fam == best,
                         "params": json.dumps(dict(zip(gf.FAMILIES[fam].params, np.round(fit.theta, 4))))
                         if fit else "", "note": "" if ok else s})
    return pd.DataFrame(rows), chosen


def _safe(fn, *a):
    try:
        return fn(*a)
    except (ValueError, RuntimeError):
        return None


def _slice_arrays(groups: dict, members: set):
    d, y = [], []
    for key, acc in groups.items():
        if key in members:
            d += [key[2]] * len(acc)
            y += list(acc)
    return np.array(d, float), np.array(y)


_METHODS = ("fit optimum", "fit balance (Eq. 11/21)", "raw vertex (quadratic in ln d)", "raw argmax")


def _estimates(groups: dict, chosen: dict, ctx: dict) -> dict:
    """Every equilibrium quantity for one (re)sample of seeds; failures become None."""
    out, d0, rng = {}, ctx["ref_depth"], ctx["d_range"]
    fits = {p: _safe(gf.fit_surface, fam, *points(groups, p)) for p, fam in chosen.items()}
    for w0 in ctx["iso_refs"]:
        for p in PRECISIONS:
            f, ops = fits.get(p), ctx["ops"].get(p)
            opt = _safe(gf.optimal_depth, f, w0, d0, rng, ops) if f else None
            out[f"{p}|{_METHODS[0]}|{w0}"] = opt["d_opt"] if opt else None
            out[f"{p}|{_METHODS[1]}|{w0}"] = _safe(gf.balance_depth, f, w0, d0, rng, ops) if f else None
            sl = _safe(gf.slice_optimum, *_slice_arrays(groups, ctx["slices"].get((p, w0), set())))
            out[f"{p}|{_METHODS[2]}|{w0}"] = sl["d_vertex"] if sl else None
            out[f"{p}|{_METHODS[3]}|{w0}"] = sl["d_argmax"] if sl else None
        for m in _METHODS:
            a, b = out[f"fp|{m}|{w0}"], out[f"bnn|{m}|{w0}"]
            out[f"ratio|{m}|{w0}"] = b / a if a and b is not None else None
        dfp = out[f"fp|{_METHODS[0]}|{w0}"]
        out[f"eq20|{_METHODS[0]}|{w0}"] = (float(gf.marginal_gap(fits["bnn"], dfp, w0, d0, ctx["ops"]["bnn"]))
                                         if dfp and fits.get("bnn") else None)
    return out


_QUANTITY = {"fp": "d0 (FP)", "bnn": "d_n (BNN)", "ratio": "d_n / d0",
             "eq20": "BNN m_d - m_w at FP's d0 (Eq. 20: < 0)"}


@functools.lru_cache(maxsize=None)
def _cached_ops_model(backbone: str, precision: str) -> gf.OpsModel:
    return ops_model(backbone, precision)


def ops_models(df: pd.DataFrame, given: dict | None = None) -> dict:
    """{precision: OpsModel}: ``given`` or, by default, fitted to counted OPs of the backbone."""
    if given is not None:
        return dict(given)
    names = sorted(set(df["backbone"]))
    if len(names) != 1:
        raise ValueError(f"df: got backbones {names}; allowed: runs of exactly one backbone")
    return {p: _cached_ops_model(names[0], p) for p in sorted(set(df["precision"]))}


def _context(df: pd.DataFrame, ref_depth: int, iso_refs, ops, d_range) -> dict:
    sl = iso_slices(config_means(df), ref_depth, iso_refs)
    slices = {(p, w0): {(p, float(w), int(d)) for w, d in zip(g["width_mult"], g["depth"])}
              for (p, w0), g in sl.groupby(["precision", "w0"])}
    return {"ref_depth": ref_depth, "iso_refs": tuple(float(w) for w in iso_refs), "slices": slices,
            "ops": ops_models(df, ops),
            "d_range": d_range or (float(df["depth"].min()), float(df["depth"].max()))}


def equilibrium_table(df: pd.DataFrame, ref_depth: int, iso_refs, n_boot: int = 200, seed: int = 0,
                      level: float = 0.95, families=tuple(gf.FAMILIES), d_range=None,
                      ops: dict | None = None, chosen: dict | None = None) -> pd.DataFrame:
    """d0, d_n, d_n/d0 (and the Eq. 20 sign) per budget and method, with bootstrap CIs over
    seeds (the family of each precision is chosen once, on all seeds, by held-out error)."""
    if df.empty:
        raise ValueError("df: got no finished runs; allowed: a frame from load_runs with records")
    chosen = fit_table(df, families)[1] if chosen is None else chosen
    ctx = _context(df, ref_depth, iso_refs, ops, d_range)
    res = gf.bootstrap(seed_groups(df), lambda g: _estimates(g, chosen, ctx), n_boot, seed, level)
    rows = []
    for key, (est, lo, hi, n_ok) in res.items():
        who, method, w0 = key.split("|")
        fam = ""
        if method.startswith("fit"):
            fam = chosen.get(who) or "/".join(f"{p}:{chosen.get(p, '-')}" for p in PRECISIONS)
        rows.append({"w0": float(w0), "d_ref": ref_depth, "quantity": _QUANTITY[who], "method": method,
                     "family": fam, "estimate": np.nan if est is None else float(est),
                     "ci_lo": lo, "ci_hi": hi, "n_boot_ok": n_ok, "n_boot": n_boot})
    return pd.DataFrame(rows)


def properties_table(df: pd.DataFrame, ref_depth: int, iso_refs, families=tuple(gf.FAMILIES),
                     ops: dict | None = None, chosen: dict | None = None) -> pd.DataFrame:
    """Sec. 3.3 a)-d): model-free shares from config means and from each selected fit."""
    means = config_means(df)
    raw = raw_properties(means, ref_depth, iso_refs).assign(source="raw means")
    chosen = fit_table(df, families)[1] if chosen is None else chosen
    groups, rows, models = seed_groups(df), [], ops_models(df, ops)
    for p, fam in chosen.items():
        fit = gf.fit_surface(fam, *points(groups, p))
        for k, v in gf.fit_properties(fit, iso_refs[0], ref_depth, models[p]).items():
            rows.append({"precision": p, "property": k, "share_true": float(v), "n_cases": np.nan,
                         "source": f"fit {fam} (w0={iso_refs[0]})"})
    return pd.concat([raw, pd.DataFrame(rows)], ignore_index=True)
