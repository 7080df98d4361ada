"""Tables, phi(d) fits and figures, built only from the study's JSON records."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bnnlib.data import describe

from analysis.figures import best_val_epochs
from .fit import fit_phi

__all__ = ["backbone_label", "records_frame", "layers_frame", "fit_table", "premise_table",
           "seed_slopes", "trained_accuracy_table", "METRICS", "SHORT", "GROUP"]

# Network-level metrics fitted against depth: label, and why it is the accumulated quantity.
METRICS = {
    "eq13": "E_Q (Eq. 13): sum over binary layers of mean |a_r - sign(a_r)|",
    "drift_head": "forward drift at the classifier input: ||a_bnn - a_real|| / ||a_real||",
    "eg_first_shadow": "gradient error at the first binary layer: 1 - cos(STE grad, real grad)",
    "eg_sum_shadow": "E_G: sum over binary layers of 1 - cos(STE grad, real grad)",
}
SHORT = {"eq13": "E_Q (Eq. 13), sum of local residuals", "drift_head": "drift at classifier input",
         "eg_first_shadow": "E_G at layer 1: 1 - cos(grad)", "eg_sum_shadow": "E_G summed over layers"}
GROUP = ["backbone", "width", "binarizer", "trained_epochs", "dataset"]




def backbone_label(config: dict) -> str:
    """The backbone column of the frames: the backbone name, plus '+<act>' when the residual
    activation is not the default hardtanh (so every grouping and figure keeps them apart)."""
    act = config.get("act", "hardtanh")
    return config["backbone"] if act == "hardtanh" else f"{config['backbone']}+{act}"


def training_label(config: dict) -> str:
    """How much the measured net was trained: 'at initialisation', or 'trained E epochs on N
    training images' (train_subset) / 'on the whole training split' (val_size held out)."""
    e = config.get("trained_epochs") or 0
    if not e:
        return "at initialisation"
    n = config.get("train_subset")
    on = (f"{n:,} training images" if n else
          f"the whole training split ({config.get('val_size')} validation images held out)")
    return f"trained {e} epoch{'s' if e != 1 else ''} on {on}"


def records_frame(records) -> pd.DataFrame:
    """One row per record: config fields, depth d (= number of binary layers), summary."""
    rows = []
    for r in records:
        c, s = r["config"], r["metrics"]["summary"]
        rows.append({"backbone": backbone_label(c),
                     **{k: c[k] for k in ("blocks", "width", "binarizer", "seed",
                                          "trained_epochs", "dataset")},
                     "d": s["n_binary"], "config_hash": r["config_hash"],
                     "dataset_note": describe(r["dataset"]), "scale": training_label(c), **s})
    if not rows:
        raise ValueError("records: got none; allowed: at least one finished record")
    return pd.DataFrame(rows).sort_values(GROUP + ["d", "seed"]).reset_index(drop=True)


def trained_accuracy_table(records) -> pd.DataFrame:
    """How well the measured nets learned: per trained (backbone, width, binarizer, blocks),
    the final test accuracy (%) of each seed and its mean, the test accuracy at the best
    validation epoch, and that epoch per seed ('best/epochs'), from each record's training run."""
    rows = []
    for r in records:
        c, t = r["config"], (r.get("training") or {}).get("metrics")
        if not c.get("trained_epochs") or not t:
            continue
        rows.append({"backbone": backbone_label(c), **{k: c[k] for k in ("width", "binarizer", "blocks",
                                                                          "trained_epochs", "seed")},
                     "d": r["metrics"]["summary"]["n_binary"], "acc": t["final_test_acc"],
                     "acc_bv": t.get("test_acc_at_best_val"), "best": t.get("best_epoch")})
    cols = ["backbone", "width", "binarizer", "trained_epochs", "blocks", "d", "n_seeds",
            "final_test_acc_mean", "final_test_acc", "test_acc_at_best_val_mean", "best_val_epoch"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows).sort_values(["backbone", "width", "binarizer", "blocks", "seed"])
    out = []
    for key, g in df.groupby(["backbone", "width", "binarizer", "trained_epochs", "blocks", "d"], sort=True):
        out.append({**dict(zip(cols[:6], map(_py, key))), "n_seeds": len(g),
                    "final_test_acc_mean": float(g["acc"].mean()),
                    "final_test_acc": ", ".join(f"{a:.2f}" for a in g["acc"]),
                    "test_acc_at_best_val_mean": float(pd.to_numeric(g["acc_bv"]).mean()),
                    "best_val_epoch": best_val_epochs((b, key[3]) for b in g["best"])})
    return pd.DataFrame(out, columns=cols)


def layers_frame(records) -> pd.DataFrame:
    """One row per (record, binary layer) with the per-layer metrics."""
    rows = []
    for r in records:
        c = r["config"]
        d = r["metrics"]["summary"]["n_binary"]
        for L in r["metrics"]["layers"]:
            if L["binary"]:
                rows.append({**{k: c[k] for k in GROUP + ["seed", "blocks"]},
                             "backbone": backbone_label(c), "d": d,
                             "dataset_note": describe(r["dataset"]), "scale": training_label(c), **L})
    return pd.DataFrame(rows)


def _py(v):
    """numpy scalar -> Python scalar (JSON-ready)."""
    return v.item() if isinstance(v, np.generic) else v


def fit_table(df: pd.DataFrame, metrics=tuple(METRICS), n_boot: int = 1000, seed: int = 0):
    """phi(d) fits per group and metric. Returns (flat DataFrame, {key: full fit dict})."""
    rows, full = [], {}
    for key, g in df.groupby(GROUP, sort=True):
        for m in metrics:
            sub = g[["d", m]].dropna()
            means = sub.groupby("d")[m].mean()
            base = dict(zip(GROUP, map(_py, key)), metric=m, n_points=len(sub), n_depths=sub["d"].nunique(),
                        d_min=int(means.index.min()), d_max=int(means.index.max()),
                        mean_at_d_min=float(means.iloc[0]), mean_at_d_max=float(means.iloc[-1]))
            try:
                fit = fit_phi(sub["d"].to_numpy(), sub[m].to_numpy(), n_boot=n_boot, seed=seed)
            except ValueError as e:
                rows.append({**base, "status": f"not fitted: {e}"})
                continue
            full["|".join(map(str, key)) + "|" + m] = {**base, **fit}
            lin = fit["forms"]["linear"]
            row = {**base, "status": "fitted", "best_form": fit["best"],
                   "slope": lin["params"][1], "slope_lo": lin["param_ci"][1][0],
                   "slope_hi": lin["param_ci"][1][1]}
            for f, v in fit["forms"].items():
                row[f"loo_rmse_{f}"] = None if v is None else v["loo_rmse"]
            rows.append(row)
    return pd.DataFrame(rows), full


def mean_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Mean and bootstrap percentile CI of the mean (over seeds); one value has a mean but no
    CI (NaN bounds, drawn as no error bar), not a zero-width interval."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return (float(v[0]) if v.size else np.nan), np.nan, np.nan
    rng = np.random.default_rng(seed)
    boots = rng.choice(v, size=(n_boot, v.size)).mean(axis=1)
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    return float(v.mean()), *(float(x) for x in np.percentile(boots, q))


def seed_slopes(df: pd.DataFrame, metrics=tuple(METRICS)) -> pd.DataFrame:
    """Per group, metric and seed: the least-squares slope of the metric against depth over that
    seed's own records (seeds with fewer than 2 depths are left out). With few seeds a bootstrap
    interval only spans the seeds; whether each seed on its own has the pooled sign is the
    complementary check."""
    rows = []
    for key, g in df.groupby(GROUP, sort=True):
        for m in (m for m in metrics if m in g.columns):
            for seed, gs in g[["d", "seed", m]].dropna().groupby("seed", sort=True):
                if gs["d"].nunique() >= 2:
                    slope = np.polyfit(gs["d"].to_numpy(float), gs[m].to_numpy(float), 1)[0]
                    rows.append({**dict(zip(GROUP, map(_py, key))), "metric": m,
                                 "seed": int(seed), "slope": float(slope)})
    return pd.DataFrame(rows, columns=GROUP + ["metric", "seed", "slope"])


def premise_table(table: pd.DataFrame, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per group and metric: linear slope per binary layer with its CI and a verdict.

    'grows' when the whole 95% CI of the slope is above 0, 'shrinks' when below, else 'flat';
    'no CI (one seed per depth)' when some depth has a single record (nothing to resample).
    With the records frame ``df``, two more columns: ``seed_slopes`` (each seed's own slope,
    'seed: slope') and ``seeds_same_sign`` ('k/n': seeds whose slope has the pooled slope's sign).
    """
    t = table[table["status"] == "fitted"].copy()
    lo, hi = (pd.to_numeric(t[c]) for c in ("slope_lo", "slope_hi"))
    t["verdict"] = np.where(lo.isna() | hi.isna(), "no CI (one seed per depth)",
                            np.where(lo > 0, "grows", np.where(hi < 0, "shrinks", "flat")))
    cols = GROUP + ["metric", "n_depths", "n_points", "d_min", "d_max", "mean_at_d_min",
                    "mean_at_d_max", "slope", "slope_lo", "slope_hi", "best_form", "verdict"]
    if df is not None:
        per = seed_slopes(df)
        text, agree = [], []
        for _, row in t.iterrows():
            mine = per[(per["metric"] == row["metric"])
                       & np.logical_and.reduce([per[c] == row[c] for c in GROUP])]
            text.append(", ".join(f"{s}: {v:.4g}" for s, v in zip(mine["seed"], mine["slope"])))
            same = int((np.sign(mine["slope"]) == np.sign(row["slope"])).sum())
            agree.append(f"{same}/{len(mine)}" if len(mine) else "")
        t["seed_slopes"], t["seeds_same_sign"] = text, agree
        cols += ["seed_slopes", "seeds_same_sign"]
    return t[cols].reset_index(drop=True)
