"""CPU proxy regime (issue 12): the learning and budget curves that fix the ``cpu`` presets'
epoch count and recipe (CIFAR-10 at 16x16, ResNet-20 family, 2 CPU cores).

``learning_curves.yaml`` is the sweep; ``study`` turns its records into the choice,
``plots`` and ``tables`` into the committed evidence. CLI: ``python -m analysis.regime``.
"""
from .plots import fig_learning_curves
from .study import (RECORDS_DIR, SPEC, budget_recipes, choose_epochs, choose_recipe,
                    curves_frame, load, recipe_of, resolve_spec, run, runs_frame)
from .tables import save_tables

__all__ = ["fig_learning_curves", "RECORDS_DIR", "SPEC", "budget_recipes", "choose_epochs",
           "choose_recipe", "curves_frame", "load", "recipe_of", "resolve_spec", "run", "runs_frame",
           "save_tables", "report"]


def report(records: list[dict], outdir, meta: dict, recipe_epochs: int = 15, tol: float = 0.5) -> dict:
    """Recipe choice, budget curve, figure and tables from the regime records."""
    runs = runs_frame(records)
    recipes = choose_recipe(runs, recipe_epochs)
    chosen = dict(recipes.loc[recipes["chosen"], ["precision", "recipe"]].values)
    budget = choose_epochs(runs, budget_recipes(runs, chosen), tol=tol)
    if len(budget):
        budget.insert(2, "regime_recipe", budget["precision"].map(chosen))
    paths = {"figure": fig_learning_curves(curves_frame(records), budget, outdir,
                                           {**meta, "title": "CPU regime: learning and budget curves",
                                            "what": "CIFAR-10 at 16x16 (JPEG-rebuilt copy), 45k "
                                                    "training images, batch 128; validation "
                                                    "accuracy only."})}
    paths.update(save_tables(runs, recipes, budget, outdir, meta, tol))
    return {"runs": runs, "recipes": recipes, "budget": budget, "paths": paths}
