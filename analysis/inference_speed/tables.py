"""Tables of the inference-speed study, all computed from its records.

- ``latency_table``: per (backbone, net, threads) min / median / IQR of each engine, the BNN
  over FP ratios, OPs and activations.
- ``dwr_vs_original``: per (backbone, threads, engine) the latency ratio of DWR (and of the
  naive reshape) to the original, from the round-paired medians: each round ran every net
  back to back, so the ratio of a round's medians is one paired observation. Reported: the
  median of those ratios, their range, how many rounds the reshaped net was faster, a
  two-sided sign-test p-value, and a verdict ('faster' / 'slower' when p < 0.05, else
  'within noise').
- ``breakdown_table``: per-category times from the performance counters.
- ``correlations``: latency against OPs and against activations across all nets, per engine
  and thread setting (Pearson on log-log, Spearman on ranks).
- ``published_comparison``: Bi-Real-18 here against LCE / dabnn on a Pixel 1.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bnnlib.deploy.check import CATEGORIES

from .paper import HARDWARE, PUBLISHED
from .study import ENGINES

__all__ = ["latency_table", "dwr_vs_original", "breakdown_table", "correlations",
           "published_comparison", "verdicts", "records_frame", "P_VALUE"]

P_VALUE = 0.05
_ORDER = {"original": 0, "naive": 1, "dwr": 2}


def _sort(df: pd.DataFrame) -> pd.DataFrame:
    from .study import BACKBONES
    key = df.assign(_b=df["backbone"].map({b: i for i, b in enumerate(BACKBONES)}),
                    _k=df["kind"].map(_ORDER) if "kind" in df else 0)
    cols = ["_b", "threads_label", "_k"] if "kind" in df else ["_b", "threads_label"]
    return key.sort_values(cols).drop(columns=["_b", "_k"]).reset_index(drop=True)


def records_frame(recs: list[dict]) -> pd.DataFrame:
    """One row per (record, engine): the latency summary with the net's complexity."""
    rows = []
    for r in recs:
        for eng in ENGINES:
            lat = r["latency_ms"][eng]
            ops = r["complexity"]["ops"] if eng == "bnn_ov" else r["complexity"]["fp_ops"]
            rows.append({"backbone": r["backbone"], "kind": r["kind"], "model": r["model"],
                         "threads_label": r["threads_label"], "threads": r["threads_used"], "engine": eng,
                         "min_ms": lat["min_ms"], "median_ms": lat["median_ms"], "p25_ms": lat["p25_ms"],
                         "p75_ms": lat["p75_ms"], "ops": ops, "acts": r["complexity"]["acts"],
                         "input_size": r["input_shape"][-1]})
    return pd.DataFrame(rows)


def latency_table(recs: list[dict]) -> pd.DataFrame:
    """Wide latency table: one row per (backbone, net, threads)."""
    rows = []
    for r in recs:
        lat = r["latency_ms"]
        row = {"backbone": r["backbone"], "kind": r["kind"], "model": r["model"],
               "threads_label": r["threads_label"], "threads": r["threads_used"]}
        for eng in ENGINES:
            row[f"{eng}_min_ms"] = lat[eng]["min_ms"]
            row[f"{eng}_median_ms"] = lat[eng]["median_ms"]
            row[f"{eng}_iqr_ms"] = lat[eng]["p75_ms"] - lat[eng]["p25_ms"]
        row.update(bnn_over_fp_ov=r["bnn_over_fp_ov"], bnn_over_fp_torch=r["bnn_over_fp_torch"],
                   ops_1e6=r["complexity"]["ops"] / 1e6, acts_1e3=r["complexity"]["acts"] / 1e3,
                   channel_padded=len(r["channel_padded"]), load_before=r["loadavg_before"][0])
        rows.append(row)
    return _sort(pd.DataFrame(rows))


def _sign_p(k: int, n: int) -> float:
    """Two-sided exact sign test: k of n paired rounds in one direction."""
    if n == 0:
        return float("nan")
    return float(min(1.0, 2 * stats.binom.cdf(min(k, n - k), n, 0.5)))


def dwr_vs_original(recs: list[dict], engines=ENGINES) -> pd.DataFrame:
    """Naive and DWR latency relative to the original, round-paired (see module doc)."""
    by = {(r["backbone"], r["threads_label"], r["kind"]): r for r in recs}
    rows = []
    for (b, t, kind), r in sorted(by.items()):
        if kind == "original" or (b, t, "original") not in by:
            continue
        o = by[(b, t, "original")]
        paired = r["protocol"].get("loop_id") == o["protocol"].get("loop_id") is not None
        for eng in engines:
            a = np.asarray(r["latency_ms"][eng]["round_medians_ms"])
            z = np.asarray(o["latency_ms"][eng]["round_medians_ms"])
            if paired and len(a) == len(z):
                ratio = a / z
            else:  # not timed in one loop: no pairing, compare medians only
                ratio = np.asarray([r["latency_ms"][eng]["median_ms"] / o["latency_ms"][eng]["median_ms"]])
            faster = int((ratio < 1).sum())
            n = len(ratio) if paired else 0
            p = _sign_p(faster, n)
            verdict = ("within noise" if not (p < P_VALUE) else
                       "faster" if faster > n / 2 else "slower")
            rows.append({"backbone": b, "threads_label": t, "kind": kind, "engine": eng,
                         "ratio_of_medians": r["latency_ms"][eng]["median_ms"] / o["latency_ms"][eng]["median_ms"],
                         "paired_ratio_median": float(np.median(ratio)), "paired_ratio_min": float(ratio.min()),
                         "paired_ratio_max": float(ratio.max()), "rounds_faster": faster, "rounds": n,
                         "sign_test_p": p, "verdict": verdict,
                         "ops_ratio": r["complexity"]["ops" if eng == "bnn_ov" else "fp_ops"]
                         / o["complexity"]["ops" if eng == "bnn_ov" else "fp_ops"],
                         "acts_ratio": r["complexity"]["acts"] / o["complexity"]["acts"]})
    return _sort(pd.DataFrame(rows))


def verdicts(recs: list[dict]) -> pd.DataFrame:
    """The DWR verdict per backbone on the binary kernels (one line each, both thread settings)."""
    d = dwr_vs_original(recs, engines=("bnn_ov",))
    d = d[d["kind"] == "dwr"]
    rows = []
    for b, g in d.groupby("backbone", sort=False):
        parts = [f"threads={r.threads_label}: {r.verdict} ({(r.paired_ratio_median - 1) * 100:+.1f}%, "
                 f"rounds faster {r.rounds_faster}/{r.rounds}, p={r.sign_test_p:.3g})" for r in g.itertuples()]
        rows.append({"backbone": b, "ops_ratio": g["ops_ratio"].iloc[0], "acts_ratio": g["acts_ratio"].iloc[0],
                     "verdict": "; ".join(parts)})
    return pd.DataFrame(rows)


def breakdown_table(recs: list[dict], engine: str = "bnn_ov") -> pd.DataFrame:
    """Per-category time (us) and share of the total: each node's min over the profiled runs
    (its uncontended cost; see ``bnnlib.deploy.check.profile``), summed by category."""
    rows = []
    for r in recs:
        p = r["profile"].get(engine)
        if not p:
            continue
        cats = p.get("by_category_min_us", p["by_category_us"])
        total = p.get("total_min_us", p["total_us"])
        row = {"backbone": r["backbone"], "kind": r["kind"], "model": r["model"],
               "threads_label": r["threads_label"], "engine": engine, "total_us": total,
               "total_median_us": p["total_us"]}
        for c in CATEGORIES:
            row[f"{c}_us"] = cats.get(c, 0.0)
        for c in CATEGORIES:
            row[f"{c}_share"] = row[f"{c}_us"] / total if total else math.nan
        rows.append(row)
    return _sort(pd.DataFrame(rows))


def _corr(x, y) -> tuple[float, float, float]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return math.nan, math.nan, math.nan
    pr = stats.pearsonr(np.log(x), np.log(y))
    sr = stats.spearmanr(x, y)
    return float(pr[0]), float(sr[0]), float(sr[1])


def correlations(recs: list[dict]) -> pd.DataFrame:
    """Latency (median) against OPs and against activations, two ways.

    ``across nets``: every net measured (sizes span two orders of magnitude, so this mostly
    says that bigger nets are slower). ``within backbone``: each reshaped net's latency ratio
    to its original against its OPs ratio or activations ratio, which is the paper's
    question (does a reshape that cuts activations at equal OPs cut latency?)."""
    df = records_frame(recs)
    rows = []
    for (eng, t), g in df.groupby(["engine", "threads_label"], sort=True):
        orig = g[g["kind"] == "original"].set_index("backbone")
        rel = g[g["kind"] != "original"].copy()
        rel = rel[rel["backbone"].isin(orig.index)]
        for what in ("ops", "acts"):
            pear, spear, p = _corr(g[what], g["median_ms"])
            rows.append({"scope": "across nets", "engine": eng, "threads_label": t, "against": what,
                         "n": len(g), "pearson_log": pear, "spearman": spear, "spearman_p": p})
        for what in ("ops", "acts"):
            x = rel[what].to_numpy() / orig.loc[rel["backbone"], what].to_numpy()
            y = rel["median_ms"].to_numpy() / orig.loc[rel["backbone"], "median_ms"].to_numpy()
            pear, spear, p = _corr(x, y)
            rows.append({"scope": "within backbone (ratios to original)", "engine": eng, "threads_label": t,
                         "against": what, "n": len(rel), "pearson_log": pear, "spearman": spear,
                         "spearman_p": p})
    return pd.DataFrame(rows)


def published_comparison(recs: list[dict]) -> pd.DataFrame:
    """Our Bi-Real-18 (original, batch 1) next to the published phone numbers."""
    rows = []
    for r in recs:
        if r["backbone"] == "resnet18_imagenet" and r["kind"] == "original":
            m = r["machine"]
            rows.append({"engine": "OpenVINO BinaryConvolution (this study)", "model": "Bi-Real-18 (bnnlib)",
                         "device": f"{m['cpu_model']} ({', '.join(m['isa_flags'])}), shared VM",
                         "threads": r["threads_used"], "latency_ms": r["latency_ms"]["bnn_ov"]["median_ms"],
                         "min_ms": r["latency_ms"]["bnn_ov"]["min_ms"],
                         "source": "this study, kernel "
                                   + ",".join(r["kernels"]["bnn_ov"].get("BinaryConvolution", []))})
    for p in PUBLISHED:
        rows.append({**p, "device": f"{p['device']}: {HARDWARE.get(p['device'], '')}", "min_ms": math.nan,
                     "threads": p["threads"] if p["threads"] is not None else math.nan})
    return pd.DataFrame(rows)[["engine", "model", "device", "threads", "latency_ms", "min_ms", "source"]]
