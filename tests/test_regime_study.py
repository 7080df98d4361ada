"""analysis.regime: recipe choice and the budget-curve rule on hand-made runs."""
import pandas as pd
import pytest

from analysis.regime import budget_recipes, choose_epochs, choose_recipe, recipe_of


def _runs(rows):
    return pd.DataFrame([dict(zip(("precision", "recipe", "epochs", "seed", "final_val", "last5_val"), r))
                         for r in rows])


def test_recipe_label():
    assert recipe_of({"optimizer": "cifar_sgd"}) == "cifar_sgd"
    assert recipe_of({"optimizer": "cifar_adam", "label_smoothing": 0.1}) == "cifar_adam+ls0.1"
    assert recipe_of({"optimizer": "cifar_adam", "lr_schedule": "linear"}) == "cifar_adam+linear"


def test_recipe_choice_uses_validation_at_one_length():
    runs = _runs([("bnn", "a", 15, 0, 60.0, 59.5), ("bnn", "b", 15, 0, 62.0, 61.0),
                  ("bnn", "b", 30, 0, 99.0, 99.0), ("fp", "a", 15, 0, 80.0, 79.0)])
    r = choose_recipe(runs, 15)
    assert dict(r.loc[r["chosen"], ["precision", "recipe"]].values) == {"bnn": "b", "fp": "a"}


@pytest.mark.parametrize("vals, tol, pick", [((70.0, 74.6, 75.0), 0.5, 15),
                                             ((70.0, 74.4, 75.0), 0.5, 30),
                                             ((74.8, 74.9, 75.0), 0.5, 8),
                                             ((70.0, 74.4, 75.0), 1.0, 15)])
def test_budget_rule_picks_smallest_within_tol(vals, tol, pick):
    runs = _runs([("fp", "sgd", e, 0, v, v) for e, v in zip((8, 15, 30), vals)])
    b = choose_epochs(runs, {"fp": "sgd"}, tol=tol)
    assert int(b.loc[b["chosen"], "epochs"].iloc[0]) == pick
    assert b["gap"].iloc[-1] == 0.0


def test_partial_sweep_keeps_the_budget_curve_recipe():
    runs = _runs([("fp", "sgd", 8, 0, 70.0, 69.0), ("bnn", "adam", 8, 0, 50.0, 49.0)])
    r = choose_recipe(runs, 15)  # nothing trained for 15 epochs yet
    assert set(r["precision"]) == {"fp", "bnn"} and r["provisional"].all()
    chosen = dict(r.loc[r["chosen"], ["precision", "recipe"]].values)
    b = choose_epochs(runs, chosen)
    assert b["at_longest"].all() and list(b["epochs"]) == [8, 8]


def test_budget_curve_of_a_precision_whose_chosen_recipe_has_one_length():
    """FP's label-smoothing recipe wins the 15-epoch comparison but was trained at 15 epochs
    only: the epoch count comes from the SGD budget curve (8, 15, 30), not from a one-point
    'curve' that trivially picks 15; the BNN's chosen recipe has its own curve and keeps it."""
    runs = _runs([("fp", "sgd", 8, 0, 57.0, 55.0), ("fp", "sgd", 15, 0, 63.0, 62.5),
                  ("fp", "sgd", 30, 0, 72.0, 72.0), ("fp", "sgd+ls", 15, 0, 65.0, 64.0),
                  ("bnn", "adam", 15, 0, 47.0, 46.7), ("bnn", "adam", 30, 0, 53.0, 52.7),
                  ("bnn", "sgd", 15, 0, 44.0, 43.7)])
    chosen = dict(choose_recipe(runs, 15).query("chosen")[["precision", "recipe"]].values)
    assert chosen == {"fp": "sgd+ls", "bnn": "adam"}
    assert budget_recipes(runs, chosen) == {"bnn": "adam", "fp": "sgd"}
    b = choose_epochs(runs, budget_recipes(runs, chosen))
    fp = b[b["precision"] == "fp"]
    assert list(fp["epochs"]) == [8, 15, 30] and int(fp.loc[fp["chosen"], "epochs"].iloc[0]) == 30
