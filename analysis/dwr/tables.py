"""Tables of the DWR study: rows from records only (``build_table``), Markdown + CSV tables,
the paper's orderings, the speed table.

Everything here is built from records (``build_table`` rows, the speed record) and written
with ``analysis.figures.save_table`` (deterministic bytes, manifests);
``notebooks/dwr_tables.ipynb`` only calls these functions.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path

import pandas as pd

from bnnlib import data as bdata
from bnnlib.complexity import count

from .paper import PAPER, paper_rows
from .pipeline import load_stage_records, spec_of
from .speed import speed_markdown, speed_rows
from .study import _PLANS, _check_table, find_record, jobs, record_index

__all__ = ["resolve_dataset_name", "build_table", "table_frame", "write_table", "write_speed",
           "TABLE_COLUMNS", "ORDERINGS", "orderings", "welch_ci", "write_orderings", "records_summary"]

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
                 "acc_std", "n_seeds", "per_seed", "acc_at_best_val_mean", "best_val_epoch", "ops", "params",
                 "acts")


def _mean_std(v):
    v = [x for x in v if x is not None]
    if not v:
        return None, None
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else None)  # one seed: no spread


def _widths_str(spec) -> str:
    return "/".join(str(w) for w in spec.widths) + (f"+a{spec.align_width}" if spec.align_width
                                                   else "")


def build_table(table: str, preset: dict, records_dir: str | Path) -> list[dict]:
    """Rows of ``table``: paper number, ours (mean, std, n over seeds), complexity."""
    _check_table(table)
    plan, by_key, index = _PLANS[table](preset), {}, record_index(records_dir)
    for job in jobs(table, preset):
        rec = find_record(job, preset, index)
        by_key.setdefault(job["key"], []).append(rec)
    rows = []
    for pr in paper_rows(table):
        recs = [r for r in by_key.get(pr["key"], []) if r and r.get("status") == "finished"]
        row = {**{k: pr[k] for k in ("table", "key", "backbone", "method", "reshaping", "model",
                                      "bits")}, "paper_acc": pr["acc"],
               "reproduced": pr["key"] in plan, "row_id": plan.get(pr["key"], (None,))[0]}
        rows.append(_fill(row, recs, plan.get(pr["key"]), preset.get("resolution") or 32))
    for key in plan:  # rows we add (authors' published widths): paper number = their DWR row's
        if key in {r["key"] for r in rows}:
            continue
        recs = [r for r in by_key.get(key, []) if r and r.get("status") == "finished"]
        bkey = key.replace("dwr_authors", "dwr")
        base = next(r for r in rows if r["key"] in (bkey, "original_plus1"))
        row = {**{k: base[k] for k in ("table", "backbone", "bits", "paper_acc")}, "key": key,
               "method": "None", "reshaping": "DWR (authors' published widths)",
               "model": plan[key][1]["label"], "reproduced": True, "row_id": plan[key][0]}
        rows.insert(rows.index(base) + 1, _fill(row, recs, plan[key], preset.get("resolution") or 32))
    return rows


def _fill(row: dict, recs: list[dict], plan_entry, resolution: int = 32) -> dict:
    from analysis.figures import best_val_epochs  # lazy, as in write_tables
    recs = sorted(recs, key=lambda r: r["seed"])  # every per-seed list below in seed order
    accs = [r["metrics"]["final_test_acc"] for r in recs]
    bval = [r["metrics"].get("test_acc_at_best_val") for r in recs]
    m, s = _mean_std(accs)
    mb, _ = _mean_std(bval)
    row.update(acc_mean=m, acc_std=s, n_seeds=len(recs), acc_at_best_val_mean=mb,
               best_val_epoch=best_val_epochs((r["metrics"].get("best_epoch"), r["config"]["epochs"])
                                              for r in recs),
               seeds=[r["seed"] for r in recs],
               seed_accs={r["seed"]: a for r, a in zip(recs, accs)},
               per_seed="; ".join(f"{r['seed']}: {a:.2f}" for r, a in zip(recs, accs)) or None,
               records=[f"runs/{r['config_hash']}" for r in recs] +
               [f"prune/{r['_prune']['prune_hash']}.json" for r in recs if r.get("_prune")])
    specs = [spec_of(r) for r in recs]
    if not specs and plan_entry is not None and plan_entry[1]["kind"] == "train":
        sp = plan_entry[1]["spec"]  # not trained yet: counted at the input the runs will see
        specs = [sp if resolution == 32 else sp.replace(input_size=resolution)]
    if specs:
        tots = [count(sp).totals for sp in specs]
        for k in ("ops", "flops", "bops", "params", "acts"):
            row[k] = statistics.fmean(t[k] for t in tots)
        row["widths"] = "; ".join(dict.fromkeys(_widths_str(sp) for sp in specs))  # seed order
        row["depths"] = "/".join(str(d) for d in specs[0].depths)
    d = recs[0]["dataset"] if recs else {}
    row["dataset_note"] = bdata.describe(d) if d else None
    row["dataset_short"] = bdata.describe(d, short=True) if d else None
    from analysis.figures import scale_label  # lazy: matplotlib only where tables are written
    row["scale"] = scale_label(recs)
    return row


def _savers():
    from analysis.figures import save_figure, save_table
    return save_figure, save_table


def resolve_dataset_name(dataset: str, data_root: str | None = None, records_dir: str | None = None) -> str:
    """'auto' -> see ``bnnlib.data.choose_dataset`` (data found, or CIFAR-10 records present)."""
    return bdata.choose_dataset(dataset, data_root, records_dir)


def table_frame(rows: list[dict]) -> pd.DataFrame:
    """The columns of a DWR table as a DataFrame (one row per paper row or added row)."""
    df = pd.DataFrame([{c: r.get(c) for c in TABLE_COLUMNS} for r in rows])
    df["acc_std"] = pd.to_numeric(df["acc_std"])  # one seed: no spread, an empty cell
    ours = []
    for r in rows:
        if not r["reproduced"]:
            ours.append("not run")
        elif r["acc_mean"] is None:
            ours.append("missing")
        else:
            ours.append(f"{r['acc_mean']:.2f} ± {r['acc_std']:.2f}" if r["acc_std"] is not None
                        else f"{r['acc_mean']:.2f} (1 seed)")
    df.insert(df.columns.get_loc("acc_mean"), "ours", ours)
    return df


def _dataset_label(rows, key: str = "dataset_note") -> str | None:
    notes = sorted({r[key] for r in rows if r.get(key)})
    return "; ".join(notes) or None


def _record_ids(rows, records_dir) -> list[str]:
    return [f"{Path(records_dir).as_posix()}/{x}" for r in rows for x in r.get("records", [])]


def _scale_label(rows) -> str | None:
    return "; ".join(sorted({r["scale"] for r in rows if r.get("scale")})) or None


def _rows_meta(title, what, rows, preset, records_dir) -> dict:
    """Manifest fields of a table built from ``rows`` (dataset note, scale and record ids)."""
    return {"title": title, "what": what, "preset": preset, "dataset": _dataset_label(rows),
            "scale": _scale_label(rows), "records": _record_ids(rows, records_dir)}


def write_table(table: str, rows: list[dict], outdir: str | os.PathLike, preset: str,
                records_dir: str | os.PathLike) -> dict:
    """NAME.md + NAME.csv (+ manifest) for ``table``; returns the written paths."""
    _, save_table = _savers()
    what = ("Paper: accuracy as printed (best test epoch, official CIFAR-10). Ours: final-epoch "
            "test accuracy, mean ± std over seeds (n_seeds), `acc_at_best_val_mean` = test "
            "accuracy at the best validation epoch, `best_val_epoch` = that epoch of each seed "
            "out of the run's epochs (near the end: validation accuracy still rising); OPs = BOPs/64 + FLOPs, params and "
            "activations from bnnlib.complexity (DWR rows: mean over the seeds' pruned specs, "
            f"widths of each listed in seed order). Preset `{preset}`; records in `{records_dir}`.")
    meta = _rows_meta(f"{PAPER[table]['source']}: {PAPER[table]['caption']} — paper vs ours",
                      what, rows, preset, records_dir)
    return save_table(table_frame(rows), f"dwr_{table}", outdir, meta, floatfmt=".4g")


def orderings(table: str, rows: list[dict]) -> list[dict]:
    """For each paper claim 'A > B': paper gap, our gap (means), pooled std, whether our gap
    has the paper's sign, and a Welch 95% interval of the gap over seeds (``welch_ci``):
    ``separated`` is True when it excludes 0, i.e. the two rows are told apart by their seeds."""
    by = {r["key"]: r for r in rows}
    out = []
    for a, b, claim in ORDERINGS.get(table, []):
        ra, rb = by.get(a), by.get(b)
        if not ra or not rb:
            continue
        pgap = ra["paper_acc"] - rb["paper_acc"]
        row = {"claim": claim, "a": a, "b": b, "paper_gap": pgap, "ours_gap": None,
               "noise_std": None, "sign_holds": None, "ci95_lo": None, "ci95_hi": None,
               "separated": None, "n_seeds": min(ra["n_seeds"], rb["n_seeds"])}
        # the same seed in both rows: its own gap, and how many such gaps have the paper's sign
        sa, sb = ra.get("seed_accs") or {}, rb.get("seed_accs") or {}
        both = sorted(set(sa) & set(sb))
        if both:
            gaps = [sa[sd] - sb[sd] for sd in both]
            row["seed_gaps"] = "; ".join(f"{sd}: {g:+.2f}" for sd, g in zip(both, gaps))
            if pgap:
                row["seeds_same_sign"] = f"{sum((g > 0) == (pgap > 0) for g in gaps)}/{len(gaps)}"
        if ra.get("acc_mean") is not None and rb.get("acc_mean") is not None:
            gap = ra["acc_mean"] - rb["acc_mean"]
            noise = (((ra["acc_std"] ** 2 + rb["acc_std"] ** 2) / 2) ** 0.5
                     if ra["acc_std"] is not None and rb["acc_std"] is not None else None)
            same = (gap > 0) == (pgap > 0) if pgap else None
            row.update(ours_gap=gap, noise_std=noise, sign_holds=same)
            if noise is not None:  # both rows have a spread, i.e. >= 2 seeds each
                lo, hi = welch_ci(ra["acc_mean"], ra["acc_std"], ra["n_seeds"],
                                  rb["acc_mean"], rb["acc_std"], rb["n_seeds"])
                row.update(ci95_lo=lo, ci95_hi=hi, separated=bool(lo > 0 or hi < 0))
        out.append(row)
    return out


def welch_ci(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int,
             level: float = 0.95) -> tuple[float, float]:
    """Welch's ``level`` interval of mean_a - mean_b from per-seed sample stds (n >= 2 each):
    t quantile at the Welch-Satterthwaite degrees of freedom. With 2 seeds per row the t
    quantile is 4.3-12.7 (2.8-4.3 with 3), so only large gaps are separated."""
    from scipy import stats
    if n_a < 2 or n_b < 2:
        raise ValueError(f"n_seeds: got {n_a} and {n_b}; allowed: >= 2 in both rows")
    va, vb = std_a ** 2 / n_a, std_b ** 2 / n_b
    gap, se = mean_a - mean_b, (va + vb) ** 0.5
    if se == 0:
        return gap, gap
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return gap - half, gap + half


def write_orderings(table: str, rows: list[dict], outdir: str | os.PathLike, preset: str,
                    records_dir: str | os.PathLike) -> dict:
    """The ``orderings`` of ``table`` as Markdown + CSV."""
    _, save_table = _savers()
    what = ("gap = accuracy(a) - accuracy(b) in points; ours: means over seeds of the final-epoch "
            "test accuracy; noise_std = sqrt((std_a^2 + std_b^2)/2) over seeds; ci95_lo/hi: Welch 95% "
            "interval of the gap (t quantile at the Welch-Satterthwaite df; needs >= 2 seeds in "
            "both rows); separated: the interval excludes 0; seed_gaps: the gap within each seed "
            "that both rows have (different nets, same seed); seeds_same_sign: how many of those "
            "have the paper's sign.")
    meta = _rows_meta(f"{PAPER[table]['source']}: which of the paper's orderings hold ({preset})",
                      what, rows, preset, records_dir)
    df = pd.DataFrame(orderings(table, rows))
    if "noise_std" in df:
        for c in ("noise_std", "ci95_lo", "ci95_hi"):  # one seed: no spread, an empty cell
            df[c] = pd.to_numeric(df[c])
    return save_table(df, f"dwr_{table}_orderings",
                      outdir, meta, floatfmt=".3g")


def write_speed(rec: dict, outdir: str | os.PathLike, preset: str) -> dict:
    """The speed table (Markdown + CSV) from one speed record."""
    _, save_table = _savers()
    df = pd.DataFrame(speed_rows(rec))
    meta = {"title": "Speed: original vs DWR backbones (one run, interleaved)",
            "what": speed_markdown(rec).split("\n", 2)[2].strip().split("\n\n")[0],
            "preset": preset, "dataset": "none (random inputs; timing only)"}
    return save_table(df, "dwr_speed", outdir, meta, floatfmt=".4g")


def records_summary(records_dir: str | os.PathLike) -> dict:
    """Counts of training and prune records under ``records_dir``."""
    runs, prunes = load_stage_records(Path(records_dir))
    return {"runs": len(runs), "prune": len(prunes),
            "finished": sum(r.get("status") == "finished" for r in runs)}
