"""Outputs of the DWR study: tables (Markdown + CSV), accuracy-vs-OPs figure, speed table.

Everything here is built from records (``analysis.dwr_tables.build_table`` rows, the speed
record) and written with ``analysis.figures.save_table`` / ``save_figure`` (deterministic
bytes, manifests); ``notebooks/dwr_tables.ipynb`` only calls these functions.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bnnlib import data as bdata

from . import dwr_tables as T
from .dwr_paper import PAPER
from .dwr_speed import speed_markdown, speed_rows

__all__ = ["resolve_dataset_name", "table_frame", "write_table", "accuracy_vs_ops",
           "write_speed", "TABLE_COLUMNS", "ORDERINGS", "orderings", "write_orderings"]

# The paper's claims per table, as (left, right) row keys: "left is more accurate than right"
# (Sec. 5.2/5.3). Table 4's Original+1 ~ Original claim is the pair with `tie`.
ORDERINGS = {
    "table4": [("naive_1.5", "original", "naive reshaping beats the original (s=1.5)"),
               ("naive_3", "original", "naive reshaping beats the original (s=3)"),
               ("naive_3", "naive_1.5", "s=3 beats s=1.5 (naive)"),
               ("dwr_1.5", "naive_1.5", "pruning beats naive reshaping (s=1.5)"),
               ("dwr_3", "naive_3", "pruning beats naive reshaping (s=3)"),
               ("dwr_3", "dwr_1.5", "s=3 beats s=1.5 (DWR)"),
               ("dwr_3", "original", "DWR s=3 beats the original"),
               ("original_plus1", "original", "one more layer gains ~nothing (paper: tie)")],
    "table5": [("dwr_pre5", "original", "DWR with 5 pre-training epochs beats the original"),
               ("dwr_full", "dwr_pre5", "longer pre-training helps")],
    "table6": [(f"{b}/dwr", f"{b}/original", f"DWR beats the original ({b})")
               for b in ("vgg11", "resnet20", "resnet18")],
    "table7": [("original_plus1", "original", "Original+1 (DWR) beats the original"),
               ("original", "original_minus1", "the original beats Original-1")],
}

TABLE_COLUMNS = ("backbone", "method", "reshaping", "widths", "depths", "paper_acc", "acc_mean",
                 "acc_std", "n_seeds", "acc_at_best_val_mean", "ops", "params", "acts")


def _savers():
    from .figures import save_figure, save_table
    return save_figure, save_table


def resolve_dataset_name(dataset: str, data_root: str | None = None, records_dir: str | None = None) -> str:
    """'auto' -> see ``bnnlib.data.choose_dataset`` (data found, or CIFAR-10 records present)."""
    return bdata.choose_dataset(dataset, data_root, records_dir)


def table_frame(rows: list[dict]) -> pd.DataFrame:
    """The columns of a DWR table as a DataFrame (one row per paper row or added row)."""
    df = pd.DataFrame([{c: r.get(c) for c in TABLE_COLUMNS} for r in rows])
    ours = []
    for r in rows:
        if not r["reproduced"]:
            ours.append("not run")
        elif r["acc_mean"] is None:
            ours.append("missing")
        else:
            ours.append(f"{r['acc_mean']:.2f} ± {r['acc_std']:.2f}")
    df.insert(df.columns.get_loc("acc_mean"), "ours", ours)
    return df


def _dataset_label(rows) -> str | None:
    notes = sorted({r["dataset_note"] for r in rows if r.get("dataset_note")})
    return "; ".join(notes) or None


def _record_ids(rows, records_dir) -> list[str]:
    return [f"{Path(records_dir).as_posix()}/{x}" for r in rows for x in r.get("records", [])]


def _rows_meta(title, what, rows, preset, records_dir) -> dict:
    """Manifest fields of a table built from ``rows`` (dataset note and record ids)."""
    return {"title": title, "what": what, "preset": preset, "dataset": _dataset_label(rows),
            "records": _record_ids(rows, records_dir)}


def write_table(table: str, rows: list[dict], outdir: str | os.PathLike, preset: str,
                records_dir: str | os.PathLike) -> dict:
    """NAME.md + NAME.csv (+ manifest) for ``table``; returns the written paths."""
    _, save_table = _savers()
    what = ("Paper: accuracy as printed (best test epoch, official CIFAR-10). Ours: final-epoch "
            "test accuracy, mean ± std over seeds (n_seeds), `acc_at_best_val_mean` = test "
            "accuracy at the best validation epoch; OPs = BOPs/64 + FLOPs, params and "
            "activations from bnnlib.complexity (DWR rows: mean over the seeds' pruned specs, "
            f"widths of each listed). Preset `{preset}`; records in `{records_dir}`.")
    meta = _rows_meta(f"{PAPER[table]['source']}: {PAPER[table]['caption']} — paper vs ours",
                      what, rows, preset, records_dir)
    return save_table(table_frame(rows), f"dwr_{table}_{preset}", outdir, meta, floatfmt=".4g")


def _short_dataset(label: str | None) -> str | None:
    """A footnote that fits under a figure (the tables carry the full data note)."""
    if label and "JPEG-rebuilt" in label:
        return "JPEG-rebuilt CIFAR-10 (lossy copy, not the official pixels; see SOURCE.md)"
    return label


def _short(key: str) -> str:
    """Point label: 'naive_1.5' -> 'naive s=1.5', 'original_plus1' -> 'original+1'."""
    return (key.replace("_plus1", "+1").replace("_minus1", "-1").replace("naive_", "naive s=")
            .replace("dwr_authors", "DWR (authors)").replace("dwr_", "DWR s="))


def accuracy_vs_ops(rows: list[dict], outdir: str | os.PathLike, preset: str,
                    records_dir: str | os.PathLike = "", name: str | None = None) -> dict:
    """Figure: our accuracy (mean ± std) vs OPs, original vs naive vs DWR (BNN rows)."""
    import matplotlib.pyplot as plt

    save_figure, _ = _savers()
    from .figures import style
    style()
    pts = [r for r in rows if r["reproduced"] and r["method"] != "FP" and r.get("acc_mean")
           is not None]
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
                    yerr=[r["acc_std"] for r in rs], fmt=marker, capsize=3, label=g)
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
            "preset": preset, "dataset": _short_dataset(_dataset_label(rows)),
            "records": _record_ids(pts, records_dir)}
    paths = save_figure(fig, name or f"dwr_{rows[0]['table']}_acc_vs_ops_{preset}",
                        pd.DataFrame(data), outdir, meta)
    plt.close(fig)
    return paths


def orderings(table: str, rows: list[dict]) -> list[dict]:
    """For each paper claim 'A > B': paper gap, our gap (means), pooled std, and whether our
    gap has the paper's sign and exceeds the seed noise (|gap| > pooled std)."""
    by = {r["key"]: r for r in rows}
    out = []
    for a, b, claim in ORDERINGS.get(table, []):
        ra, rb = by.get(a), by.get(b)
        if not ra or not rb:
            continue
        pgap = ra["paper_acc"] - rb["paper_acc"]
        row = {"claim": claim, "a": a, "b": b, "paper_gap": pgap, "ours_gap": None,
               "noise_std": None, "sign_holds": None, "beyond_noise": None,
               "n_seeds": min(ra["n_seeds"], rb["n_seeds"])}
        if ra.get("acc_mean") is not None and rb.get("acc_mean") is not None:
            gap = ra["acc_mean"] - rb["acc_mean"]
            noise = ((ra["acc_std"] ** 2 + rb["acc_std"] ** 2) / 2) ** 0.5
            same = (gap > 0) == (pgap > 0) if pgap else None
            row.update(ours_gap=gap, noise_std=noise, sign_holds=same,
                       beyond_noise=abs(gap) > noise if row["n_seeds"] > 1 else None)
        out.append(row)
    return out


def write_orderings(table: str, rows: list[dict], outdir: str | os.PathLike, preset: str,
                    records_dir: str | os.PathLike) -> dict:
    """The ``orderings`` of ``table`` as Markdown + CSV."""
    _, save_table = _savers()
    what = ("gap = accuracy(a) - accuracy(b) in points; ours: means over seeds of the final-epoch "
            "test accuracy; noise_std = sqrt((std_a^2 + std_b^2)/2) over seeds; beyond_noise: "
            "|gap| > noise_std (needs >= 2 seeds).")
    meta = _rows_meta(f"{PAPER[table]['source']}: which of the paper's orderings hold ({preset})",
                      what, rows, preset, records_dir)
    return save_table(pd.DataFrame(orderings(table, rows)), f"dwr_{table}_orderings_{preset}",
                      outdir, meta, floatfmt=".3g")


def write_speed(rec: dict, outdir: str | os.PathLike, preset: str) -> dict:
    """The speed table (Markdown + CSV) from one speed record."""
    _, save_table = _savers()
    df = pd.DataFrame(speed_rows(rec))
    meta = {"title": "Speed: original vs DWR backbones (one run, interleaved)",
            "what": speed_markdown(rec).split("\n", 2)[2].strip().split("\n\n")[0],
            "preset": preset, "dataset": "none (random inputs; timing only)"}
    return save_table(df, f"dwr_speed_{preset}", outdir, meta, floatfmt=".4g")


def records_summary(records_dir: str | os.PathLike) -> dict:
    """Counts of training and prune records under ``records_dir``."""
    runs, prunes = T.D.load_stage_records(Path(records_dir))
    return {"runs": len(runs), "prune": len(prunes),
            "finished": sum(r.get("status") == "finished" for r in runs)}
