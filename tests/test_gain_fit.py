"""Tests for analysis.gain_surface.fit: recovery of known optima on synthetic surfaces, refusals."""
import numpy as np
import pytest

from analysis.gain_surface import fit as gf

TRUE = (92.0, 10.0, 1.0, 30.0, 1.0)  # power family: a, b, alpha, c, beta
W0, D0 = 1.0, 3.0


def _true_opt(a, b, alpha, c, beta, w0=W0, d0=D0):
    """Closed-form stationary depth of the power family on the iso-OPs curve."""
    return ((2 * c * beta) / (b * alpha) * w0 ** alpha * d0 ** (alpha / 2)) ** (1 / (alpha / 2 + beta))


def _points(theta, family="power", noise=0.05, seeds=2, seed=0):
    rng = np.random.default_rng(seed)
    w, d = np.meshgrid([0.5, 0.7, 1.0, 1.4, 2.0], [1, 2, 3, 4, 6, 8])
    w, d = np.repeat(w.ravel(), seeds), np.repeat(d.ravel(), seeds)
    y = gf.FAMILIES[family].func(np.array(theta), w, d) + rng.normal(0, noise, w.size)
    return w.astype(float), d.astype(float), y


def test_fit_and_locators_recover_known_optimum():
    d_true = _true_opt(*TRUE)
    assert 2 < d_true < 7  # interior, so the test is about locating, not clipping
    fit = gf.fit_surface("power", *_points(TRUE))
    opt = gf.optimal_depth(fit, W0, D0, (1, 8))
    assert opt["d_opt"] == pytest.approx(d_true, rel=0.05)
    assert not opt["at_boundary"]
    assert gf.balance_depth(fit, W0, D0, (1, 8)) == pytest.approx(opt["d_opt"], rel=1e-3)
    assert opt["w_opt"] == pytest.approx(W0 * np.sqrt(D0 / opt["d_opt"]))


def test_depth_penalty_shifts_optimum_back_and_is_selected():
    theta = TRUE + (1.5,)
    w, d, y = _points(theta, "power_penalty")
    name, scores = gf.select_family(w, d, y, ("power", "power_penalty"))
    assert name == "power_penalty" and scores["power_penalty"] < scores["power"]
    grid = np.geomspace(1, 8, 20001)
    g = gf.FAMILIES["power_penalty"].func(np.array(theta), gf.iso_width(grid, W0, D0), grid)
    d_true = grid[np.argmax(g)]
    opt = gf.optimal_depth(gf.fit_surface(name, w, d, y), W0, D0, (1, 8))
    assert opt["d_opt"] == pytest.approx(d_true, rel=0.08)
    assert d_true < _true_opt(*TRUE)  # the penalty is what moves the equilibrium shallower


def test_balance_none_when_depth_always_pays():
    fit = gf.fit_surface("power", *_points((92.0, 1.0, 1.0, 60.0, 0.3)))
    assert gf.balance_depth(fit, W0, D0, (1, 8)) is None
    assert gf.optimal_depth(fit, W0, D0, (1, 8))["at_boundary"]


def test_slice_optimum_vertex_and_argmax():
    d = np.repeat([1.0, 2.0, 3.0, 4.0, 6.0], 2)
    y = 5 - (np.log(d) - np.log(2.5)) ** 2
    r = gf.slice_optimum(d, y)
    assert r["d_vertex"] == pytest.approx(2.5, rel=1e-6) and r["concave"]
    assert r["d_argmax"] == 3.0 and not r["at_boundary"]
    r = gf.slice_optimum(d, np.log(d))  # monotone: optimum at the deep end
    assert r["d_argmax"] == 6.0 and r["at_boundary"]


@pytest.mark.parametrize("family", sorted(gf.FAMILIES))
def test_too_few_points_refuse(family):
    w, d = np.array([0.5, 1, 2, 0.5, 1]), np.array([1, 2, 3, 3, 1.0])
    with pytest.raises(ValueError, match="configs"):
        gf.fit_surface(family, w, d, np.arange(5.0))
    w, d = np.tile([0.5, 1, 2, 3], 2), np.repeat([1.0, 2.0], 4)  # 8 configs, 2 depths
    with pytest.raises(ValueError, match="distinct widths and depths"):
        gf.fit_surface(family, w, d, np.arange(8.0))
    with pytest.raises(ValueError, match="depths on the slice"):
        gf.slice_optimum([1, 2, 1, 2], [1, 2, 3, 4])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="family"):
        gf.fit_surface("cubic", [1], [1], [1])
    with pytest.raises(ValueError, match="non-finite"):
        gf.fit_surface("power", [1, np.nan], [1, 2], [1, 2])
    fit = gf.fit_surface("power", *_points(TRUE))
    with pytest.raises(ValueError, match="d_range"):
        gf.optimal_depth(fit, W0, D0, (3, 1))
    with pytest.raises(ValueError, match="n_boot"):
        gf.bootstrap({}, lambda g: {}, 0, 0)


def test_bootstrap_deterministic_and_brackets():
    rng = np.random.default_rng(1)
    groups = {k: rng.normal(k, 1.0, 4) for k in range(5)}
    stat = lambda g: {"m": float(np.mean([np.mean(v) for v in g.values()]))}
    a, b = gf.bootstrap(groups, stat, 200, seed=3), gf.bootstrap(groups, stat, 200, seed=3)
    assert a == b
    est, lo, hi, n = a["m"]
    assert lo < est < hi and n == 200
    const = gf.bootstrap({0: np.ones(3)}, stat, 50, seed=0)["m"]
    assert const[1] == const[2] == 1.0
    # one seed per config: no spread to resample, so no interval (not a zero-width one)
    single = gf.bootstrap({k: v[:1] for k, v in groups.items()}, stat, 50, seed=0)["m"]
    assert single[0] == pytest.approx(np.mean([v[0] for v in groups.values()]))
    assert np.isnan(single[1]) and np.isnan(single[2]) and single[3] == 0
    # one config with one seed among replicated ones: its noise would be left out, so no interval
    partial = gf.bootstrap({**groups, 0: groups[0][:1]}, stat, 50, seed=0)["m"]
    assert np.isnan(partial[1]) and np.isnan(partial[2]) and partial[3] == 0


def test_fit_properties_on_known_surface():
    fit = gf.fit_surface("power", *_points(TRUE))
    p = gf.fit_properties(fit, W0, D0)
    assert p["a_fw_pos"] == 1.0 and p["a_fd_pos"] == 1.0
    assert p["c_fww_neg"] == 1.0 and p["c_fdd_neg"] == 1.0
    assert p["b_depth_pays_more_at_dmin"] and p["d_interior_optimum"]


def test_ops_model_fits_and_inverts():
    true = gf.OpsModel((4.0, 0.5, -0.3, 3.0))
    w, d = np.meshgrid([0.5, 0.8, 1.0, 1.5, 2.0], [1, 2, 3])
    m = gf.OpsModel.fit(w.ravel(), d.ravel(), true(w.ravel(), d.ravel()))
    assert np.allclose(m.coef, true.coef)
    for dd, ww in ((1.0, 0.7), (2.5, 1.3), (3.0, 1.0)):
        assert m.width_at(dd, float(m(ww, dd))) == pytest.approx(ww)
    assert gf.iso_width(1.0, 1.0, 3.0) == pytest.approx(np.sqrt(3.0))
    cw, cd = m.grad(1.3, 2.0)
    h = 1e-6
    assert cw == pytest.approx((m(1.3 + h, 2.0) - m(1.3 - h, 2.0)) / (2 * h), rel=1e-5)
    assert cd == pytest.approx((m(1.3, 2.0 + h) - m(1.3, 2.0 - h)) / (2 * h), rel=1e-5)
    with pytest.raises(ValueError, match="4 distinct"):
        gf.OpsModel.fit([1, 2], [1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="coef"):
        gf.OpsModel((1, 2, 3))


def test_locators_follow_a_non_ideal_budget():
    ops = gf.OpsModel((0.0, 0.0, 0.0, 1.0))
    fit = gf.fit_surface("power", *_points(TRUE))
    a = gf.optimal_depth(fit, W0, D0, (1, 8))
    b = gf.optimal_depth(fit, W0, D0, (1, 8), ops)
    assert a["d_opt"] == pytest.approx(b["d_opt"])
    # a head that costs as much as the whole ideal body makes widening dearer: optimum deeper
    heavy = gf.OpsModel((0.0, 3.0, 0.0, 1.0))
    c = gf.optimal_depth(fit, W0, D0, (1, 8), heavy)
    assert c["d_opt"] > a["d_opt"]
    assert gf.balance_depth(fit, W0, D0, (1, 8), heavy) == pytest.approx(c["d_opt"], rel=1e-3)
