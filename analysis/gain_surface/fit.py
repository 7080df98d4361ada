"""Fits of the gain surface G = f(w, d) and equilibrium locators (DWR Sec. 3.3, Eqs. 7-21).

Coordinates: ``w`` is the width multiplier of a backbone family, ``d`` its depth (blocks per
stage); the budget is C = psi(w, d) ~ d w^2 (Eq. 6), so the iso-OPs curve through the
reference net N[w0, d0] is w(d) = w0 sqrt(d0 / d). Real nets add terms (stem, head, the
first conv of each stage): ``OpsModel`` fits them to counted OPs, and every locator takes it.

Eq. 11 / Eq. 21 equate the marginal gains of depth and width. Read literally (df/dd = df/dw)
the equation depends on the units of w and d, so here the gains are compared per unit of
budget, as the paper's argument ("given a computational budget") intends:
m_d = (df/dd) / (dC/dd), m_w = (df/dw) / (dC/dw). Along the iso-OPs curve
dG/dd = (dC/dd) (m_d - m_w), so the balance depth (m_d = m_w) is exactly the stationary point of
G on that curve: both locators are provided and they agree at an interior optimum.

Model families (all fitted by bounded least squares, several deterministic starts):
- ``power``: G = a - b w^-alpha - c d^-beta (saturating power laws, Tan & Le style).
- ``power_penalty``: power - g d, g >= 0: G_b^t = f_b(w, d) - g_L(d) of Eq. 17, with the
  quantization loss accumulating linearly over layers (Eq. 13-16).
- ``quad_log``: full quadratic in (ln w, ln d): no built-in monotonicity or concavity, so the
  properties a)-d) are tested by it rather than assumed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import brentq, least_squares, minimize_scalar

__all__ = ["FAMILIES", "Fit", "OpsModel", "IDEAL", "fit_surface", "cross_validate", "select_family", "iso_width",
           "optimal_depth", "balance_depth", "marginal_gap", "slice_optimum", "bootstrap",
           "MIN_LEVELS"]

MIN_LEVELS = 3  # distinct w and distinct d values a surface fit needs (curvature in each)


def _power(t, w, d):
    return t[0] - t[1] * w ** (-t[2]) - t[3] * d ** (-t[4])


def _power_penalty(t, w, d):
    return _power(t, w, d) - t[5] * d


def _quad_log(t, w, d):
    lw, ld = np.log(w), np.log(d)
    return t[0] + t[1] * lw + t[2] * ld + t[3] * lw ** 2 + t[4] * ld ** 2 + t[5] * lw * ld


@dataclass(frozen=True)
class Family:
    """A parametric surface: names of its parameters, its function and bounds."""

    name: str
    params: tuple
    func: Callable
    lower: tuple
    upper: tuple

    def starts(self, y: np.ndarray) -> list[np.ndarray]:
        """Deterministic initial guesses scaled to the data."""
        top, span = float(np.max(y)), float(np.ptp(y)) or 1.0
        if self.name == "quad_log":
            return [np.array([float(np.mean(y)), 0, 0, 0, 0, 0.0])]
        out = []
        for ex in (0.5, 1.0, 2.0):
            t = [top + 0.5 * span, span, ex, span, ex]
            out.append(np.array(t + [0.0] * (len(self.params) - 5)))
        return out


_INF = np.inf
FAMILIES = {
    "power": Family("power", ("a", "b", "alpha", "c", "beta"), _power,
                    (-_INF, 0, 0.02, 0, 0.02), (_INF, _INF, 6, _INF, 6)),
    "power_penalty": Family("power_penalty", ("a", "b", "alpha", "c", "beta", "g"), _power_penalty,
                            (-_INF, 0, 0.02, 0, 0.02, 0), (_INF, _INF, 6, _INF, 6, _INF)),
    "quad_log": Family("quad_log", ("a", "b_w", "b_d", "c_ww", "c_dd", "c_wd"), _quad_log,
                       (-_INF,) * 6, (_INF,) * 6),
}


@dataclass(frozen=True)
class Fit:
    """A fitted surface: ``predict``, partial derivatives and the data summary."""

    family: str
    theta: tuple
    rmse: float
    n_points: int
    n_configs: int
    w_range: tuple
    d_range: tuple

    def predict(self, w, d):
        """G at (w, d) (broadcasts)."""
        return FAMILIES[self.family].func(np.asarray(self.theta), np.asarray(w, float),
                                          np.asarray(d, float))

    def grad(self, w, d, h: float = 1e-4):
        """(df/dw, df/dd) by central differences in relative steps."""
        w, d = np.asarray(w, float), np.asarray(d, float)
        fw = (self.predict(w * (1 + h), d) - self.predict(w * (1 - h), d)) / (2 * h * w)
        fd = (self.predict(w, d * (1 + h)) - self.predict(w, d * (1 - h))) / (2 * h * d)
        return fw, fd

    def curvature(self, w, d, h: float = 1e-3):
        """(d2f/dw2, d2f/dd2) by central differences."""
        w, d = np.asarray(w, float), np.asarray(d, float)
        f0 = self.predict(w, d)
        fww = (self.predict(w * (1 + h), d) - 2 * f0 + self.predict(w * (1 - h), d)) / (h * w) ** 2
        fdd = (self.predict(w, d * (1 + h)) - 2 * f0 + self.predict(w, d * (1 - h))) / (h * d) ** 2
        return fww, fdd


def _as_points(w, d, y):
    w, d, y = (np.asarray(v, float).ravel() for v in (w, d, y))
    if not (len(w) == len(d) == len(y)):
        raise ValueError(f"w, d, y: got lengths {len(w)}, {len(d)}, {len(y)}; allowed: equal lengths")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(d)) and np.all(np.isfinite(y))):
        raise ValueError("w, d, y: got non-finite values; allowed: finite numbers only")
    if np.any(w <= 0) or np.any(d <= 0):
        raise ValueError("w, d: got a value <= 0; allowed: positive widths and depths")
    return w, d, y


def _check_enough(fam: Family, w, d) -> int:
    n_cfg = len(set(zip(w.tolist(), d.tolist())))
    need = len(fam.params) + 1
    nw, nd = len(np.unique(w)), len(np.unique(d))
    if n_cfg < need or nw < MIN_LEVELS or nd < MIN_LEVELS:
        raise ValueError(f"points: got {n_cfg} distinct (w, d) configs with {nw} widths and {nd} "
                         f"depths; allowed: family {fam.name!r} ({len(fam.params)} parameters) needs "
                         f">= {need} configs and >= {MIN_LEVELS} distinct widths and depths")
    return n_cfg


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"family: got {name!r}; allowed: {sorted(FAMILIES)}")
    return FAMILIES[name]


def fit_surface(family: str, w, d, y) -> Fit:
    """Least-squares fit of ``family`` to points (w, d, y); refuses too few configs."""
    fam = _family(family)
    w, d, y = _as_points(w, d, y)
    n_cfg = _check_enough(fam, w, d)
    best = None
    for t0 in fam.starts(y):
        t0 = np.clip(t0, np.array(fam.lower) + 1e-9, np.array(fam.upper) - 1e-9)
        r = least_squares(lambda t: fam.func(t, w, d) - y, t0, bounds=(fam.lower, fam.upper),
                          x_scale="jac", max_nfev=4000)
        if best is None or r.cost < best.cost:
            best = r
    if best is None or not np.all(np.isfinite(best.x)):
        raise RuntimeError(f"fit of {family!r} did not converge")
    rmse = float(np.sqrt(2 * best.cost / len(y)))
    return Fit(family, tuple(float(v) for v in best.x), rmse, len(y), n_cfg,
               (float(w.min()), float(w.max())), (float(d.min()), float(d.max())))


def cross_validate(family: str, w, d, y) -> float:
    """Leave-one-config-out RMSE of the predicted config mean (all seeds of a config held out)."""
    w, d, y = _as_points(w, d, y)
    keys = list(zip(w.tolist(), d.tolist()))
    errs = []
    for k in sorted(set(keys)):
        held = np.array([kk == k for kk in keys])
        f = fit_surface(family, w[~held], d[~held], y[~held])
        errs.append(float(f.predict(k[0], k[1])) - float(np.mean(y[held])))
    return float(np.sqrt(np.mean(np.square(errs))))


def select_family(w, d, y, families=tuple(FAMILIES)) -> tuple[str, dict]:
    """Family with the lowest held-out RMSE, and {family: rmse or the refusal message}."""
    scores = {}
    for name in families:
        try:
            scores[name] = cross_validate(name, w, d, y)
        except (ValueError, RuntimeError) as e:
            scores[name] = str(e)
    ok = {k: v for k, v in scores.items() if isinstance(v, float)}
    if not ok:
        raise ValueError(f"families: none could be cross-validated on these points: {scores}")
    return min(ok, key=ok.get), scores


class OpsModel:
    """OPs of a uniformly scaled family with a fixed stem, C(w, d) = k0 + k1 w + k2 w^2 + k3 d w^2:
    the stem (constant), the stem -> first-stage conv and the head (~ w), the half-width first
    conv of each later stage (~ w^2) and the body (~ d w^2). Exact up to width rounding. The
    paper's idealised budget C = d w^2 (Eq. 6) is ``IDEAL``."""

    def __init__(self, coef):
        self.coef = np.asarray(coef, float)
        if self.coef.shape != (4,) or not np.all(np.isfinite(self.coef)) or self.coef[3] <= 0:
            raise ValueError(f"coef: got {coef!r}; allowed: 4 finite numbers, the d w^2 one > 0")

    @staticmethod
    def basis(w, d):
        """Design matrix columns (1, w, w^2, d w^2)."""
        w, d = np.asarray(w, float), np.asarray(d, float)
        return np.stack(np.broadcast_arrays(np.ones_like(w), w, w ** 2, d * w ** 2), axis=-1)

    @classmethod
    def fit(cls, w, d, ops) -> "OpsModel":
        """Least-squares coefficients (relative error) from counted OPs of some (w, d) configs."""
        w, d, ops = _as_points(w, d, ops)
        if len(set(zip(w.tolist(), d.tolist()))) < 4 or np.any(ops <= 0):
            raise ValueError("ops: got fewer than 4 distinct (w, d) configs or OPs <= 0; allowed: "
                             ">= 4 configs with positive OPs to fit the 4 coefficients")
        coef, *_ = np.linalg.lstsq(cls.basis(w, d) / ops[:, None], np.ones_like(ops), rcond=None)
        return cls(coef)

    def __call__(self, w, d):
        return self.basis(w, d) @ self.coef

    def grad(self, w, d):
        """(dC/dw, dC/dd)."""
        w, d = np.asarray(w, float), np.asarray(d, float)
        k = self.coef
        return k[1] + 2 * (k[2] + k[3] * d) * w, k[3] * w ** 2

    def width_at(self, d, budget: float):
        """The positive w with C(w, d) = budget."""
        k = self.coef
        q = k[2] + k[3] * np.asarray(d, float)
        with np.errstate(invalid="ignore"):  # no real root: budget below the fixed cost -> nan
            return (-k[1] + np.sqrt(k[1] ** 2 - 4 * q * (k[0] - budget))) / (2 * q)


IDEAL = OpsModel((0, 0, 0, 1.0))


def iso_width(d, w0: float, d0: float, ops: OpsModel = IDEAL):
    """Width on the iso-OPs curve through N[w0, d0]; w0 sqrt(d0 / d) for the ideal budget."""
    return ops.width_at(d, float(ops(w0, d0)))


def marginal_gap(fit: Fit, d, w0: float, d0: float, ops: OpsModel = IDEAL):
    """m_d - m_w: per-OP marginal gain of depth minus that of width, on the iso-OPs curve."""
    d = np.asarray(d, float)
    w = iso_width(d, w0, d0, ops)
    fw, fd = fit.grad(w, d)
    cw, cd = ops.grad(w, d)
    return fd / cd - fw / cw


def _check_range(d_range):
    lo, hi = (float(v) for v in d_range)
    if not (0 < lo < hi):
        raise ValueError(f"d_range: got {d_range!r}; allowed: (lo, hi) with 0 < lo < hi")
    return lo, hi


def optimal_depth(fit: Fit, w0: float, d0: float, d_range, ops: OpsModel = IDEAL) -> dict:
    """Depth maximising the fitted G on the iso-OPs curve through N[w0, d0], within d_range."""
    lo, hi = _check_range(d_range)
    grid = np.geomspace(lo, hi, 801)
    g = fit.predict(iso_width(grid, w0, d0, ops), grid)
    i = int(np.argmax(g))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    r = minimize_scalar(lambda x: -float(fit.predict(iso_width(x, w0, d0, ops), x)), bounds=(a, b),
                        method="bounded", options={"xatol": 1e-6})
    d_opt = float(r.x) if -r.fun >= g[i] else float(grid[i])
    tol = 1e-3 * (hi - lo)
    return {"d_opt": d_opt, "w_opt": float(iso_width(d_opt, w0, d0, ops)),
            "G_opt": float(fit.predict(iso_width(d_opt, w0, d0, ops), d_opt)),
            "at_boundary": bool(d_opt - lo < tol or hi - d_opt < tol)}


def balance_depth(fit: Fit, w0: float, d0: float, d_range, ops: OpsModel = IDEAL) -> float | None:
    """Eq. 11/21: depth where m_d falls to m_w on the iso-OPs curve; None if no crossing."""
    lo, hi = _check_range(d_range)
    grid = np.geomspace(lo, hi, 401)
    gap = marginal_gap(fit, grid, w0, d0, ops)
    cross = np.nonzero((gap[:-1] > 0) & (gap[1:] <= 0))[0]
    if len(cross) == 0:
        return None
    k = int(cross[0])
    if gap[k + 1] == 0:
        return float(grid[k + 1])
    return float(brentq(lambda x: float(marginal_gap(fit, x, w0, d0, ops)), grid[k], grid[k + 1],
                        xtol=1e-8))


def slice_optimum(d, y) -> dict:
    """Model-free optimum along one iso-OPs slice: argmax of depth means and the vertex of a
    quadratic in ln d (needs >= 3 depths; clipped to the observed range)."""
    d, y = np.asarray(d, float).ravel(), np.asarray(y, float).ravel()
    if len(d) != len(y):
        raise ValueError(f"d, y: got lengths {len(d)} and {len(y)}; allowed: equal lengths")
    depths = np.unique(d)
    if len(depths) < MIN_LEVELS:
        raise ValueError(f"d: got {len(depths)} distinct depths on the slice; allowed: >= "
                         f"{MIN_LEVELS} to locate an optimum")
    means = np.array([y[d == v].mean() for v in depths])
    c2, c1, _ = np.polyfit(np.log(d), y, 2)
    lo, hi = np.log(depths[0]), np.log(depths[-1])
    if c2 < 0:
        x = float(np.clip(-c1 / (2 * c2), lo, hi))
    else:  # convex or flat: the best end of the parabola
        x = lo if np.polyval([c2, c1, 0], lo) >= np.polyval([c2, c1, 0], hi) else hi
    return {"d_argmax": float(depths[int(np.argmax(means))]), "d_vertex": float(np.exp(x)),
            "concave": bool(c2 < 0), "at_boundary": bool(x in (lo, hi))}


def bootstrap(groups: dict, stat: Callable[[dict], dict], n_boot: int, seed: int,
              level: float = 0.95) -> dict:
    """Percentile CIs of ``stat`` when each group's values (seeds of one config) are resampled
    with replacement. Returns {key: (estimate, lo, hi, n_ok)}; failed draws are dropped. When
    any group has one value (a config with one seed) its value repeats in every draw, so the
    interval would leave out that config's seed noise: the CI is NaN and n_ok 0 rather than an
    interval that is too narrow (the same rule as the error-accumulation fits)."""
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot: got {n_boot!r}; allowed: a positive int")
    if not 0 < level < 1:
        raise ValueError(f"level: got {level!r}; allowed: 0 < level < 1")
    rng = np.random.default_rng(seed)
    base = stat(groups)
    if any(len(v) < 2 for v in groups.values()):
        return {k: (v, float("nan"), float("nan"), 0) for k, v in base.items()}
    draws: dict[str, list] = {k: [] for k in base}
    keys = sorted(groups, key=repr)
    for _ in range(n_boot):
        res = {k: np.asarray(groups[k])[rng.integers(0, len(groups[k]), len(groups[k]))]
               for k in keys}
        try:
            out = stat(res)
        except (ValueError, RuntimeError):
            continue
        for k, v in out.items():
            if k in draws and v is not None and np.isfinite(v):
                draws[k].append(float(v))
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    result = {}
    for k, v in base.items():
        lo, hi = np.percentile(draws[k], q) if draws[k] else (np.nan, np.nan)
        result[k] = (v, float(lo), float(hi), len(draws[k]))
    return result


def fit_properties(fit: Fit, w0: float, d0: float, ops: OpsModel = IDEAL, n: int = 25) -> dict:
    """Share of the fitted domain where properties a)-c) of Sec. 3.3 hold, and d) on the
    iso-OPs curve through N[w0, d0]: a) f_w > 0 and f_d > 0; b) m_d > m_w at the shallow end
    of the curve; c) f_ww < 0 and f_dd < 0; d) an interior optimum on the curve."""
    ws = np.geomspace(*fit.w_range, n)
    ds = np.geomspace(*fit.d_range, n)
    W, D = np.meshgrid(ws, ds)
    fw, fd = fit.grad(W, D)
    fww, fdd = fit.curvature(W, D)
    opt = optimal_depth(fit, w0, d0, fit.d_range, ops)
    return {"a_fw_pos": float(np.mean(fw > 0)), "a_fd_pos": float(np.mean(fd > 0)),
            "b_depth_pays_more_at_dmin": bool(marginal_gap(fit, fit.d_range[0], w0, d0, ops) > 0),
            "c_fww_neg": float(np.mean(fww < 0)), "c_fdd_neg": float(np.mean(fdd < 0)),
            "d_interior_optimum": not opt["at_boundary"]}
