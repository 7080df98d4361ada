"""Figures of the inference-speed study (matplotlib; data come from ``tables``)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import style  # noqa: E402

from .tables import CATEGORIES, correlations, records_frame  # noqa: E402

__all__ = ["plot_latency", "plot_breakdown", "plot_vs_complexity"]

_ENG = {"bnn_ov": ("BNN, OpenVINO binary kernels", "#0072B2"),
        "fp_ov": ("FP, OpenVINO f32", "#E69F00"),
        "fp_torch": ("FP, PyTorch", "#999999")}
_KIND_HATCH = {"original": "", "naive": "//", "dwr": ".."}


def plot_latency(recs: list[dict]):
    """Median latency (bars) with the inter-quartile range, per backbone and net; one panel
    per thread setting; log scale."""
    style()
    df = records_frame(recs)
    threads = sorted(df["threads_label"].unique(), key=lambda t: (t == "all", t))
    fig, axes = plt.subplots(1, len(threads), figsize=(6.5 * len(threads), 4.2), squeeze=False, sharey=True)
    for ax, t in zip(axes[0], threads):
        g = df[df["threads_label"] == t]
        nets = g[["backbone", "kind", "model"]].drop_duplicates().reset_index(drop=True)
        x = np.arange(len(nets))
        w = 0.27
        for j, eng in enumerate(_ENG):
            e = g[g["engine"] == eng].set_index(["backbone", "kind"])
            e = e.loc[list(zip(nets["backbone"], nets["kind"]))]
            err = np.vstack([e["median_ms"] - e["p25_ms"], e["p75_ms"] - e["median_ms"]])
            bars = ax.bar(x + (j - 1) * w, e["median_ms"], w, yerr=err, capsize=2, color=_ENG[eng][1],
                          label=_ENG[eng][0], edgecolor="black", linewidth=0.4)
            for b, k in zip(bars, nets["kind"]):
                b.set_hatch(_KIND_HATCH[k])
        ax.set_xticks(x)
        ax.set_xticklabels([f"{b}\n{k}" for b, k in zip(nets["backbone"], nets["kind"])], rotation=90, fontsize=7)
        ax.set_yscale("log")
        ax.set_title(f"batch 1, threads = {t}")
        ax.set_ylabel("latency, ms (median; bars: IQR)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_breakdown(breakdown: pd.DataFrame):
    """Share of each category in the BNN's OpenVINO node time (performance counters), per
    net; the total (ms, sum of node times) is written above each bar."""
    style()
    threads = sorted(breakdown["threads_label"].unique(), key=lambda t: (t == "all", t))
    fig, axes = plt.subplots(1, len(threads), figsize=(6.5 * len(threads), 4.4), squeeze=False)
    colors = dict(zip(CATEGORIES, ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442",
                                   "#D55E00", "#999999"]))
    for ax, t in zip(axes[0], threads):
        g = breakdown[breakdown["threads_label"] == t].reset_index(drop=True)
        x = np.arange(len(g))
        bottom = np.zeros(len(g))
        for c in CATEGORIES:
            v = g[f"{c}_share"].to_numpy()
            ax.bar(x, v, 0.7, bottom=bottom, color=colors[c], label=c.replace("_", " "))
            bottom += v
        for xi, tot in zip(x, g["total_us"]):
            ax.text(xi, 1.01, f"{tot / 1e3:.1f}", ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{b}\n{k}" for b, k in zip(g["backbone"], g["kind"])], rotation=90, fontsize=7)
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("share of node time (total ms above)")
        ax.set_title(f"BNN on OpenVINO, threads = {t}")
    axes[0][-1].legend(fontsize=6, ncol=1, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def plot_vs_complexity(recs: list[dict]):
    """Latency against OPs (left) and activations (right), every net, per engine, one thread
    setting per row; the legend gives the Pearson r of the log-log fit."""
    style()
    df = records_frame(recs)
    corr = correlations(recs)
    corr = corr[corr["scope"] == "across nets"].set_index(["engine", "threads_label", "against"])
    threads = sorted(df["threads_label"].unique(), key=lambda t: (t == "all", t))
    fig, axes = plt.subplots(len(threads), 2, figsize=(10, 3.8 * len(threads)), squeeze=False)
    for i, t in enumerate(threads):
        for j, what in enumerate(("ops", "acts")):
            ax = axes[i][j]
            for eng, (label, color) in _ENG.items():
                g = df[(df["engine"] == eng) & (df["threads_label"] == t)]
                r = corr.loc[(eng, t, what), "pearson_log"]
                ax.scatter(g[what], g["median_ms"], s=18, color=color, label=f"{label} (r={r:.2f})")
                for k, mk in (("dwr", "*"), ("naive", "x")):
                    h = g[g["kind"] == k]
                    ax.scatter(h[what], h["median_ms"], s=60, marker=mk, color=color)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("OPs (BNN: BOPs/64 + FLOPs; FP: FLOPs)" if what == "ops" else "activations per image")
            ax.set_ylabel("median latency, ms")
            ax.set_title(f"threads = {t}: latency vs {'OPs' if what == 'ops' else 'activations'}")
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
