"""Complexity study (no training): Tables 1, 3 and 8 of the DWR paper checked on real models.

Table 1 says that scaling depth by s multiplies OPs, parameters and activations by s, and
scaling width by sqrt(s) multiplies OPs and parameters by s but activations only by sqrt(s);
Table 3 that the naive reshape N[w, d] -> N[sqrt(s) w, d/s] keeps OPs and parameters and
divides activations by sqrt(s). Those are statements about the scaled body; the real stem and
head, width rounding and the BNN mix OPs = BOPs/64 + FLOPs make whole models deviate, so every
ratio is measured twice: on the body (the ``stages`` layers) and on the whole model.
"""
from __future__ import annotations

import functools
import math

import pandas as pd

from bnnlib.complexity import Conventions, count, dwr_table
from bnnlib.models import get_spec, list_models
from bnnlib.reshape import naive_reshape, scale, valid_s

__all__ = ["scaling_rows", "scaling_table", "error_summary", "table8_rows", "dwr_rows", "PAPER_TABLE8",
           "QUANTITIES", "PRECISIONS"]

QUANTITIES = ("ops", "params", "acts")
PRECISIONS = {"fp": False, "bnn": True}
# Table 1 / Table 3 predictions: transform -> quantity -> ratio as a function of s.
PREDICTED = {
    "depth": {"ops": lambda s: s, "params": lambda s: s, "acts": lambda s: s},
    "width": {"ops": lambda s: s, "params": lambda s: s, "acts": math.sqrt},
    "naive": {"ops": lambda s: 1.0, "params": lambda s: 1.0, "acts": lambda s: 1 / math.sqrt(s)},
}
# Table 8 of the paper (OPs x 1e8) with the registered backbone that each row describes.
# The ReActNet DWR widths (116/188/408/910) are the authors' code's ReActNet variant.
PAPER_TABLE8 = (
    ("FP", "Original", 18.3, "resnet18_imagenet", {"binary": False}, None),
    ("Bi-Real Net", "Original", 1.75, "resnet18_imagenet", {}, None),
    ("None", "Original", 1.74, "resnet18_imagenet", {}, None),
    ("None", "DWR", 1.73, "resnet18_imagenet_dwr", {}, None),
    ("ReActNet", "Original", 1.81, "resnet18_imagenet", {"input_binarizer": "rsign", "act": "rprelu"}, None),
    ("ReActNet", "DWR", 1.81, "resnet18_imagenet_dwr", {"input_binarizer": "rsign", "act": "rprelu"},
     (116, 188, 408, 910)),
)
ALL_EXTRAS = Conventions(count_bn=True, count_act=True, count_pool=True, count_bias=True,
                         count_scale=True)


@functools.lru_cache(maxsize=256)
def _count(spec, conventions: Conventions | None = None):
    """``count`` memoised per (frozen, hashable) spec: the same model recurs across rows."""
    return count(spec, conventions)


def _measure(spec) -> dict[str, dict[str, float]]:
    """OPs/params/acts of the whole model and of its body (the ``stages`` layers)."""
    rep = _count(spec)
    body = [r for r in rep.layers if r["name"].startswith("stages.")]
    bops = sum(r["macs"] for r in body if r["binary"])
    flops = sum(r["macs"] for r in body if not r["binary"]) + sum(r["real_ops"] for r in body)
    return {"whole": {q: float(rep.totals[q]) for q in QUANTITIES},
            "body": {"ops": flops + bops / 64, "params": float(sum(r["params"] for r in body)),
                     "acts": float(sum(r["acts"] for r in body))}}


def _check_inputs(models: list[str], factors: list[float], precisions: list[str]) -> None:
    for m in models:
        if m not in list_models():
            raise ValueError(f"models: got {m!r}; allowed: {list_models()}")
    for s in factors:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 1:
            raise ValueError(f"factors: got {s!r}; allowed: numbers > 1")
    for p in precisions:
        if p not in PRECISIONS:
            raise ValueError(f"precisions: got {p!r}; allowed: {list(PRECISIONS)}")


def _pairs(spec, s: float) -> list[tuple[str, object, object]]:
    """(transform, reference, scaled) spec pairs for one s; depth ones only where s divides."""
    pairs = [("width", spec, scale(spec, math.sqrt(s), 1.0))]
    if any(abs(s - v) < 1e-9 for v in valid_s(spec)):
        pairs.insert(0, ("depth", scale(spec, 1.0, s), spec))
        pairs.append(("naive", spec, naive_reshape(spec, s)))
    return pairs


def scaling_rows(models: list[str], factors: list[float], precisions: list[str]) -> pd.DataFrame:
    """Long table: one row per (model, precision, transform, s, scope, quantity)."""
    _check_inputs(models, factors, precisions)
    rows = []
    for model in models:
        for prec in precisions:
            spec = get_spec(model, binary=PRECISIONS[prec])
            for s in factors:
                for transform, ref, new in _pairs(spec, float(s)):
                    a, b = _measure(ref), _measure(new)
                    for scope in ("body", "whole"):
                        for q in QUANTITIES:
                            pred, meas = PREDICTED[transform][q](float(s)), b[scope][q] / a[scope][q]
                            rows.append({"model": model, "precision": prec, "transform": transform,
                                         "s": float(s), "scope": scope, "quantity": q,
                                         "predicted": pred, "measured": meas,
                                         "rel_error": meas / pred - 1.0,
                                         "widths_ref": "/".join(map(str, ref.widths)),
                                         "widths_new": "/".join(map(str, new.widths)),
                                         "depths_ref": "/".join(map(str, ref.depths)),
                                         "depths_new": "/".join(map(str, new.depths))})
    if not rows:
        raise ValueError("models/factors: no (model, s) pair to measure")
    return pd.DataFrame(rows)


def scaling_table(long: pd.DataFrame, scope: str = "body") -> pd.DataFrame:
    """Wide view of ``scaling_rows``: predicted and measured ratio per quantity, one scope."""
    sub = long[long["scope"] == scope]
    keys = ["model", "precision", "transform", "s"]
    wide = sub.pivot_table(index=keys, columns="quantity", values=["predicted", "measured"],
                           sort=False)
    wide.columns = [f"{q}_{kind[:4]}" for kind, q in wide.columns]
    cols = [f"{q}_{k}" for q in QUANTITIES for k in ("pred", "meas")]
    return wide[cols].reset_index()


def error_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Worst and median |measured/predicted - 1| per (precision, transform, scope, quantity)."""
    keys = ["precision", "transform", "scope", "quantity"]
    err = long.assign(abs_err=long["rel_error"].abs())
    g = err.groupby(keys, sort=True)["abs_err"]
    out = pd.DataFrame({"n": g.size(), "median_abs_rel_error": g.median(),
                        "max_abs_rel_error": g.max()}).reset_index()
    worst = err.loc[g.idxmax().values, "model"].to_numpy()
    return out.assign(worst_model=worst)


def _spec_for(name: str, overrides: dict, widths):
    spec = get_spec(name, **overrides)
    if widths is not None:
        stages = tuple(tuple(tuple(w for _ in blk) for blk in st) for st, w in zip(spec.stages, widths))
        spec = spec.replace(stages=stages)
    return spec


def table8_rows() -> pd.DataFrame:
    """Table 8's OPs column recomputed, next to the paper's numbers (x 1e8 OPs)."""
    rows = []
    for method, reshaping, paper, name, overrides, widths in PAPER_TABLE8:
        spec = _spec_for(name, overrides, widths)
        t, extra = _count(spec).totals, _count(spec, ALL_EXTRAS).totals
        bin_sc = _count(spec.replace(binary_shortcut=True)).totals if spec.binary else t
        rows.append({"method": method, "reshaping": reshaping, "model": name,
                     "widths": "/".join(map(str, spec.widths)), "paper_ops_1e8": paper,
                     "ours_ops_1e8": t["ops"] / 1e8, "ours_all_extras_ops_1e8": extra["ops"] / 1e8,
                     "ours_binary_1x1_ops_1e8": bin_sc["ops"] / 1e8,
                     "ours_over_paper": t["ops"] / 1e8 / paper, "flops_1e8": t["flops"] / 1e8,
                     "bops_1e9": t["bops"] / 1e9, "params_M": t["params"] / 1e6,
                     "acts_M": t["acts"] / 1e6})
    return pd.DataFrame(rows)


def dwr_rows() -> pd.DataFrame:
    """Original vs naive vs DWR for every backbone in DWR_PAIRS (``bnnlib.complexity.dwr_table``)."""
    return pd.DataFrame(dwr_table())


_MARKERS = {"depth": "s", "width": "^", "naive": "o"}
_LABELS = {"ops": "OPs", "params": "parameters", "acts": "activations"}


def plot_scaling(long: pd.DataFrame):
    """Measured vs predicted ratio: a row per precision, a column per quantity.

    Filled markers count the scaled body, open markers the whole model.
    """
    import matplotlib.pyplot as plt

    from .figures import style

    style()
    precs = [p for p in PRECISIONS if p in set(long["precision"])]
    fig, axes = plt.subplots(len(precs), 3, figsize=(9.0, 2.9 * len(precs)), squeeze=False)
    for row, prec in zip(axes, precs):
        for ax, q in zip(row, QUANTITIES):
            sub = long[(long["quantity"] == q) & (long["precision"] == prec)]
            for (transform, scope), g in sub.groupby(["transform", "scope"], sort=True):
                color = f"C{list(_MARKERS).index(transform)}"
                ax.scatter(g["predicted"], g["measured"], marker=_MARKERS[transform], s=22,
                           facecolors=color if scope == "body" else "none", edgecolors=color,
                           label=f"{transform} ({scope})")
            lo = min(sub["predicted"].min(), sub["measured"].min()) * 0.9
            hi = max(sub["predicted"].max(), sub["measured"].max()) * 1.05
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
            ax.set(title=f"{_LABELS[q]} ({prec.upper()})", xlabel="predicted ratio")
        row[0].set_ylabel("measured ratio")
    axes[0, -1].legend(loc="upper left", fontsize=6.5, frameon=False)
    fig.tight_layout()
    return fig


def plot_dwr(df: pd.DataFrame):
    """Naive and DWR backbones relative to their original: OPs, params, acts (BNN)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .figures import style

    style()
    rows = df[df["kind"] != "original"].reset_index(drop=True)
    labels = [f"{r.backbone}\n{r.kind}" for r in rows.itertuples()]
    x, w = np.arange(len(rows)), 0.26
    fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(rows) + 1.5), 3.2))
    for i, q in enumerate(QUANTITIES):
        ax.bar(x + (i - 1) * w, rows[f"{q}_ratio"], w, label=_LABELS[q])
    ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_xticks(x, labels, fontsize=6.5, rotation=30, ha="right")
    ax.set_ylabel("ratio to the original backbone")
    ax.legend(frameon=False, ncols=3, fontsize=7)
    fig.tight_layout()
    return fig
