"""Figures of the CPU regime study: learning curves and budget curves, from records only."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import pandas as pd

from analysis.figures import save_figure, style

__all__ = ["fig_learning_curves"]

_LABEL = {"fp": "FP ResNet-20", "bnn": "BNN ResNet-20"}


def fig_learning_curves(curves: pd.DataFrame, budget: pd.DataFrame, outdir, meta: dict,
                        name: str = "learning_curves") -> dict:
    """Validation accuracy per epoch for each schedule length (one panel per precision, the
    regime's recipe), and the budget curve: converged validation accuracy against E."""
    style()
    precs = [p for p in ("fp", "bnn") if p in set(budget["precision"])]
    fig, axes = plt.subplots(1, len(precs) + 1, figsize=(3.3 * (len(precs) + 1), 3.1))
    rows = []
    for ax, prec in zip(axes, precs):
        recipe = budget.loc[budget["precision"] == prec, "recipe"].iloc[0]
        sub = curves[(curves["precision"] == prec) & (curves["recipe"] == recipe)]
        for e, g in sub.groupby("epochs"):
            m = g.groupby("epoch", as_index=False)["val_acc"].mean()
            ax.plot(m["epoch"], m["val_acc"], marker=".", ms=3, label=f"E = {e}")
            rows += [{"panel": prec, "recipe": recipe, "schedule_epochs": e, "epoch": int(a),
                      "val_acc": float(b)} for a, b in zip(m["epoch"], m["val_acc"])]
        ax.set(title=f"{_LABEL[prec]} ({recipe})", xlabel="epoch", ylabel="validation accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(title="cosine schedule", loc="lower right")
    ax = axes[-1]
    for prec in precs:
        b = budget[budget["precision"] == prec]
        ax.plot(b["epochs"], b["converged"], marker="o", label=_LABEL[prec])
        ch = b[b["chosen"]]
        ax.scatter(ch["epochs"], ch["converged"], s=80, facecolors="none", edgecolors="k", zorder=3)
        rows += [{"panel": "budget", "recipe": r.recipe, "schedule_epochs": int(r.epochs),
                  "epoch": int(r.epochs), "val_acc": float(r.converged)} for r in b.itertuples()]
    ax.set(title="budget curve (circle: chosen E)", xlabel="schedule length E (epochs)",
           ylabel="last-5-epoch mean val. acc. (%)")
    ax.legend(loc="lower right")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    paths = save_figure(fig, name, pd.DataFrame(rows), outdir, meta)
    plt.close(fig)
    return paths
