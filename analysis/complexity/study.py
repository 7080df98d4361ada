"""Complexity study (no training): Tables 1 and 3 of the DWR paper measured on real models.

Table 1 says that scaling depth by s multiplies OPs, parameters and activations by s, and
scaling width by sqrt(s) multiplies OPs and parameters by s but activations only by sqrt(s);
Table 3 that the naive reshape N[w, d] -> N[sqrt(s) w, d/s] keeps OPs and parameters and
divides activations by sqrt(s). Those are statements about the scaled body; the real stem and
head, width rounding and the BNN mix OPs = BOPs/64 + FLOPs make whole models deviate, so every
ratio is measured twice: on the body (the ``stages`` layers) and on the whole model.
"""
from __future__ import annotations

import functools
import math

import pandas as pd

from bnnlib.complexity import Conventions, count
from bnnlib.models import get_spec, list_models
from bnnlib.reshape import naive_reshape, scale, valid_s

from .paper import PREDICTED

__all__ = ["scaling_rows", "QUANTITIES", "PRECISIONS", "ALL_EXTRAS"]

QUANTITIES = ("ops", "params", "acts")
PRECISIONS = {"fp": False, "bnn": True}
ALL_EXTRAS = Conventions(count_bn=True, count_act=True, count_pool=True, count_bias=True,
                         count_scale=True)


@functools.lru_cache(maxsize=256)
def _count(spec, conventions: Conventions | None = None):
    """``count`` memoised per (frozen, hashable) spec: the same model recurs across rows."""
    return count(spec, conventions)


def _measure(spec) -> dict[str, dict[str, float]]:
    """OPs/params/acts of the whole model and of its body (the ``stages`` layers)."""
    rep = _count(spec)
    body = [r for r in rep.layers if r["name"].startswith("stages.")]
    bops = sum(r["macs"] for r in body if r["binary"])
    flops = sum(r["macs"] for r in body if not r["binary"]) + sum(r["real_ops"] for r in body)
    return {"whole": {q: float(rep.totals[q]) for q in QUANTITIES},
            "body": {"ops": flops + bops / 64, "params": float(sum(r["params"] for r in body)),
                     "acts": float(sum(r["acts"] for r in body))}}


def _check_inputs(models: list[str], factors: list[float], precisions: list[str]) -> None:
    for m in models:
        if m not in list_models():
            raise ValueError(f"models: got {m!r}; allowed: {list_models()}")
    for s in factors:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 1:
            raise ValueError(f"factors: got {s!r}; allowed: numbers > 1")
    for p in precisions:
        if p not in PRECISIONS:
            raise ValueError(f"precisions: got {p!r}; allowed: {list(PRECISIONS)}")


def _pairs(spec, s: float) -> list[tuple[str, object, object]]:
    """(transform, reference, scaled) spec pairs for one s; depth ones only where s divides."""
    pairs = [("width", spec, scale(spec, math.sqrt(s), 1.0))]
    if any(abs(s - v) < 1e-9 for v in valid_s(spec)):
        pairs.insert(0, ("depth", scale(spec, 1.0, s), spec))
        pairs.append(("naive", spec, naive_reshape(spec, s)))
    return pairs


def scaling_rows(models: list[str], factors: list[float], precisions: list[str]) -> pd.DataFrame:
    """Long table: one row per (model, precision, transform, s, scope, quantity)."""
    _check_inputs(models, factors, precisions)
    rows = []
    for model in models:
        for prec in precisions:
            spec = get_spec(model, binary=PRECISIONS[prec])
            for s in factors:
                for transform, ref, new in _pairs(spec, float(s)):
                    a, b = _measure(ref), _measure(new)
                    for scope in ("body", "whole"):
                        for q in QUANTITIES:
                            pred, meas = PREDICTED[transform][q](float(s)), b[scope][q] / a[scope][q]
                            rows.append({"model": model, "precision": prec, "transform": transform,
                                         "s": float(s), "scope": scope, "quantity": q,
                                         "predicted": pred, "measured": meas,
                                         "rel_error": meas / pred - 1.0,
                                         "widths_ref": "/".join(map(str, ref.widths)),
                                         "widths_new": "/".join(map(str, new.widths)),
                                         "depths_ref": "/".join(map(str, ref.depths)),
                                         "depths_new": "/".join(map(str, new.depths))})
    if not rows:
        raise ValueError("models/factors: no (model, s) pair to measure")
    return pd.DataFrame(rows)
