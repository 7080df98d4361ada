"""Complexity figures: measured vs predicted scaling ratios, DWR backbones relative to the original."""
from __future__ import annotations

import pandas as pd

from .study import PRECISIONS, QUANTITIES

__all__ = ["plot_scaling", "plot_dwr"]

_MARKERS = {"depth": "s", "width": "^", "naive": "o"}
_LABELS = {"ops": "OPs", "params": "parameters", "acts": "activations"}


def plot_scaling(long: pd.DataFrame):
    """Measured vs predicted ratio: a row per precision, a column per quantity.

    Filled markers count the scaled body, open markers the whole model.
    """
    import matplotlib.pyplot as plt

    from analysis.figures import style

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

    from analysis.figures import style

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
