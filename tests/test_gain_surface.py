"""Tests for analysis.gain_surface: grid, record parsing, equilibrium tables on synthetic data."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis import gain_fit as gf
from analysis import gain_surface as gs
from bnnlib import complexity

FP = (92.0, 10.0, 1.0, 30.0, 1.0, 0.0)   # power_penalty parameters, no depth penalty
BNN = (85.0, 10.0, 1.0, 30.0, 1.0, 1.2)  # same f_b shape, minus g_L(d) = 1.2 d
IDEAL = {"fp": gf.IDEAL, "bnn": gf.IDEAL}
DEPTHS, WIDTHS, D0, W0 = (1, 2, 3, 5, 8), (0.5, 1.0, 2.0), 3, 1.0


def _record(p, w, d, seed, acc, tag=None):
    return {"status": "finished", "config_hash": f"{p}{w}{d}{seed}", "dataset": {"name": "synthetic"},
            "config": {"tag": tag or f"{gs.TAG} resnet20 w={w:.4f} d={d}", "binary": p == "bnn",
                       "seed": seed, "epochs": 1},
            "metrics": {"final_test_acc": acc}, "complexity": {"ops": d * w * w, "params": 1}}


def _synthetic_runs(noise=0.05, seeds=(0, 1, 2)):
    rng = np.random.default_rng(0)
    recs = []
    shapes = {(w, d) for w in WIDTHS for d in DEPTHS}
    shapes |= {(round(W0 * math.sqrt(D0 / d), 4), d) for d in DEPTHS}
    for p, theta in (("fp", FP), ("bnn", BNN)):
        for w, d in sorted(shapes):
            for s in seeds:
                g = gf.FAMILIES["power_penalty"].func(np.array(theta), w, d) + rng.normal(0, noise)
                recs.append(_record(p, w, d, s, float(g)))
    return gs.runs_frame(recs)


def _true_opt(theta):
    grid = np.geomspace(1, 8, 20001)
    return grid[np.argmax(gf.FAMILIES["power_penalty"].func(np.array(theta), gf.iso_width(grid, W0, D0), grid))]


def test_grid_has_per_precision_iso_ops_diagonals():
    shapes = gs.make_grid("resnet20", depths=(1, 2, 3), width_mults=(0.5, 1.0), ref_depth=3, iso_refs=(1.0,))
    rect = [s for s in shapes if s["width_mult"] in (0.5, 1.0)]
    assert len(rect) == 6 and all(s["precisions"] == ["fp", "bnn"] for s in rect)
    ref = next(s for s in shapes if (s["width_mult"], s["depth"]) == (1.0, 3))
    assert ref["spec"].widths == (16, 32, 64) and ref["spec"].depths == (3, 3, 3) and not ref["spec"].binary
    for p in ("fp", "bnn"):
        diag = {s["depth"]: s for s in shapes if p in s["precisions"] and s not in rect}
        assert sorted(diag) == [1, 2]
        c0 = gs.count_ops(ref["spec"], p)
        for d, s in diag.items():  # matched OPs within the precision, up to width rounding
            assert gs.count_ops(s["spec"], p) == pytest.approx(c0, rel=gs.ISO_TOL)
    # the transition convs (half-width input) make a shallow net cheaper than d w^2 says
    assert next(s["width_mult"] for s in shapes if s["depth"] == 1 and s not in rect) > np.sqrt(3)
    configs = gs.make_configs(shapes, seeds=(0,), dataset="synthetic", epochs=1)
    assert len(configs) == 2 * len(shapes) and sum(c.binary for c in configs) == len(shapes)
    assert {c.spec["stages"][0][0][0] for c in configs} == {8, 16, 20, 31}


def test_shape_spec_scales_stem_and_rejects_bad_values():
    s = gs.shape_spec("resnet20", 2, 0.5)
    assert s.stem_width == 8 and s.widths == (8, 16, 32) and s.depths == (2, 2, 2)
    assert gs.shape_spec("resnet20", 1, 1.5).stem_width == 16  # the real stem keeps its width
    with pytest.raises(ValueError, match="depth"):
        gs.shape_spec("resnet20", 0, 1.0)
    with pytest.raises(ValueError, match="width_mult"):
        gs.shape_spec("resnet20", 1, -1.0)
    with pytest.raises(ValueError, match="backbone"):
        gs.shape_spec("vgg_small", 1, 1.0)
    with pytest.raises(ValueError, match="ref_depth"):
        gs.make_grid(depths=(1, 2), ref_depth=3)


def test_runs_frame_parses_and_filters_records():
    recs = [_record("bnn", 0.5, 2, 1, 61.0), _record("fp", 1.0, 3, 0, 80.0),
            {**_record("fp", 1.0, 1, 0, 10.0), "status": "diverged"},
            _record("fp", 1.0, 1, 0, 50.0, tag="other study")]
    df = gs.runs_frame(recs)
    assert list(zip(df["precision"], df["width_mult"], df["depth"], df["acc"])) == [
        ("bnn", 0.5, 2, 61.0), ("fp", 1.0, 3, 80.0)]
    with pytest.raises(ValueError, match="metric"):
        gs.runs_frame(recs, metric="train_acc")


def test_equilibrium_table_recovers_known_shift():
    df = _synthetic_runs()
    d0, dn = _true_opt(FP), _true_opt(BNN)
    assert 1.5 < dn < d0 < 7
    fits, chosen = gs.fit_table(df)
    assert set(chosen) == {"fp", "bnn"} and fits["selected"].sum() == 2
    tab = gs.equilibrium_table(df, ref_depth=D0, iso_refs=(W0,), n_boot=10, seed=0,
                               families=("power", "power_penalty"), ops=IDEAL)
    row = lambda q, m: tab[(tab["quantity"] == q) & (tab["method"] == m)].iloc[0]
    assert row("d0 (FP)", "fit optimum")["estimate"] == pytest.approx(d0, rel=0.08)
    assert row("d_n (BNN)", "fit optimum")["estimate"] == pytest.approx(dn, rel=0.08)
    r = row("d_n / d0", "fit optimum")
    assert r["ci_lo"] <= r["estimate"] <= r["ci_hi"] < 1 and r["n_boot_ok"] == 10
    assert row("d_n (BNN)", "fit balance (Eq. 11/21)")["estimate"] == pytest.approx(dn, rel=0.08)
    assert row("BNN m_d - m_w at FP's d0 (Eq. 20: < 0)", "fit optimum")["estimate"] < 0
    raw = row("d_n (BNN)", "raw vertex (quadratic in ln d)")["estimate"]
    assert 1 <= raw < row("d0 (FP)", "raw vertex (quadratic in ln d)")["estimate"]


def test_properties_and_slices_on_synthetic_surface():
    df = _synthetic_runs()
    means = gs.config_means(df)
    assert means["n_seeds"].eq(3).all()
    sl = gs.iso_slices(means, D0, (W0,))
    assert set(sl[sl["precision"] == "fp"]["depth"]) == set(DEPTHS)
    assert np.all(np.abs(sl["ops_dev"]) < gs.ISO_TOL)
    props = gs.properties_table(df, D0, (W0,), families=("power_penalty",), ops=IDEAL)
    fp = props[(props["precision"] == "fp") & (props["source"] == "raw means")].set_index("property")
    assert fp.loc["a) wider is better (fixed d)", "share_true"] == 1.0
    assert fp.loc["d) interior optimum on a diagonal", "share_true"] == 1.0
    fitted = props[props["source"].str.startswith("fit")].set_index(["precision", "property"])
    assert fitted.loc[("fp", "c_fww_neg"), "share_true"] == 1.0


def test_too_few_runs_refuse():
    df = _synthetic_runs()
    small = df[df["depth"].isin([1, 2])]
    with pytest.raises(ValueError, match="none could be cross-validated"):
        gf.select_family(*[small[small["precision"] == "fp"][c].to_numpy(float)
                           for c in ("width_mult", "depth", "acc")])
    tab, chosen = gs.fit_table(small)
    assert chosen == {} and tab["cv_rmse"].isna().all() and tab["note"].str.contains("configs").all()
    with pytest.raises(ValueError, match="no finished runs"):
        gs.equilibrium_table(df.iloc[:0], D0, (W0,), ops=IDEAL)
