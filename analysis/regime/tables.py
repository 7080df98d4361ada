"""Tables of the CPU regime study (recipe choice, budget curve), from records only."""
from __future__ import annotations

import pandas as pd

from analysis.figures import save_table

__all__ = ["save_tables"]


def save_tables(runs: pd.DataFrame, recipes: pd.DataFrame, budget: pd.DataFrame, outdir,
                meta: dict, tol: float) -> dict:
    """Write the runs, recipe-choice and budget-curve tables; return their paths by name."""
    out = {}
    out["runs"] = save_table(runs.drop(columns=["config_hash"]), "regime_runs", outdir,
                             {**meta, "title": "CPU regime: every run (validation picks, test reported)",
                              "what": "Accuracies in %; final_val is the last epoch's validation "
                                      "accuracy, last5_val the mean of the last 5 epochs."}, ".2f")
    out["recipes"] = save_table(recipes, "regime_recipes", outdir,
                                {**meta, "title": "CPU regime: recipe choice (validation only)",
                                 "what": "Candidates trained for the same schedule length; the "
                                         "best final validation accuracy per precision is chosen. "
                                         "One seed each: differences under ~1 point are within "
                                         "the noise of a 5,000-image validation set (binomial "
                                         "s.e. about 0.6 points)."}, ".2f")
    out["budget"] = save_table(budget, "regime_budget", outdir,
                               {**meta, "title": "CPU regime: budget curve and chosen epoch count",
                                "what": f"converged = mean validation accuracy of the last 5 "
                                        f"epochs of a complete cosine schedule of E epochs; gap = "
                                        f"longest E minus this; chosen = smallest E with gap <= "
                                        f"{tol} points; at_longest = the chosen length is the longest "
                                        f"tried (convergence not shown: try longer). recipe = "
                                        f"the recipe trained at the most lengths, whose curve "
                                        f"decides E; regime_recipe = the one the recipe "
                                        f"comparison chose. Where they differ, E is assumed to "
                                        f"carry over to the regime's recipe."}, ".2f")
    return out
