"""Fits of the accumulated error phi(d) (Eq. 14) against depth d (number of binary layers).

Forms (two parameters each, plus one three-parameter saturating form):
  linear       phi = a + b d
  power        phi = a d^b          (least squares in log-log space; needs phi > 0)
  log          phi = a + b ln d
  saturating   phi = c (1 - exp(-d / tau)) + a   (error that stops growing)
Forms are compared by leave-one-depth-out RMSE (every point at the held-out depth is
predicted from a fit on the other depths). Confidence intervals come from a bootstrap over
seeds: at each depth the points (one per seed) are resampled with replacement.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["FORMS", "fit_form", "predict", "loo_rmse", "fit_phi", "MIN_DEPTHS"]

FORMS = ("linear", "power", "log", "saturating")
MIN_DEPTHS = 3


def _check(d, y):
    d, y = np.asarray(d, dtype=float), np.asarray(y, dtype=float)
    if d.shape != y.shape or d.ndim != 1:
        raise ValueError(f"d/y: got shapes {d.shape} and {y.shape}; allowed: equal 1-D shapes")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(y))) or np.any(d <= 0):
        raise ValueError("d/y: got non-finite values or d <= 0; allowed: finite y, d > 0")
    n_depths = len(np.unique(d))
    if n_depths < MIN_DEPTHS:
        raise ValueError(f"d: got {n_depths} distinct depths; allowed: at least {MIN_DEPTHS} "
                         "(a held-out depth needs two others to fit a 2-parameter form)")
    return d, y


def _saturating(d, a, c, tau):
    return a + c * (1.0 - np.exp(-d / tau))


def _sat_sse(d, y, taus):
    """SSE and (a, c) of the best a + c (1 - exp(-d / tau)) for each tau (closed form)."""
    z = 1.0 - np.exp(-d[None, :] / np.asarray(taus, float)[:, None])
    zc, yc = z - z.mean(axis=1, keepdims=True), y - y.mean()
    c = (zc @ yc) / np.maximum((zc ** 2).sum(axis=1), 1e-300)
    a = y.mean() - c * z.mean(axis=1)
    sse = ((y[None, :] - a[:, None] - c[:, None] * z) ** 2).sum(axis=1)
    return sse, a, c


def _fit_saturating(d, y) -> np.ndarray:
    """Profile least squares: (a, c) are linear given tau; tau from a log grid, refined."""
    taus = np.geomspace(0.05 * d.min(), 100.0 * d.max(), 120)
    sse = _sat_sse(d, y, taus)[0]
    i = int(np.argmin(sse))
    lo, hi = np.log(taus[max(i - 1, 0)]), np.log(taus[min(i + 1, len(taus) - 1)])
    r = minimize_scalar(lambda lt: float(_sat_sse(d, y, [np.exp(lt)])[0][0]), bounds=(lo, hi),
                        method="bounded", options={"xatol": 1e-4})
    tau = float(np.exp(r.x)) if r.fun <= sse[i] else float(taus[i])
    _, a, c = _sat_sse(d, y, [tau])
    return np.array([a[0], c[0], tau])


def fit_form(form: str, d, y) -> np.ndarray | None:
    """Least-squares parameters of ``form`` (None where the form cannot be fitted)."""
    d, y = np.asarray(d, float), np.asarray(y, float)
    if form == "linear":
        return np.polyfit(d, y, 1)[::-1]
    if form == "log":
        return np.polyfit(np.log(d), y, 1)[::-1]
    if form == "power":
        if np.any(y <= 0):
            return None
        la, b = np.polyfit(np.log(d), np.log(y), 1)[::-1]
        return np.array([np.exp(la), b])
    if form == "saturating":
        if len(np.unique(d)) < 4:
            return None  # 3 parameters: needs 4 depths to leave one out
        return _fit_saturating(d, y)
    raise ValueError(f"form: got {form!r}; allowed: {FORMS}")


def predict(form: str, params, d) -> np.ndarray:
    """phi(d) for fitted ``params``."""
    d = np.asarray(d, float)
    if form == "linear":
        return params[0] + params[1] * d
    if form == "log":
        return params[0] + params[1] * np.log(d)
    if form == "power":
        return params[0] * d ** params[1]
    if form == "saturating":
        return _saturating(d, *params)
    raise ValueError(f"form: got {form!r}; allowed: {FORMS}")


def loo_rmse(form: str, d, y) -> float | None:
    """Leave-one-depth-out RMSE over all points (None if some fold cannot be fitted)."""
    d, y = _check(d, y)
    err = []
    for u in np.unique(d):
        hold = d == u
        p = fit_form(form, d[~hold], y[~hold])
        if p is None:
            return None
        err.append((predict(form, p, d[hold]) - y[hold]) ** 2)
    return float(np.sqrt(np.concatenate(err).mean()))


def _resample(d, y, rng):
    """Bootstrap over seeds: resample the points of each depth with replacement."""
    idx = np.concatenate([rng.choice(np.flatnonzero(d == u), size=int((d == u).sum()))
                          for u in np.unique(d)])
    return d[idx], y[idx]


def fit_phi(d, y, forms=FORMS, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
            grid=None) -> dict:
    """Fit every form; held-out RMSE; bootstrap CIs of parameters and of the fitted curve.

    Returns {"n_points", "depths", "replicated", "best" (lowest held-out RMSE), "forms":
    {form: {...}}}; each form has "params", "param_ci", "loo_rmse", "grid", "band_lo",
    "band_hi". The bootstrap resamples seeds within each depth, so with a single point at some
    depth it cannot measure spread: then ``replicated`` is False and the CIs and bands are None
    (not a zero-width interval that would read as certainty).
    """
    d, y = _check(d, y)
    for f in forms:
        if f not in FORMS:
            raise ValueError(f"forms: got {f!r}; allowed: {FORMS}")
    if not (isinstance(n_boot, int) and n_boot >= 10):
        raise ValueError(f"n_boot: got {n_boot!r}; allowed: an int >= 10")
    rng = np.random.default_rng(seed)
    grid = np.linspace(d.min(), d.max(), 50) if grid is None else np.asarray(grid, float)
    replicated = bool(min((d == u).sum() for u in np.unique(d)) >= 2)
    boots = [_resample(d, y, rng) for _ in range(n_boot)] if replicated else []
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    out = {"n_points": int(d.size), "depths": sorted(float(u) for u in np.unique(d)),
           "replicated": replicated, "level": level, "n_boot": n_boot, "forms": {}}
    for f in forms:
        p = fit_form(f, d, y)
        if p is None:
            out["forms"][f] = None
            continue
        bp = [fit_form(f, bd, by) for bd, by in boots]
        bp = np.array([b for b in bp if b is not None])
        curves = np.array([predict(f, b, grid) for b in bp])
        ci = len(bp) > 0
        out["forms"][f] = {
            "params": [float(v) for v in p],
            "param_ci": [[float(v) for v in np.percentile(bp[:, j], q)] if ci else [None, None]
                         for j in range(len(p))],
            "loo_rmse": loo_rmse(f, d, y), "n_boot_ok": int(len(bp)),
            "grid": grid.tolist(), "fit": predict(f, p, grid).tolist(),
            "band_lo": np.percentile(curves, q[0], axis=0).tolist() if ci else None,
            "band_hi": np.percentile(curves, q[1], axis=0).tolist() if ci else None}
    scored = {f: v["loo_rmse"] for f, v in out["forms"].items() if v and v["loo_rmse"] is not None}
    out["best"] = min(scored, key=scored.get) if scored else None
    return out
