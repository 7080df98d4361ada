"""Tables of the gain-surface study: family selection, equilibrium depths d0 / d_n with seed
bootstrap CIs, and the properties a)-d) of DWR Sec. 3.3, all from a runs frame
(``analysis.gain_surface.study.load_runs``)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from . import fit as gf
from .study import PRECISIONS, config_means, iso_slices, points, seed_groups

__all__ = ["raw_properties", "fit_table", "ops_models", "equilibrium_table", "properties_table"]


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


def _window_method(k: int) -> str:
    return f"raw vertex, shallowest {k} depths"


def _windows(df: pd.DataFrame) -> tuple[int, ...]:
    """Shallow-end windows of the raw vertex: the first k depths of a slice for k = 3 (the
    fewest a quadratic needs) up to one short of all sampled depths. They test whether an
    interior vertex is carried by the deep end of the slice (a curve that bends down there)."""
    n = df["depth"].nunique()
    return tuple(range(gf.MIN_LEVELS, n))


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
            d, y = _slice_arrays(groups, ctx["slices"].get((p, w0), set()))
            sl = _safe(gf.slice_optimum, d, y)
            out[f"{p}|{_METHODS[2]}|{w0}"] = sl["d_vertex"] if sl else None
            out[f"{p}|{_METHODS[3]}|{w0}"] = sl["d_argmax"] if sl else None
            levels = np.unique(d)
            for k in ctx["windows"]:  # the same vertex on the shallow end only
                keep = np.isin(d, levels[:k]) if len(levels) > k else np.zeros(len(d), bool)
                sl = _safe(gf.slice_optimum, d[keep], y[keep])
                out[f"{p}|{_window_method(k)}|{w0}"] = sl["d_vertex"] if sl else None
        for m in _METHODS + tuple(_window_method(k) for k in ctx["windows"]):
            a, b = out[f"fp|{m}|{w0}"], out[f"bnn|{m}|{w0}"]
            out[f"ratio|{m}|{w0}"] = b / a if a and b is not None else None
        dfp = out[f"fp|{_METHODS[0]}|{w0}"]
        bops = ctx["ops"].get("bnn")  # gap x budget: accuracy points per relative change of OPs
        out[f"eq20|{_METHODS[0]}|{w0}"] = (float(gf.marginal_gap(fits["bnn"], dfp, w0, d0, bops) * bops(w0, d0))
                                         if dfp and fits.get("bnn") else None)
    return out


_QUANTITY = {"fp": "d0 (FP)", "bnn": "d_n (BNN)", "ratio": "d_n / d0",
             "eq20": "BNN (m_d - m_w) x C at FP's d0 (Eq. 20: < 0)"}


def ops_models(df: pd.DataFrame, given: dict | None = None) -> dict:
    """{precision: OpsModel}: ``given`` or fitted to the counted OPs stored in the records."""
    if given is not None:
        return dict(given)
    out = {}
    for p, g in df.drop_duplicates(["precision", "width_mult", "depth"]).groupby("precision"):
        if g["ops"].isna().any():
            raise ValueError(f"df: {p} runs without 'ops' in their records; allowed: records with "
                             "complexity totals, or pass ops={precision: OpsModel}")
        out[p] = gf.OpsModel.fit(g["width_mult"], g["depth"], g["ops"].astype(float))
    return out


def _context(df: pd.DataFrame, ref_depth: int, iso_refs, ops, d_range) -> dict:
    sl = iso_slices(config_means(df), ref_depth, iso_refs)
    slices = {(p, w0): {(p, float(w), int(d)) for w, d in zip(g["width_mult"], g["depth"])}
              for (p, w0), g in sl.groupby(["precision", "w0"])}
    return {"ref_depth": ref_depth, "iso_refs": tuple(float(w) for w in iso_refs), "slices": slices,
            "ops": ops_models(df, ops), "windows": _windows(df),
            "depths": {key: sorted({d for _, _, d in m}) for key, m in slices.items()},
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
                     "ci_lo": lo, "ci_hi": hi, "n_boot_ok": n_ok, "n_boot": n_boot,
                     "at_edge": _edge(res, who, method, w0, _method_range(ctx, method, w0))})
    return pd.DataFrame(rows)


def _method_range(ctx: dict, method: str, w0: str) -> dict:
    """{precision: (lowest, highest) depth} a method's estimate can take on the w0 slice: the
    sampled range, or the window's for a shallow-end vertex."""
    k = next((k for k in ctx["windows"] if method == _window_method(k)), None)
    out = {}
    for p in PRECISIONS:
        depths = ctx["depths"].get((p, float(w0)), [])
        out[p] = (float(depths[0]), float(depths[k - 1])) if k and len(depths) > k else ctx["d_range"]
    return out


def _edge(res: dict, who: str, method: str, w0: str, ranges: dict) -> str:
    """'low'/'high' when a depth estimate (or a ratio's part) sits on the sampled range's end:
    then it is only a bound (the optimum may lie beyond the grid); '' otherwise."""
    parts = {"ratio": ("fp", "bnn"), "fp": ("fp",), "bnn": ("bnn",)}.get(who, ())
    edges = []
    for p in parts:
        d_range = ranges[p]
        tol = 1e-3 * (d_range[1] - d_range[0])
        v = res[f"{p}|{method}|{w0}"][0]
        if v is not None and abs(v - d_range[0]) < tol:
            edges.append(f"{p} low")
        elif v is not None and abs(v - d_range[1]) < tol:
            edges.append(f"{p} high")
    return ", ".join(edges)


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
