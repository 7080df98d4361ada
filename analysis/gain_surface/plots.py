"""Figures and tables of the gain-surface study, built only from run records (via DataFrames
made by ``analysis.gain_surface.study``) and saved with ``analysis.figures``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figures import save_figure, save_table, style

from . import fit as gf
from . import study as gs
from . import tables as gt

import matplotlib.pyplot as plt  # noqa: E402  (after figures picks the backend)
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

__all__ = ["heatmaps", "iso_curves", "surfaces", "save_tables", "report"]

_LABEL = {"fp": "FP (OPs = FLOPs)", "bnn": "BNN (OPs = BOPs/64 + FLOPs)"}


def _log_w_axis(ax, ticks) -> None:
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(np.round(ticks, 2))))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


RAW_VERTEX = "raw vertex (quadratic in ln d)"
DIAGONAL_NOTE = ("surface fits skipped: the grid holds iso-OPs diagonals only (one width per "
                 "depth), so f(w, d) is not identifiable; the optimum comes from the model-free "
                 "quadratic-in-ln-d vertex and the argmax along each diagonal")


def _iso_line(ops: gf.OpsModel, w0: float, d0: int, d_range) -> tuple[np.ndarray, np.ndarray]:
    d = np.linspace(d_range[0], d_range[1], 200)
    return gf.iso_width(d, w0, d0, ops), d


def heatmaps(df: pd.DataFrame, ref_depth: int, iso_refs, ops: dict, outdir, meta: dict):
    """Mean accuracy over (w, d) for FP and BNN, each with its own iso-OPs lines."""
    means = gs.config_means(df)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True)
    d_range = (means["depth"].min(), means["depth"].max())
    for ax, p in zip(axes, gs.PRECISIONS):
        m = means[means["precision"] == p]
        if m.empty:
            ax.set_title(f"{_LABEL[p]}: no runs")
            continue
        sc = ax.scatter(m["width_mult"], m["depth"], c=m["acc"], s=420, marker="s", cmap="viridis")
        for w, d, a in zip(m["width_mult"], m["depth"], m["acc"]):
            ax.annotate(f"{a:.1f}", (w, d), ha="center", va="center", fontsize=6, color="w")
        for w0 in iso_refs if p in ops else ():  # no OPs model on a diagonal-only grid
            ax.plot(*_iso_line(ops[p], w0, ref_depth, d_range), "--", color="0.3", lw=1)
            ax.annotate(f"iso-OPs N[{w0:g}, {ref_depth}]", (w0, ref_depth), fontsize=6,
                        xytext=(4, 8), textcoords="offset points", color="0.3")
        _log_w_axis(ax, m["width_mult"])
        ax.set_xlabel("width multiplier w")
        ax.set_title(_LABEL[p])
        fig.colorbar(sc, ax=ax, label="test accuracy (%)")
    axes[0].set_ylabel("depth d (blocks per stage)")
    axes[0].set_yticks(sorted(set(means["depth"])))
    return save_figure(fig, "gain_surface_heatmaps", means, outdir,
                       {**meta, "title": "Accuracy over width and depth, FP and BNN",
                        "what": "Mean test accuracy over seeds at each (w, d); dashed: iso-OPs "
                                "curves through N[w0, d0], computed within each precision."})


def _band(eq: pd.DataFrame, quantity: str, w0: float, method: str = "fit optimum"):
    r = eq[(eq["quantity"] == quantity) & (eq["method"] == method) & np.isclose(eq["w0"], w0)]
    return None if r.empty else r.iloc[0]


def iso_curves(df: pd.DataFrame, eq: pd.DataFrame, chosen: dict, ref_depth: int, iso_refs,
               ops: dict, outdir, meta: dict):
    """Accuracy along each iso-OPs diagonal with the fitted curve, optimum and its CI band (a
    precision without runs gets a titled empty panel, as in ``heatmaps``); None (nothing written)
    while no diagonal has its reference net N[w0, ref_depth] yet (a partial sweep)."""
    means = gs.config_means(df)
    sl = gs.iso_slices(means, ref_depth, iso_refs)
    if sl.empty:
        print(f"gain_surface_iso_ops: not drawn, no iso-OPs diagonal yet (no reference net "
              f"N[w0, {ref_depth}] among the {len(means)} configs run)")
        return None
    groups, ran = gs.seed_groups(df), set(df["precision"])
    fig, axes = plt.subplots(len(iso_refs), 2, figsize=(9.0, 3.2 * len(iso_refs)), squeeze=False)
    rows = []
    for i, w0 in enumerate(iso_refs):
        for j, p in enumerate(gs.PRECISIONS):
            ax, s = axes[i, j], sl[(sl["precision"] == p) & np.isclose(sl["w0"], w0)]
            if p not in ran:
                ax.set_title(f"{_LABEL[p]}: no runs")
                continue
            ax.errorbar(s["depth"], s["acc"], yerr=s["acc_std"].fillna(0), fmt="o", capsize=3,
                        label="runs (mean ± std over seeds)")
            rows += [{"w0": w0, "precision": p, "depth": d, "width_mult": w, "acc": a, "kind": "data"}
                     for d, w, a in zip(s["depth"], s["width_mult"], s["acc"])]
            if p in chosen:
                fit = gf.fit_surface(chosen[p], *gs.points(groups, p))
                w, d = _iso_line(ops[p], w0, ref_depth, fit.d_range)
                g = fit.predict(w, d)
                ax.plot(d, g, "-", label=f"fit: {chosen[p]}")
                rows += [{"w0": w0, "precision": p, "depth": dd, "width_mult": ww, "acc": gg, "kind": "fit"}
                         for dd, ww, gg in zip(d, w, g)]
            b = _band(eq, "d0 (FP)" if p == "fp" else "d_n (BNN)", w0,
                      "fit optimum" if chosen else RAW_VERTEX)
            if b is not None and np.isfinite(b["estimate"]):
                ax.axvline(b["estimate"], color="k", lw=1, label=f"optimum d = {b['estimate']:.2f}")
                if np.isfinite(b["ci_lo"]):
                    ax.axvspan(b["ci_lo"], b["ci_hi"], color="0.5", alpha=0.2, label="95% bootstrap CI")
            ax.set_xticks(sorted(set(df["depth"])))
            ax.set_title(f"{p.upper()}: iso-OPs through N[{w0:g}, {ref_depth}]")
            ax.set_xlabel("depth d (blocks per stage); width follows the iso-OPs curve")
            ax.set_ylabel("test accuracy (%)")
            ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, "gain_surface_iso_ops", pd.DataFrame(rows), outdir,
                       {**meta, "title": "Accuracy along iso-OPs diagonals",
                        "what": "Accuracy at matched OPs (within each precision) against depth, "
                                "with the selected fit along the same curve, its optimal depth and "
                                "the bootstrap CI over seeds."})


def surfaces(df: pd.DataFrame, chosen: dict, ref_depth: int, iso_refs, ops: dict, outdir, meta: dict):
    """Contours of the selected fitted surface for FP and BNN, data points and iso-OPs lines."""
    groups = gs.seed_groups(df)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6), sharey=True)
    rows = []
    for ax, p in zip(axes, gs.PRECISIONS):
        if p not in chosen:
            ax.set_title(f"{_LABEL[p]}: too few configs to fit")
            continue
        fit = gf.fit_surface(chosen[p], *gs.points(groups, p))
        W, D = np.meshgrid(np.geomspace(*fit.w_range, 60), np.linspace(*fit.d_range, 60))
        G = fit.predict(W, D)
        cs = ax.contourf(W, D, G, levels=14, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="fitted accuracy (%)")
        m = gs.config_means(df)
        m = m[m["precision"] == p]
        ax.scatter(m["width_mult"], m["depth"], c="w", edgecolors="k", s=18, zorder=3)
        for w0 in iso_refs:
            w, d = _iso_line(ops[p], w0, ref_depth, fit.d_range)
            ax.plot(w, d, "--", color="w", lw=1)
            o = gf.optimal_depth(fit, w0, ref_depth, fit.d_range, ops[p])
            ax.plot(o["w_opt"], o["d_opt"], "*", color="r", ms=10, zorder=4)
        _log_w_axis(ax, m["width_mult"])
        ax.set_xlim(*fit.w_range)
        ax.set_xlabel("width multiplier w")
        ax.set_title(f"{p.upper()}: {chosen[p]} (train RMSE {fit.rmse:.2f})")
        rows += [{"precision": p, "family": chosen[p], "width_mult": w, "depth": d, "acc_fit": g}
                 for w, d, g in zip(W.ravel(), D.ravel(), G.ravel())]
    axes[0].set_ylabel("depth d (blocks per stage)")
    axes[0].set_yticks(sorted(set(df["depth"])))
    return save_figure(fig, "gain_surface_fits", pd.DataFrame(rows), outdir,
                       {**meta, "title": "Fitted gain surfaces G = f(w, d) and G_b^t = f_b - g_L",
                        "what": "Family chosen per precision by leave-one-config-out error; dots: "
                                "configs run; dashed: iso-OPs curves; star: optimum on each."})


def optimum_over_training(curves: pd.DataFrame, fractions=(1 / 3, 2 / 3, 1.0)) -> pd.DataFrame:
    """Per precision and schedule, the depth with the best mean validation accuracy (over
    seeds) at fractions of the schedule, and the accuracy gap to the runner-up: does the
    optimum along the diagonal still move late in training? Intermediate epochs of a cosine
    schedule are not complete schedules, so this shows a trend, not a budget curve."""
    rows = []
    for (p, E), g in curves.groupby(["precision", "epochs"]):
        m = g.groupby(["depth", "epoch"])["val_acc"].mean().unstack("depth")
        n = g.groupby("depth")["seed"].nunique()
        for e in sorted({max(1, int(round(f * E))) for f in fractions}):  # short schedules: once each
            if e not in m.index:
                continue
            acc = m.loc[e].dropna().sort_values(ascending=False)
            rows.append({"precision": p, "schedule_epochs": int(E), "epoch": e,
                         "best_depth": int(acc.index[0]), "best_val": float(acc.iloc[0]),
                         "runner_up_depth": int(acc.index[1]) if len(acc) > 1 else None,
                         "gap_to_runner_up": float(acc.iloc[0] - acc.iloc[1]) if len(acc) > 1 else None,
                         "depths": len(acc), "min_seeds": int(n.min())})
    cols = ["precision", "schedule_epochs", "epoch", "best_depth", "best_val", "runner_up_depth",
            "gap_to_runner_up", "depths", "min_seeds"]
    return pd.DataFrame(rows, columns=cols)


def learning_curves(curves: pd.DataFrame, outdir, meta: dict) -> dict:
    """Validation accuracy per epoch along the diagonal (one line per depth, mean over seeds),
    FP and BNN side by side, and the table ``optimum_over_training``. Nothing is written when
    the runs had no validation split."""
    if curves.empty:
        return {}
    style()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    depths = sorted(set(curves["depth"]))
    cmap = plt.get_cmap("viridis")
    rows = []
    for ax, p in zip(axes, gs.PRECISIONS):
        c = curves[curves["precision"] == p]
        for i, d in enumerate(depths):
            g = c[c["depth"] == d]
            if g.empty:
                continue
            m = g.groupby("epoch")["val_acc"].agg(["mean", "min", "max", "size"]).reset_index()
            w = float(g["width_mult"].iloc[0])
            col = cmap(i / max(1, len(depths) - 1))
            ax.plot(m["epoch"], m["mean"], "-", color=col, lw=1.2,
                    label=f"d={d}, w={w:.2f} (n={int(m['size'].max())})")
            if int(m["size"].max()) > 1:
                ax.fill_between(m["epoch"], m["min"], m["max"], color=col, alpha=0.15, lw=0)
            rows += [{"precision": p, "depth": d, "width_mult": w, "epoch": int(e), "val_mean": a,
                      "val_min": lo, "val_max": hi, "n_seeds": int(k)}
                     for e, a, lo, hi, k in m[["epoch", "mean", "min", "max", "size"]].itertuples(index=False)]
        ax.set_title(f"{_LABEL[p]}: iso-OPs diagonal" if not c.empty else f"{_LABEL[p]}: no runs yet")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)")
        if not c.empty:
            ax.legend(fontsize=6, title="depth, width (seeds)", title_fontsize=6)
    fig.tight_layout()
    out = save_figure(fig, "gain_surface_curves", pd.DataFrame(rows), outdir,
                      {**meta, "title": "Learning curves along the iso-OPs diagonal",
                       "what": "Validation accuracy per epoch of each depth on the diagonal (mean "
                               "over seeds; band: min-max), in one cosine schedule: whether the "
                               "ranking of depths is still changing when training ends."})
    tab = optimum_over_training(curves)
    save_table(tab, "gain_surface_optimum_over_training", outdir,
               {**meta, "title": "Best depth on the diagonal during training (validation)",
                "what": "Depth with the best mean validation accuracy at a third, two thirds and "
                        "the end of the schedule, and its lead over the runner-up (points). A "
                        "best depth that changes late means the schedule is too short to rank "
                        "depths; intermediate epochs of a cosine schedule are not complete "
                        "schedules."})
    plt.close(fig)
    return {"figure": out, "table": tab}


def save_tables(fits: pd.DataFrame, eq: pd.DataFrame, props: pd.DataFrame, outdir, meta: dict) -> dict:
    """Equilibrium (d0, d_n, ratio, CIs), fit selection and property tables: Markdown + CSV."""
    out = {}
    out["eq"] = save_table(eq, "gain_surface_equilibrium", outdir,
                           {**meta, "title": "Equilibrium depth d0 (FP), d_n (BNN) and d_n/d0",
                            "what": "Optimal depth (blocks per stage) at matched OPs through "
                                    "N[w0, d_ref] of each precision; percentile CIs from resampling "
                                    "seeds within each config (empty, n_boot_ok 0, with one seed per "
                                    "config: nothing to resample); n_boot_ok draws gave a value (the "
                                    "balance depth has none when the marginal gains never cross "
                                    "in the sampled range). at_edge: the estimate sits on the end "
                                    "of the sampled depths (for a shallow-end vertex, of its "
                                    "window), so it is only a bound. 'raw vertex, shallowest k "
                                    "depths' (slices with more than k depths): the same quadratic "
                                    "on the k shallowest depths only; it shows whether an interior "
                                    "vertex is carried by the deep end of the slice."})
    out["fits"] = save_table(fits, "gain_surface_fit_selection", outdir,
                             {**meta, "title": "Surface families: held-out error",
                              "what": "Leave-one-config-out RMSE (accuracy points) per family; the "
                                      "lowest is selected."})
    out["props"] = save_table(props, "gain_surface_properties", outdir,
                              {**meta, "title": "Properties a)-d) of Sec. 3.3, measured",
                               "what": "Share of cases where each property holds, from config "
                                       "means (model-free) and from the selected fits."})
    return out


def report(df: pd.DataFrame, ref_depth: int, iso_refs, outdir, meta: dict, n_boot: int = 200,
           seed: int = 0, ops: dict | None = None) -> dict:
    """Every table and figure of the study from a runs frame; returns the tables."""
    style()
    if gs.diagonal_only(df):  # model-free estimates only: f(w, d) is not identifiable
        models, chosen = dict(ops or {}), {}
        fits = pd.DataFrame({"note": [DIAGONAL_NOTE]})
    else:
        models = gt.ops_models(df, ops)
        fits, chosen = gt.fit_table(df)
    eq = gt.equilibrium_table(df, ref_depth, iso_refs, n_boot=n_boot, seed=seed, ops=models,
                              chosen=chosen)
    if not chosen:  # keep only the model-free rows (the fit rows would all be empty)
        eq = eq[~eq["method"].str.startswith("fit")].reset_index(drop=True)
    props = (gt.properties_table(df, ref_depth, iso_refs, ops=models, chosen=chosen) if chosen
             else pd.DataFrame())
    save_tables(fits, eq, props if not props.empty else pd.DataFrame({"note": ["too few configs"]}),
                outdir, meta)
    heatmaps(df, ref_depth, iso_refs, models, outdir, meta)
    iso_curves(df, eq, chosen, ref_depth, iso_refs, models, outdir, meta)
    if chosen:
        surfaces(df, chosen, ref_depth, iso_refs, models, outdir, meta)
    plt.close("all")
    return {"fits": fits, "equilibrium": eq, "properties": props, "chosen": chosen}
