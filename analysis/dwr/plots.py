"""Figures of the DWR study: accuracy vs OPs of original, naive and DWR backbones (from records)."""
from __future__ import annotations

import os

import pandas as pd

from .tables import _dataset_label, _record_ids, _scale_label

__all__ = ["accuracy_vs_ops"]


def _short(key: str) -> str:
    """Point label: 'naive_1.5' -> 'naive s=1.5', 'original_plus1' -> 'original+1'."""
    return (key.replace("_plus1", "+1").replace("_minus1", "-1").replace("naive_", "naive s=")
            .replace("dwr_authors", "DWR (authors)").replace("dwr_", "DWR s="))


def accuracy_vs_ops(rows: list[dict], outdir: str | os.PathLike, preset: str,
                    records_dir: str | os.PathLike = "", name: str | None = None) -> dict:
    """Figure: our accuracy (mean ± std) vs OPs, original vs naive vs DWR (BNN rows)."""
    import matplotlib.pyplot as plt

    from analysis.figures import save_figure, style

    style()
    pts = [r for r in rows if r["reproduced"] and r["method"] != "FP" and r.get("acc_mean")
           is not None]
    if not pts:  # no record yet (a long preset before its first runs land): no empty figure
        print(f"{rows[0]['table']}: no measured BNN row in {records_dir}; accuracy-vs-OPs figure skipped")
        return {}
    groups = {"Original": [], "Naive reshaping": [], "DWR": []}
    for r in pts:
        g = ("DWR" if "DWR" in r["reshaping"] or "pruning" in r["reshaping"] else
             "Naive reshaping" if r["reshaping"].startswith("Naive") else "Original")
        groups[g].append(r)
    fig, ax = plt.subplots()
    data = []
    for (g, rs), marker in zip(groups.items(), ("o", "s", "^")):
        if not rs:
            continue
        ax.errorbar([r["ops"] / 1e6 for r in rs], [r["acc_mean"] for r in rs],
                    yerr=[r["acc_std"] or 0.0 for r in rs], fmt=marker, capsize=3, label=g)
        for r in rs:
            ax.annotate(_short(r["key"]), (r["ops"] / 1e6,
                        r["acc_mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
            data.append({"group": g, "key": r["key"], "reshaping": r["reshaping"],
                         "widths": r.get("widths"), "depths": r.get("depths"),
                         "ops": r["ops"], "acc_mean": r["acc_mean"], "acc_std": r["acc_std"],
                         "n_seeds": r["n_seeds"], "paper_acc": r["paper_acc"]})
    ax.set_xlabel("OPs (1e6) = BOPs/64 + FLOPs")
    ax.set_ylabel("test accuracy (%), final epoch")
    ax.set_title(f"Table {rows[0]['table'][5:]}: accuracy vs OPs ({preset} preset)")
    ax.legend()
    meta = {"title": f"Accuracy vs OPs: original vs naive vs DWR ({rows[0]['table']}, {preset})",
            "what": "Each point: mean ± std over seeds of the final-epoch test accuracy of one "
                    "BNN backbone, at its OPs from bnnlib.complexity.",
            "preset": preset, "dataset": _dataset_label(rows, "dataset_short"), "scale": _scale_label(pts),
            "records": _record_ids(pts, records_dir)}
    paths = save_figure(fig, name or f"dwr_{rows[0]['table']}_acc_vs_ops",
                        pd.DataFrame(data), outdir, meta)
    plt.close(fig)
    return paths
