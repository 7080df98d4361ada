"""Tests for analysis.gain_surface.tables: equilibrium depths, shift and properties on synthetic runs."""
import math

import numpy as np
import pytest

from analysis.gain_surface import fit as gf
from analysis.gain_surface import study as gs
from analysis.gain_surface import tables as gt

FP = (92.0, 10.0, 1.0, 30.0, 1.0, 0.0)   # power_penalty parameters, no depth penalty
BNN = (85.0, 10.0, 1.0, 30.0, 1.0, 1.2)  # same f_b shape, minus g_L(d) = 1.2 d
IDEAL = {"fp": gf.IDEAL, "bnn": gf.IDEAL}
DEPTHS, WIDTHS, D0, W0 = (1, 2, 3, 5, 8), (0.5, 1.0, 2.0), 3, 1.0


def _record(p, w, d, seed, acc):
    return {"status": "finished", "config_hash": f"{p}{w}{d}{seed}", "dataset": {"name": "synthetic"},
            "config": {"tag": f"{gs.TAG} resnet20 w={w:.4f} d={d}", "binary": p == "bnn", "seed": seed},
            "metrics": {"final_test_acc": acc}, "complexity": {"ops": d * w * w}}


def synthetic_runs(noise=0.05, seeds=(0, 1, 2)):
    """Runs frame sampled from known FP / BNN surfaces (grid + iso-OPs diagonal through N[W0, D0])."""
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


def test_ops_models_fitted_from_records():
    m = gt.ops_models(synthetic_runs())
    assert np.allclose(m["fp"].coef, [0, 0, 0, 1], atol=1e-9) and set(m) == {"fp", "bnn"}


def test_equilibrium_table_recovers_known_shift():
    df = synthetic_runs()
    d0, dn = _true_opt(FP), _true_opt(BNN)
    assert 1.5 < dn < d0 < 7
    fits, chosen = gt.fit_table(df)
    assert set(chosen) == {"fp", "bnn"} and fits["selected"].sum() == 2
    tab = gt.equilibrium_table(df, ref_depth=D0, iso_refs=(W0,), n_boot=10, seed=0,
                               families=("power", "power_penalty"), ops=IDEAL)
    row = lambda q, m: tab[(tab["quantity"] == q) & (tab["method"] == m)].iloc[0]
    assert row("d0 (FP)", "fit optimum")["estimate"] == pytest.approx(d0, rel=0.08)
    assert row("d_n (BNN)", "fit optimum")["estimate"] == pytest.approx(dn, rel=0.08)
    r = row("d_n / d0", "fit optimum")
    assert r["ci_lo"] <= r["estimate"] <= r["ci_hi"] < 1 and r["n_boot_ok"] == 10
    assert r["at_edge"] == "" and row("d0 (FP)", "raw argmax")["at_edge"] == ""
    edge = gt.equilibrium_table(df, ref_depth=D0, iso_refs=(W0,), n_boot=2, ops=IDEAL,
                                families=("power",), d_range=(1.0, 2.0))
    assert (edge["at_edge"].str.contains("high")).any()
    assert row("d_n (BNN)", "fit balance (Eq. 11/21)")["estimate"] == pytest.approx(dn, rel=0.08)
    assert row("BNN (m_d - m_w) x C at FP's d0 (Eq. 20: < 0)", "fit optimum")["estimate"] < 0
    raw = row("d_n (BNN)", "raw vertex (quadratic in ln d)")["estimate"]
    assert 1 <= raw < row("d0 (FP)", "raw vertex (quadratic in ln d)")["estimate"]


def test_properties_and_slices_on_synthetic_surface():
    df = synthetic_runs()
    means = gs.config_means(df)
    assert means["n_seeds"].eq(3).all()
    sl = gs.iso_slices(means, D0, (W0,))
    assert set(sl[sl["precision"] == "fp"]["depth"]) == set(DEPTHS)
    assert np.all(np.abs(sl["ops_dev"]) < gs.ISO_TOL)
    props = gt.properties_table(df, D0, (W0,), families=("power_penalty",), ops=IDEAL)
    fp = props[(props["precision"] == "fp") & (props["source"] == "raw means")].set_index("property")
    assert fp.loc["a) wider is better (fixed d)", "share_true"] == 1.0
    assert fp.loc["d) interior optimum on a diagonal", "share_true"] == 1.0
    fitted = props[props["source"].str.startswith("fit")].set_index(["precision", "property"])
    assert fitted.loc[("fp", "c_fww_neg"), "share_true"] == 1.0


def test_too_few_runs_refuse():
    df = synthetic_runs()
    small = df[df["depth"].isin([1, 2])]
    with pytest.raises(ValueError, match="none could be cross-validated"):
        gf.select_family(*[small[small["precision"] == "fp"][c].to_numpy(float)
                           for c in ("width_mult", "depth", "acc")])
    tab, chosen = gt.fit_table(small)
    assert chosen == {} and tab["cv_rmse"].isna().all() and tab["note"].str.contains("configs").all()
    with pytest.raises(ValueError, match="no finished runs"):
        gt.equilibrium_table(df.iloc[:0], D0, (W0,), ops=IDEAL)


def test_shallow_end_vertex_is_the_vertex_of_the_first_k_depths():
    """The windowed vertex rows (k = 3 .. n-1 of the 5 sampled depths) equal slice_optimum on
    the shallow depths of the diagonal, and their edge flag uses the window's own range."""
    df = synthetic_runs()
    tab = gt.equilibrium_table(df, ref_depth=D0, iso_refs=(W0,), n_boot=3, seed=0,
                               families=("power_penalty",), ops=IDEAL)
    methods = set(tab["method"])
    assert {"raw vertex, shallowest 3 depths", "raw vertex, shallowest 4 depths"} <= methods
    assert "raw vertex, shallowest 5 depths" not in methods and "raw vertex, shallowest 2 depths" not in methods
    sl = gt.iso_slices(gs.config_means(df), D0, (W0,))
    for p, q in (("fp", "d0 (FP)"), ("bnn", "d_n (BNN)")):
        g = sl[sl["precision"] == p]
        for k in (3, 4):
            pairs = {(w, d) for w, d in zip(g["width_mult"], g["depth"]) if d in sorted(g["depth"])[:k]}
            shallow = df[(df["precision"] == p) & np.array([(w, d) in pairs for w, d in zip(df["width_mult"], df["depth"])])]
            want = gf.slice_optimum(shallow["depth"], shallow["acc"])["d_vertex"]
            got = tab[(tab["quantity"] == q) & (tab["method"] == f"raw vertex, shallowest {k} depths")]
            assert got["estimate"].iloc[0] == pytest.approx(want)
            top = sorted(g["depth"])[k - 1]
            assert ("high" in got["at_edge"].iloc[0]) == (abs(want - top) < 1e-6)
