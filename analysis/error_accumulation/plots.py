"""The study's four figures (each PDF + PNG + CSV), drawn from records only."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # headless outside Jupyter
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import save_figure, save_table, style  # noqa: E402

from .tables import (GROUP, METRICS, SHORT, fit_table, layers_frame, mean_ci,  # noqa: E402
                     premise_table, records_frame, trained_accuracy_table)

__all__ = ["make_figures", "fig_init_vs_trained", "write_trained_accuracy"]

_BB_NAMES = {"resnet": "ResNet (Bi-Real units)", "resnet_basic": "ResNet (basic blocks)",
             "vgg": "plain VGG (no shortcuts)"}
# what follows each residual addition (VGG: each BN); hardtanh is bnnlib's CIFAR default
_ACT_TEXT = {"hardtanh": "hardtanh after +", "identity": "nothing after +",
             "rprelu": "RPReLU after +"}


class _Labels(dict):
    """Panel titles for the frames' backbone column ('resnet', 'resnet+identity', ...): the
    backbone and the activation after each residual addition, default included."""

    def __missing__(self, key: str) -> str:
        bb, _, act = key.partition("+")
        act = act or "hardtanh"
        text = _ACT_TEXT.get(act, act)
        return f"{_BB_NAMES[bb]}, {text.replace(' after +', '') if bb == 'vgg' else text}"


_BB_LABEL = _Labels()
ACT_NOTE = ("Residual activation (after each residual addition; VGG: after each BN): hardtanh "
            "unless a label says '+identity' (nothing, as Bi-Real Net) or '+rprelu' (RPReLU, as "
            "ReActNet).")


def _data_label(df) -> str:
    """The data note of the records behind a figure (says when CIFAR-10 is the JPEG copy)."""
    return "; ".join(sorted(set(df["dataset_note"].dropna()))) or "unknown data"


def _scale(df) -> str | None:
    """The training scale of the measured nets ('at initialisation', 'trained 30 epochs ...')."""
    if "scale" not in df:
        return None
    return "; ".join(sorted(set(df["scale"].dropna()))) or None


def _when(epochs) -> str:
    return "at initialisation" if epochs == 0 else f"after {epochs} training epoch(s)"


def _save(fig, name, data, outdir, title, what, df, records, suffix=True):
    epochs = sorted(set(df["trained_epochs"]))
    if suffix and epochs != [0]:  # trained figures never overwrite the at-initialisation ones
        name += "_trained" + "-".join(map(str, epochs))
        title += f" ({_when(epochs[-1])})"
    meta = {"title": title, "what": f"{what} {ACT_NOTE}", "dataset": _data_label(df),
            "records": records, "scale": _scale(df)}  # save_figure stamps Data and Scale below
    paths = save_figure(fig, name, data, outdir, meta)
    plt.close(fig)
    return paths


def _per_layer(lf, metric, by):
    """Seed-mean of a per-layer metric, one row per (by..., d, bin_index)."""
    return (lf.groupby(by + ["d", "bin_index"])[metric].mean().reset_index()
            .rename(columns={metric: f"{metric}_mean"}))


def fig_error_vs_layer(lf, outdir, sel, records):
    """Local residual and drift vs binary-layer index; one curve per depth; row per backbone."""
    cols = [("residual_rel", "local residual mean|e| / mean|a|"),
            ("drift_rel_l2", "drift ||a_bnn - a_real|| / ||a_real||"),
            ("drift_cos", "cos(a_bnn, a_real)")]
    bbs = sorted(lf["backbone"].unique())
    fig, axes = plt.subplots(len(bbs), 3, figsize=(10, 2.8 * len(bbs)), squeeze=False)
    data = []
    for i, bb in enumerate(bbs):
        sub = lf[lf["backbone"] == bb]
        for j, (m, lab) in enumerate(cols):
            t = _per_layer(sub, m, ["backbone"])
            data.append(t.assign(metric=m).rename(columns={f"{m}_mean": "value"}))
            for d, g in t.groupby("d"):
                axes[i, j].plot(g["bin_index"] + 1, g[f"{m}_mean"], marker=".", label=f"d={d}")
            axes[i, j].set(xlabel="binary layer index i", ylabel=lab, title=_BB_LABEL[bb])
        axes[i, 0].legend(fontsize=6, ncol=2)
    fig.suptitle(f"Forward error per layer, {sel}", fontsize=9)
    fig.tight_layout()
    return _save(fig, "erracc_error_vs_layer", pd.concat(data), outdir,
                 "Quantization error per binary layer", "Local residual, drift and cosine "
                 "between the BNN's and its real-valued shadow's layer inputs, seed means.",
                 lf, records)


def fig_grad_vs_layer(lf, outdir, sel, refs, records):
    """Cosine of the BNN's surrogate activation gradient with each reference, per layer."""
    bbs = sorted(lf["backbone"].unique())
    fig, axes = plt.subplots(len(bbs), len(refs), figsize=(3.4 * len(refs), 2.8 * len(bbs)),
                             squeeze=False)
    data = []
    for i, bb in enumerate(bbs):
        for j, ref in enumerate(refs):
            m = f"g_{ref}_total_cos"
            t = _per_layer(lf[lf["backbone"] == bb], m, ["backbone"])
            data.append(t.assign(reference=ref).rename(columns={f"{m}_mean": "cos"}))
            for d, g in t.groupby("d"):
                axes[i, j].plot(g["bin_index"] + 1, g[f"{m}_mean"], marker=".", label=f"d={d}")
            name = "real shadow" if ref == "shadow" else f"tanh({ref[1:]}x) net"
            axes[i, j].set(xlabel="binary layer index i (backprop runs right to left)",
                           ylabel=f"cos(STE grad, {name} grad)", title=_BB_LABEL[bb])
            axes[i, j].axhline(0, color="0.5", lw=0.6)
        axes[i, 0].legend(fontsize=6, ncol=2)
    fig.suptitle(f"Gradient agreement per layer (w.r.t. layer inputs), {sel}", fontsize=9)
    fig.tight_layout()
    return _save(fig, "erracc_grad_cos_vs_layer", pd.concat(data), outdir,
                 "Gradient error per binary layer", "Cosine between the BNN's surrogate gradient "
                 "and the exact gradient of each reference network, seed means.", lf, records)


def fig_accumulated_vs_depth(rf, fits, outdir, sel, records, metrics=tuple(METRICS)):
    """Accumulated error vs depth: seeds as points, best phi(d) and linear fit with bands."""
    ncol = 2
    nrow = -(-len(metrics) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    rows = []
    for j, m in enumerate(metrics):
        ax = axes[j // ncol, j % ncol]
        for k, (key, g) in enumerate(rf.groupby(GROUP)):
            color = f"C{k}"
            lab = f"{key[0]} w={key[1]}"
            ax.scatter(g["d"], g[m], s=8, color=color, alpha=0.6)
            fit = fits.get("|".join(map(str, key)) + "|" + m)
            if fit is None:
                ax.plot([], [], color=color, label=f"{lab} (no fit)")
                continue
            best = fit["best"]
            for form, ls in (("linear", ":"), (best, "-")):
                f = fit["forms"][form]
                ax.plot(f["grid"], f["fit"], ls, color=color,
                        label=f"{lab}: {form}" if ls == "-" else None)
            f = fit["forms"][best]
            banded = f["band_lo"] is not None  # one seed per depth: no band
            lo_band, hi_band = ((f["band_lo"], f["band_hi"]) if banded
                                else ([None] * len(f["grid"]),) * 2)
            if banded:
                ax.fill_between(f["grid"], lo_band, hi_band, color=color, alpha=0.15)
            rows += [dict(zip(GROUP, key), metric=m, form=best, d=x, fit=y, lo=lo, hi=hi)
                     for x, y, lo, hi in zip(f["grid"], f["fit"], lo_band, hi_band)]
        ax.set(xlabel="depth d (binary layers)", ylabel=m, title=SHORT.get(m, m))
        ax.legend(fontsize=5)
    fig.suptitle(f"Accumulated error vs depth, {sel}\n(solid: best phi(d) by leave-one-depth-out"
                 " error, dotted: linear; band: 95% bootstrap over seeds)", fontsize=8)
    fig.tight_layout()
    pts = rf[GROUP + ["d", "seed"] + list(metrics)].assign(kind="point")
    data = pd.concat([pts, pd.DataFrame(rows).assign(kind="fit")], ignore_index=True)
    return _save(fig, "erracc_accumulated_vs_depth", data, outdir,
                 "Accumulated quantization and gradient error vs depth",
                 "Network-level error against the number of binary layers with fitted phi(d).",
                 rf, records)


def fig_binarizers(rf, outdir, sel, records, metrics=("eq13", "drift_head", "eg_first_shadow")):
    """Binarizer comparison: seed mean and 95% bootstrap CI vs depth, one line per binarizer."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.0), squeeze=False)
    rows = []
    for j, m in enumerate(metrics):
        for (bb, z), g in rf.groupby(["backbone", "binarizer"]):
            stats = [(d, *mean_ci(h[m])) for d, h in g.groupby("d")]
            rows += [dict(backbone=bb, binarizer=z, metric=m, d=d, mean=mu, lo=lo, hi=hi)
                     for d, mu, lo, hi in stats]
            t = pd.DataFrame(stats, columns=["d", "mean", "lo", "hi"])
            axes[0, j].errorbar(t["d"], t["mean"], yerr=[t["mean"] - t["lo"], t["hi"] - t["mean"]],
                                marker="o", ms=3, capsize=2, label=f"{bb}: {z}")
        axes[0, j].set(xlabel="depth d (binary layers)", ylabel=m, title=SHORT.get(m, m))
        axes[0, j].legend(fontsize=5)
    fig.suptitle(f"Binarizer comparison, {sel}\n(sign = clipped STE, approx_sign = Bi-Real, "
                 "rsign = ReActNet; mean and 95% bootstrap CI over seeds)", fontsize=8)
    fig.tight_layout()
    return _save(fig, "erracc_binarizers", pd.DataFrame(rows), outdir,
                 "Error accumulation by binarizer", "Seed mean and 95% bootstrap CI per depth.",
                 rf, records)


def fig_init_vs_trained(records, figures_dir, binarizer="approx_sign",
                        metrics=("eq13", "drift_head", "eg_first_shadow", "eg_sum_shadow")):
    """Accumulated error vs depth at initialisation (open, dashed) and after training (filled,
    solid) for every (backbone, width) that has trained records; mean and 95% CI over seeds."""
    style()
    rf = records_frame(records)
    rf = rf[rf["binarizer"] == binarizer]
    trained = rf[rf["trained_epochs"] > 0]
    if trained.empty:
        raise ValueError(f"records: none trained with binarizer {binarizer!r}; allowed: records "
                         "with trained_epochs > 0")
    keys = set(zip(trained["backbone"], trained["width"]))
    rf = rf[[k in keys for k in zip(rf["backbone"], rf["width"])]]
    fig, axes = plt.subplots(2, 2, figsize=(8.4, 6.0), squeeze=False)
    rows = []
    for j, m in enumerate(metrics):
        ax = axes[j // 2, j % 2]
        for k, ((bb, w), g) in enumerate(rf.groupby(["backbone", "width"])):
            for e, h in g.groupby("trained_epochs"):
                st = pd.DataFrame([(d, *mean_ci(x[m])) for d, x in h.groupby("d")],
                                  columns=["d", "mean", "lo", "hi"])
                rows += [dict(backbone=bb, width=w, trained_epochs=e, metric=m, **r)
                         for r in st.to_dict("records")]
                ax.errorbar(st["d"], st["mean"], yerr=[st["mean"] - st["lo"], st["hi"] - st["mean"]],
                            color=f"C{k}", ls="-" if e else "--", marker="o", ms=3, capsize=2,
                            mfc=f"C{k}" if e else "white", label=f"{bb} w={w}, {_when(e)}")
        ax.set(xlabel="depth d (binary layers)", ylabel=m, title=SHORT.get(m, m))
        ax.legend(fontsize=5)
    fig.suptitle(f"Error vs depth at initialisation and after training ({binarizer})", fontsize=9)
    fig.tight_layout()
    return _save(fig, "erracc_init_vs_trained", pd.DataFrame(rows), figures_dir,
                 "Accumulated error vs depth: initialisation vs after training",
                 "Seed means with 95% bootstrap CIs; dashed/open: at initialisation, solid/filled: "
                 "after the short training recorded in each record.", rf, list(rf["config_hash"]),
                 suffix=False)


def write_trained_accuracy(records, figures_dir) -> dict:
    """Table ``erracc_trained_accuracy``: the test accuracy the trained, measured nets reached
    (per depth and residual activation), so each error curve can be read beside what the net
    learned; {} when no record is trained."""
    table = trained_accuracy_table(records)
    if table.empty:
        return {}
    used = [r for r in records if r["config"].get("trained_epochs")]
    rf = records_frame(used)
    return save_table(table, "erracc_trained_accuracy", figures_dir, {
        "title": "Accuracy of the trained nets the error instruments measured",
        "what": "Final-epoch test accuracy (%) per seed and mean, test accuracy at the best "
                f"validation epoch, and that epoch per seed (best/epochs). d = binary layers. {ACT_NOTE}",
        "dataset": _data_label(rf), "scale": _scale(rf), "records": list(rf["config_hash"])})


def make_figures(records, figures_dir, width=None, binarizer="approx_sign", trained_epochs=0,
                 n_boot: int = 1000) -> dict:
    """All figures plus fits (tables + JSON) from ``records``; returns the fit table.

    Per-layer figures show ``width`` (the smallest width measured at ``trained_epochs`` when
    ``width`` is None or was not measured there)."""
    style()
    rf, lf = records_frame(records), layers_frame(records)
    if trained_epochs not in set(rf["trained_epochs"]):
        raise ValueError(f"trained_epochs: got {trained_epochs!r}; allowed: one of "
                         f"{sorted(set(rf['trained_epochs']))}")
    here = rf[rf["trained_epochs"] == trained_epochs]
    if binarizer not in set(here["binarizer"]):
        raise ValueError(f"binarizer: got {binarizer!r}; allowed: one of {sorted(set(here['binarizer']))}")
    if width is None or width not in set(here["width"]):  # trained sub-grids may lack it
        width = int(here["width"].min())
    hashes = list(rf["config_hash"])
    at = rf["trained_epochs"] == trained_epochs
    main = rf[at & (rf["binarizer"] == binarizer)]
    sel = f"width {width}, {binarizer}, {_when(trained_epochs)}"
    lsel = lf[(lf["trained_epochs"] == trained_epochs) & (lf["binarizer"] == binarizer)
              & (lf["width"] == width)]
    table, full = fit_table(rf, n_boot=n_boot)
    refs = ["shadow"] + [c[2:-10] for c in lf.columns if c.startswith("g_k") and c.endswith("_total_cos")]
    fig_error_vs_layer(lsel, figures_dir, sel, hashes)
    fig_grad_vs_layer(lsel, figures_dir, sel, refs, hashes)
    fig_accumulated_vs_depth(main, full, figures_dir, f"{binarizer}, {_when(trained_epochs)}", hashes)
    fig_binarizers(rf[at & (rf["width"] == width)], figures_dir, f"width {width}, "
                   f"{_when(trained_epochs)}", hashes)
    _write_fits(Path(figures_dir), table, full, _data_label(rf), hashes, _scale(rf), rf)
    return table


def _write_fits(outdir: Path, table: pd.DataFrame, full: dict, dataset: str, records,
                scale: str | None = None, rf: pd.DataFrame | None = None) -> None:
    """Fit table and premise verdicts (tables with manifests); full fits with bands (JSON)."""
    meta = {"dataset": dataset, "records": records, "scale": scale, "footnote": False}
    save_table(table, "erracc_fits", outdir, {**meta, "title": "phi(d) fits of accumulated error",
               "what": f"{ACT_NOTE} Per group and metric: linear slope per binary layer with 95% bootstrap "
                       "CI over seeds, best form by leave-one-depth-out RMSE, RMSE of each form."})
    path = outdir / "erracc_fits_bands.json"  # not a manifest: the gallery skips it
    tmp = outdir / f".{path.name}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(full, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    premise = premise_table(table, rf)
    if premise.empty:  # nothing could be fitted (fewer than 3 depths): no verdict to show
        return
    save_table(premise, "erracc_premise", outdir, {
        **meta, "title": "Does the error grow with depth? (Eq. 15: phi'(d) > 0)",
        "what": f"'grows' only when the whole 95% CI of the linear slope is above zero; 'no CI' "
                f"where a depth has one seed only (no spread to resample). seed_slopes: each "
                f"seed's own least-squares slope; seeds_same_sign: how many have the pooled "
                f"slope's sign (with 2-3 seeds the bootstrap CI only spans the seeds). {ACT_NOTE}"})
