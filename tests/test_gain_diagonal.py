"""Gain surface on a diagonal-only grid (the cpu preset): model-free optima, no surface fits."""
import numpy as np
import pandas as pd
import pytest

from analysis.gain_surface import study as gs
from analysis.gain_surface.plots import DIAGONAL_NOTE, report


# the iso-OPs diagonal through N[0.5, 3] of FP ResNet-20 (stem 0.375), widths solved from
# counted OPs by make_grid; every point has the reference's OPs (the model-free path needs
# only that), so the test needs no complexity counting
DIAG = {1: 0.9774, 2: 0.6286, 3: 0.5, 4: 0.4278, 5: 0.3801}


def _diag_frame(opt_fp=3.0, opt_bnn=2.0, seeds=3):
    rng, rows = np.random.default_rng(0), []
    for p, opt in (("fp", opt_fp), ("bnn", opt_bnn)):
        for d, w in DIAG.items():
            for seed in range(seeds):
                acc = 80 - 3 * (np.log(d) - np.log(opt)) ** 2 + rng.normal(0, 0.2)
                rows.append(dict(precision=p, backbone="resnet20", depth=d, width_mult=w,
                                 seed=seed, acc=acc, ops=1e6, params=1e5, config_hash=f"{p}{d}{seed}"))
    return pd.DataFrame(rows)


def test_empty_width_mults_needs_diagonals():
    with pytest.raises(ValueError, match="width_mults"):
        gs.make_grid("resnet20", [1, 2, 3], [], 3, [], 0.375, ["fp"])


def test_diagonal_report_recovers_known_optima(tmp_path):
    df = _diag_frame()
    assert gs.diagonal_only(df) and not gs.diagonal_only(pd.concat([df, df.assign(width_mult=9.0)]))
    out = report(df, 3, [0.5], tmp_path, {"title": "t"}, n_boot=30)
    assert out["chosen"] == {} and out["fits"]["note"].iloc[0] == DIAGONAL_NOTE
    eq = out["equilibrium"].set_index(["quantity", "method"])["estimate"]
    vertex = "raw vertex (quadratic in ln d)"
    assert abs(eq[("d0 (FP)", vertex)] - 3.0) < 0.3 and abs(eq[("d_n (BNN)", vertex)] - 2.0) < 0.3
    assert not any(m.startswith("fit") for m in out["equilibrium"]["method"])
    assert (tmp_path / "gain_surface_iso_ops.png").is_file()
    assert not (tmp_path / "gain_surface_fits.png").exists()


def test_regime_options_reach_train_config(monkeypatch):
    one = gs.Shape(depth=3, width_mult=0.5, spec=gs.shape_spec("resnet20", 3, 0.5, 0.5),
                   precisions=["fp"])
    monkeypatch.setattr(gs, "make_grid", lambda *a, **k: [one])  # no OPs counting needed here
    p = dict(gs.load_preset("quick"), resolution=16, label_smoothing=0.1, seeds=[0],
             precisions=["fp"])
    cfgs = gs.study_configs(p)
    assert cfgs and all(c.resolution == 16 and c.label_smoothing == 0.1 for c in cfgs)


def _curve_record(p, d, w, seed, vals):
    return {"status": "finished", "config": {"tag": f"{gs.TAG} resnet20 w={w:.4f} d={d}",
                                             "binary": p == "bnn", "seed": seed, "epochs": len(vals)},
            "metrics": {"epochs": [{"epoch": i + 1, "val_acc": v} for i, v in enumerate(vals)]}}


def test_learning_curves_show_when_the_best_depth_changes(tmp_path):
    from analysis.gain_surface.plots import learning_curves
    # depth 1 leads early, depth 3 overtakes it late; seeds average
    recs = [_curve_record("fp", 1, 1.0, s, [50, 60, 62, 63, 64, 65]) for s in (0, 1)]
    recs += [_curve_record("fp", 3, 0.5, 0, [40, 50, 60, 64, 66, 68]),
             _curve_record("fp", 3, 0.5, 1, [40, 50, 60, 64, 66, 66]),
             {"status": "failed", "config": {"tag": f"{gs.TAG} resnet20 w=0.5 d=2"}}]
    curves = gs.curves_frame(recs)
    assert len(curves) == 24 and set(curves["depth"]) == {1, 3}
    out = learning_curves(curves, tmp_path, {"dataset": "synthetic"})
    tab = out["table"].set_index("epoch")
    assert tab.loc[2, "best_depth"] == 1 and tab.loc[2, "gap_to_runner_up"] == pytest.approx(10)
    assert tab.loc[6, "best_depth"] == 3 and tab.loc[6, "gap_to_runner_up"] == pytest.approx(2)
    assert (tmp_path / "gain_surface_curves.png").is_file()
    assert (tmp_path / "gain_surface_optimum_over_training.md").is_file()
    # a 1-epoch schedule: a third, two thirds and the end are one epoch, listed once
    from analysis.gain_surface.plots import optimum_over_training
    short = gs.curves_frame([_curve_record("fp", d, w, 0, [v]) for d, w, v in ((1, 1.0, 30), (3, 0.5, 20))])
    assert list(optimum_over_training(short)["epoch"]) == [1]
    # no validation split (quick preset): nothing is drawn
    assert learning_curves(gs.curves_frame([_curve_record("bnn", 1, 1.0, 0, [])]), tmp_path / "q", {}) == {}
    assert not (tmp_path / "q").exists()


def test_cpu_long_preset_doubles_the_schedule_of_the_cpu_diagonals_shallow_nets():
    from analysis.sweep import config_hash
    preset = lambda name: {**gs.load_preset(name), "dataset": "cifar10"}  # 'auto' depends on the data found
    base = {c.build_spec(): c for c in gs.study_configs(preset("cpu")) if c.seed == 0}
    long = gs.study_configs(preset("cpu_long"))
    assert len(long) == 6 and {c.epochs for c in long} == {60}
    assert sorted((c.binary, c.build_spec().depths[0]) for c in long) == [
        (b, d) for b in (False, True) for d in (1, 2, 3)]  # FP and BNN at d = 1, 2, 3
    for c in long:  # the same nets, recipe and data as the cpu preset's: only the epochs differ
        assert config_hash(c.replace(epochs=30)) == config_hash(base[c.build_spec()])
