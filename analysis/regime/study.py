"""The CPU proxy regime (issue 12): which epoch count and recipe make CIFAR-10 at 16x16 converge.

The ``cpu`` presets of every study train in one regime: CIFAR-10 average-pooled to 16x16 once
on load, the full training split minus a 5,000-image validation split, batch 128, one thread
per run. This study decides two things from run records, using validation accuracy only:

- the recipe per precision: the candidates of ``learning_curves.yaml`` trained for the same
  number of epochs, ranked by final validation accuracy;
- the epoch count: a *budget curve*. The same recipe is trained for E in {8, 15, 30} epochs,
  each a complete schedule (cosine to zero), and the regime takes the smallest E whose
  converged value (mean validation accuracy of its last ``window`` epochs) is within ``tol``
  points of the longest run's. A learning curve of one long cosine run cannot answer this on
  its own: its accuracy rises until the learning rate reaches zero, whatever the length.

Records: ``results/cpu/regime/<config_hash>/record.json`` (written by ``analysis.sweep``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.sweep import load_records, load_spec

__all__ = ["SPEC", "RECORDS_DIR", "runs_frame", "curves_frame", "recipe_of", "choose_recipe",
           "budget_recipes", "choose_epochs", "load", "run", "resolve_spec"]

SPEC = Path(__file__).resolve().parent / "learning_curves.yaml"
RECORDS_DIR = Path(__file__).resolve().parents[2] / "results" / "cpu" / "regime"


def recipe_of(config: dict) -> str:
    """Short recipe label of a run: optimizer preset, schedule, label smoothing."""
    r = config.get("optimizer", "?")
    if config.get("lr_schedule", "cosine") != "cosine":
        r += f"+{config['lr_schedule']}"
    if config.get("label_smoothing"):
        r += f"+ls{config['label_smoothing']:g}"
    return r


def _precision(rec: dict) -> str:
    """'bnn' or 'fp' from the record's model spec (the config may leave binary None)."""
    return "bnn" if (rec.get("model_spec") or {}).get("binary", rec["config"].get("binary")) else "fp"


def runs_frame(recs: list[dict], window: int = 5) -> pd.DataFrame:
    """One row per finished run: recipe, epochs, final / last-``window`` / best validation."""
    rows = []
    for r in recs:
        if r.get("status") != "finished":
            continue
        c, m = r["config"], r["metrics"]
        val = [e["val_acc"] for e in m["epochs"]]
        rows.append({"precision": _precision(r), "recipe": recipe_of(c), "epochs": c["epochs"],
                     "seed": r["seed"], "final_val": val[-1],
                     f"last{window}_val": float(np.mean(val[-window:])),
                     "best_val": m["best_val_acc"], "final_test": m["final_test_acc"],
                     "test_at_best_val": m["test_acc_at_best_val"],
                     "s_per_epoch": float(np.mean([e["time_s"] for e in m["epochs"]])),
                     "config_hash": r["config_hash"]})
    df = pd.DataFrame(rows)
    return df.sort_values(["precision", "recipe", "epochs", "seed"], ignore_index=True) if len(df) else df


def curves_frame(recs: list[dict]) -> pd.DataFrame:
    """Per-epoch validation/test accuracy and training loss of every finished run (long format)."""
    rows = []
    for r in recs:
        if r.get("status") != "finished":
            continue
        for e in r["metrics"]["epochs"]:
            rows.append({"precision": _precision(r), "recipe": recipe_of(r["config"]),
                         "epochs": r["config"]["epochs"], "seed": r["seed"], "epoch": e["epoch"],
                         "val_acc": e["val_acc"], "test_acc": e["test_acc"],
                         "train_loss": e["train_loss"], "lr": e["lr"]})
    return pd.DataFrame(rows)


def choose_recipe(runs: pd.DataFrame, epochs: int) -> pd.DataFrame:
    """Per precision, the candidate recipes trained for ``epochs``, best final validation first.

    A precision with no run of that length yet (a partial sweep) keeps the recipe of its budget
    curve (the one trained at the most schedule lengths), marked ``provisional``."""
    sub = runs[runs["epochs"] == epochs]
    missing = sorted(set(runs["precision"]) - set(sub["precision"]))
    if missing:
        fallback = [_curve_recipe(runs, p) for p in missing]
        sub = pd.concat([sub] + [runs[(runs["precision"] == p) & (runs["recipe"] == r)]
                                 .nlargest(1, "epochs") for p, r in zip(missing, fallback)])
    g = (sub.groupby(["precision", "recipe"], as_index=False)
         .agg(epochs=("epochs", "max"), final_val=("final_val", "mean"), n=("seed", "size")))
    g = g.sort_values(["precision", "final_val"], ascending=[True, False], ignore_index=True)
    g["chosen"] = ~g.duplicated("precision")
    g["provisional"] = g["precision"].isin(missing)
    return g


def budget_recipes(runs: pd.DataFrame, chosen: dict[str, str]) -> dict[str, str]:
    """Per precision, the recipe whose budget curve decides the epoch count: the one trained at
    the most schedule lengths, the chosen recipe on a tie. The recipe comparison runs at one
    length, so a recipe chosen there (FP with label smoothing) may have no curve of its own; its
    epoch count is then the budget-curve recipe's, an assumption the tables state."""
    return {prec: _curve_recipe(runs, prec, recipe) for prec, recipe in sorted(chosen.items())}


def _curve_recipe(runs: pd.DataFrame, prec: str, prefer: str | None = None) -> str:
    """The recipe of ``prec`` trained at the most schedule lengths: ``prefer`` on a tie, else
    the first by name."""
    lengths = runs[runs["precision"] == prec].groupby("recipe")["epochs"].nunique()
    best = lengths[lengths == lengths.max()]
    return prefer if prefer in best.index else str(best.index.sort_values()[0])


def choose_epochs(runs: pd.DataFrame, recipes: dict[str, str], tol: float = 0.5,
                  window: int = 5) -> pd.DataFrame:
    """Budget curve per precision for its recipe: the smallest E within ``tol`` of the longest.

    ``converged`` is the mean validation accuracy of a run's last ``window`` epochs (its final
    plateau under the cosine schedule); ``gap`` is the longest run's value minus it."""
    col = f"last{window}_val"
    out = []
    for prec, recipe in sorted(recipes.items()):
        sub = runs[(runs["precision"] == prec) & (runs["recipe"] == recipe)]
        if sub.empty:
            continue
        aggs = {"converged": (col, "mean"), "final_val": ("final_val", "mean"), "n": ("seed", "size")}
        if "final_test" in sub:  # reported beside the choice, never used for it
            aggs["final_test"] = ("final_test", "mean")
        curve = sub.groupby("epochs", as_index=False).agg(**aggs)
        ref = float(curve.loc[curve["epochs"].idxmax(), "converged"])
        curve["gap"] = ref - curve["converged"]
        ok = curve[curve["gap"] <= tol]
        pick = int(ok["epochs"].min())
        curve.insert(0, "recipe", recipe)
        curve.insert(0, "precision", prec)
        curve["within_tol"] = curve["gap"] <= tol
        curve["chosen"] = curve["epochs"] == pick
        # the chosen length is the longest tried: no evidence yet that it has converged
        curve["at_longest"] = pick == int(curve["epochs"].max())
        out.append(curve)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def resolve_spec(spec: str | Path) -> Path:
    """A sweep YAML: a path (relative paths from the repo root) or a name in this folder."""
    p = Path(spec)
    for cand in (p, Path(__file__).resolve().parents[2] / p, SPEC.parent / f"{spec}.yaml"):
        if cand.is_file():
            return cand
    names = sorted(q.stem for q in SPEC.parent.glob("*.yaml"))
    raise ValueError(f"spec: got {spec!r}; allowed: a sweep YAML path or one of {names}")


def load(records_dir: str | Path | None = None, spec: str | Path = SPEC) -> tuple[list[dict], list]:
    """(records of the sweep ``spec`` found in ``records_dir`` (default: the spec's), its configs)."""
    _, configs, default_dir = load_spec(resolve_spec(spec))
    rdir = Path(records_dir) if records_dir is not None else default_dir
    from analysis.sweep import config_hash
    wanted = {config_hash(c) for c in configs}
    return [r for r in load_records(rdir) if r.get("config_hash") in wanted], configs


def run(records_dir: str | Path, spec: str | Path = SPEC, workers: int = 2) -> list[dict]:
    """Train what is missing of the sweep ``spec`` into ``records_dir`` (finished runs skipped)."""
    from analysis.sweep import run_sweep
    _, configs, _ = load_spec(resolve_spec(spec))
    return run_sweep(configs, records_dir, workers=workers)
