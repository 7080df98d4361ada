"""Depth/width reshaping: pure functions from spec to spec (Section 4 of the DWR paper).

Rounding rule (explicit, used everywhere): a scaled width is ``round_width(w * m)``, i.e. the
nearest multiple of ``divisor`` (default 1) with halves rounded up, never below ``divisor``.
Depth rule: a stage of d blocks becomes d/s blocks; d/s must be a whole number, except that a
stage of a single block keeps it (a stage cannot lose its only block). The first blocks of
each stage are kept, so non-uniform (pruned) specs reshape too.
The stem (first, real-valued layer) keeps its width: the paper leaves the real first and last
layers alone; ``align=True`` adds the alignment conv (Sec. 4.1) that maps the new last width
back to the original, so the real classifier sees the same number of channels.
"""
from __future__ import annotations

import math
from fractions import Fraction

from .spec import BaseSpec, ResNetSpec, VGGSpec

__all__ = ["round_width", "scale", "naive_reshape", "widen", "valid_s"]

_EPS = 1e-9


def round_width(x: float, divisor: int = 1) -> int:
    """Nearest multiple of ``divisor`` to x (halves up), at least ``divisor``."""
    if not (isinstance(divisor, int) and divisor > 0):
        raise ValueError(f"divisor: got {divisor!r}; allowed: a positive int")
    return max(divisor, int(math.floor(x / divisor + 0.5)) * divisor)


def _new_depth(d: int, s: float) -> int:
    if d == 1:
        return 1
    q = d / s
    if abs(q - round(q)) > _EPS or round(q) < 1:
        raise ValueError(f"s: got {s!r}; a stage of {d} blocks cannot be divided by it "
                         f"(d/s = {q:.3g} is not a positive whole number)")
    return int(round(q))


def _check_factor(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or math.isinf(v):
        raise ValueError(f"{name}: got {v!r}; allowed: a positive finite number")


def scale(spec: BaseSpec, width_mult: float = 1.0, depth_div: float = 1.0, align: bool = False,
          divisor: int = 1) -> BaseSpec:
    """N[w, d] -> N[width_mult * w, d / depth_div] (see module doc for the rules)."""
    _check_factor("width_mult", width_mult)
    _check_factor("depth_div", depth_div)
    rw = lambda w: round_width(w * width_mult, divisor)
    if isinstance(spec, ResNetSpec):
        stages = tuple(tuple(tuple(rw(w) for w in blk) for blk in st[:_new_depth(len(st), depth_div)])
                       for st in spec.stages)
    elif isinstance(spec, VGGSpec):
        stages = tuple(tuple(rw(w) for w in st[:_new_depth(len(st), depth_div)]) for st in spec.stages)
    else:
        raise ValueError(f"spec: got {type(spec).__name__}; allowed: ResNetSpec or VGGSpec")
    new = spec.replace(stages=stages)
    if align and new.align_width is None and new.widths[-1] != spec.widths[-1]:
        new = new.replace(align_width=spec.widths[-1])
    return new


def naive_reshape(spec: BaseSpec, s: float, align: bool = True, divisor: int = 1) -> BaseSpec:
    """N[w, d] -> N[sqrt(s) w, d/s]: about the same OPs, activations / sqrt(s) (Table 3)."""
    _check_factor("s", s)
    return scale(spec, math.sqrt(s), s, align=align, divisor=divisor)


def widen(spec: BaseSpec, s: float, align: bool = True, divisor: int = 1) -> BaseSpec:
    """N[w, d] -> N[s w, d/s]: the over-wide net that DWR's pruning starts from (Sec. 4.2)."""
    _check_factor("s", s)
    return scale(spec, s, s, align=align, divisor=divisor)


def valid_s(spec: BaseSpec) -> list[float]:
    """All s > 1 that keep every stage's block count whole (Table 2 of the paper)."""
    depths = [d for d in spec.depths if d > 1]
    cands = {Fraction(d, k) for d in depths for k in range(1, d)}
    ok = [c for c in cands if all((Fraction(d) / c).denominator == 1 for d in depths)]
    return sorted(float(c) for c in ok)
