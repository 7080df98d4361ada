"""Clustering channel pruning to an OPs budget (DWR Sec. 4.2, after Chang et al. 2022).

Method. Forward hooks collect the output of every prunable conv (the stage convs; the real
stem, the real 1x1 shortcut adapters and the alignment conv are kept) on calibration images
drawn from the VALIDATION split of the training data (the authors calibrated on test images;
we never do: ``CalibrationSet`` only accepts validation indices). Each channel becomes a
vector, channels are clustered with scikit-learn's DBSCAN (cosine distance, min_samples 5)
and a layer keeps ``#clusters + #noise`` channels. One global ``eps`` (the authors used 0.021
on CIFAR) is found by bisection so that the pruned spec's OPs (``bnnlib.complexity``) lie in
``[budget * (1 - tol), budget]``.

Channel vector ('represent'): 'spatial' (default, the authors' code) = the channel's spatial
map averaged over the images (length H*W); 'images' = the channel's spatial mean on each
image (length N).

Residual policy (why widths are tied). An identity shortcut adds channel c of one conv's
output to channel c of another, so all convs on one residual path must share a width and the
same kept channels: in 'bireal' blocks every conv of a stage sits on the stage's residual
path, in 'basic' blocks the second conv of every block does; these form one group whose
width is ``tie`` ('max' default, or 'mean') of the members' kept counts. The inner conv of a
'basic' block and every VGG conv are free. Where a stage changes width, the model inserts a
shortcut adapter; a 'pad' (option-A, parameter-free) adapter cannot shrink channels and
would fall back to a real 1x1 conv, so with ``shortcut='pad'`` a group is never narrower
than the group feeding it (the stem for the first stage): ``monotone``. Adapters that remain
are in the OPs count, since the budget is checked on the built net.

Weight inheritance (optional; the paper retrains from scratch): ``bnnlib.prune_weights`` copies
the kept slices of every tensor. Channels kept per group are the cluster medoids plus the
noise points, ranked across the group's layers by how often they are kept (ties: lower
index). Across a changed 'pad' adapter, channel positions shift, so inheritance is only a
warm start there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.cluster import DBSCAN
from sklearn.metrics.pairwise import cosine_distances
from torch import nn

from .spec import BaseSpec, ResNetSpec, VGGSpec, spec_to_dict

__all__ = ["Slot", "slots", "CalibrationSet", "channel_features", "cluster_layer",
           "widths_for_eps", "prune_to_budget", "PruneResult", "REPRESENT", "TIES"]

REPRESENT = ("spatial", "images")
_EPS_MIN = 1e-9
TIES = ("max", "mean")


@dataclass(frozen=True)
class Slot:
    """One prunable conv: module name, group it is tied to, position in the spec."""

    name: str
    group: str
    pos: tuple
    width: int


def _check_spec(spec) -> None:
    if not isinstance(spec, (ResNetSpec, VGGSpec)):
        raise ValueError(f"spec: got {type(spec).__name__}; allowed: ResNetSpec or VGGSpec")


def slots(spec: BaseSpec) -> list[Slot]:
    """The prunable convs of ``spec`` in forward order, with their residual groups."""
    _check_spec(spec)
    out = []
    if isinstance(spec, VGGSpec):
        for i, st in enumerate(spec.stages):
            for k, w in enumerate(st):
                out.append(Slot(f"stages.{i}.{2 * k}.0", f"s{i}c{k}", (i, k), w))
        return out
    for i, st in enumerate(spec.stages):
        for j, blk in enumerate(st):
            for k, w in enumerate(blk):
                if spec.block == "bireal":
                    out.append(Slot(f"stages.{i}.{j}.{k}.body.0", f"s{i}", (i, j, k), w))
                else:
                    grp = f"s{i}" if k == 1 else f"s{i}b{j}c0"
                    out.append(Slot(f"stages.{i}.{j}.conv{k + 1}.0", grp, (i, j, k), w))
    return out


@dataclass(frozen=True)
class CalibrationSet:
    """Calibration images: indices into the TRAINING data that belong to its validation split."""

    indices: tuple
    seed: int
    split: str = "val"

    @classmethod
    def draw(cls, val_indices: Sequence[int], n: int, seed: int,
             test_indices: Sequence[int] | None = None) -> "CalibrationSet":
        """``n`` indices drawn without replacement from ``val_indices`` with ``default_rng(seed)``."""
        val = np.asarray(sorted(set(int(i) for i in val_indices)))
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(val):
            raise ValueError(f"n: got {n!r}; allowed: an int in [1, {len(val)}] (validation size)")
        if test_indices is not None and set(val.tolist()) & set(int(i) for i in test_indices):
            raise ValueError("val_indices: overlap test_indices; allowed: validation images only")
        pick = np.random.default_rng(seed).choice(len(val), size=n, replace=False)
        return cls(tuple(int(i) for i in np.sort(val[pick])), int(seed))

    def __post_init__(self):
        if self.split != "val":
            raise ValueError(f"split: got {self.split!r}; allowed: 'val' (never the test set)")

    def check_within(self, val_indices: Sequence[int]) -> None:
        """Raise ValueError unless every index is a validation index."""
        bad = sorted(set(self.indices) - set(int(i) for i in val_indices))
        if bad:
            raise ValueError(f"indices: {len(bad)} not in the validation split (e.g. {bad[:5]}); "
                             "allowed: validation indices only")


@torch.no_grad()
def channel_features(model: nn.Module, images: torch.Tensor, represent: str = "spatial",
                     batch_size: int = 100) -> dict[str, np.ndarray]:
    """Per prunable conv: a (channels, D) float64 array of channel vectors (see module doc)."""
    if represent not in REPRESENT:
        raise ValueError(f"represent: got {represent!r}; allowed: {REPRESENT}")
    spec, mods = model.spec, dict(model.named_modules())
    acc: dict[str, list] = {}
    handles = []
    for sl in slots(spec):
        m = mods[sl.name]
        if spec.binary and not getattr(m, "is_binary", False):
            raise ValueError(f"model: conv {sl.name!r} is not binary in a binary spec")

        def hook(_m, _i, out, key=sl.name):
            o = out.detach().double()
            acc.setdefault(key, []).append(o.sum(0).flatten(1) if represent == "spatial"
                                           else o.mean((2, 3)).T)
        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for b in range(0, len(images), batch_size):
            model(images[b:b + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    n = len(images)
    return {k: (sum(v) / n if represent == "spatial" else torch.cat(v, 1)).numpy()
            for k, v in acc.items()}


def cluster_layer(dist: np.ndarray, eps: float, min_samples: int = 5) -> tuple[int, np.ndarray]:
    """DBSCAN on a precomputed cosine-distance matrix: (#clusters + #noise, kept channel ids).

    Kept ids are the noise points plus each cluster's medoid (least mean distance to its
    members; ties: lower index)."""
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(dist).labels_
    keep = list(np.flatnonzero(labels == -1))
    for lab in sorted(set(labels.tolist()) - {-1}):
        mem = np.flatnonzero(labels == lab)
        keep.append(int(mem[np.argmin(dist[np.ix_(mem, mem)].mean(1))]))
    return len(keep), np.sort(np.asarray(keep, dtype=int))


def _distances(feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Cosine distance in [0, 2]; clip the float noise below 0 that DBSCAN would reject.
    return {k: np.clip(cosine_distances(v), 0.0, 2.0) for k, v in feats.items()}


def _group_indices(sl_list, keeps, width) -> np.ndarray:
    """Channels of a tied group: ranked by how many member layers keep them, then index."""
    n = sl_list[0].width
    votes = np.zeros(n)
    for sl in sl_list:
        votes[keeps[sl.name]] += 1
    order = sorted(range(n), key=lambda c: (-votes[c], c))
    return np.sort(np.asarray(order[:width], dtype=int))


def _groups(spec) -> dict[str, list[Slot]]:
    out: dict[str, list[Slot]] = {}
    for sl in slots(spec):
        out.setdefault(sl.group, []).append(sl)
    return out


def _cluster_all(spec, dists, eps, min_samples):
    counts, keeps = {}, {}
    for sl in slots(spec):
        counts[sl.name], keeps[sl.name] = cluster_layer(dists[sl.name], eps, min_samples)
    return counts, keeps


def _group_widths(spec, counts, tie) -> dict[str, int]:
    if tie not in TIES:
        raise ValueError(f"tie: got {tie!r}; allowed: {TIES}")
    agg = {}
    for g, mem in _groups(spec).items():
        c = [counts[s.name] for s in mem]
        agg[g] = max(c) if tie == "max" else max(1, round(sum(c) / len(c)))
    return agg


def _on_residual(spec, sl) -> bool:
    """Whether the conv's output is added to its stage's residual stream."""
    return spec.block == "bireal" or sl.pos[2] == 1


def _assemble(spec, gw, keeps, monotone):
    """Apply the monotone 'pad' rule to group widths; build the spec and index map."""
    if monotone is None:
        monotone = isinstance(spec, ResNetSpec) and spec.shortcut == "pad"
    gw, prev, index_map = dict(gw), getattr(spec, "stem_width", 1), {}
    for g, mem in _groups(spec).items():
        if monotone and isinstance(spec, ResNetSpec) and _on_residual(spec, mem[0]):
            gw[g] = max(gw[g], min(prev, mem[0].width))  # a 'pad' adapter cannot shrink
            prev = gw[g]
        idx = _group_indices(mem, keeps, gw[g])
        for sl in mem:
            index_map[sl.name] = idx
    return _respec(spec, slots(spec), gw), index_map


def widths_for_eps(spec: BaseSpec, dists: dict[str, np.ndarray], eps: float, min_samples: int = 5,
                   tie: str = "max", monotone: bool | None = None):
    """(pruned spec, index map, per-layer kept counts) for one eps."""
    counts, keeps = _cluster_all(spec, dists, eps, min_samples)
    new, idx = _assemble(spec, _group_widths(spec, counts, tie), keeps, monotone)
    return new, idx, counts


def _respec(spec, sls, gw):
    if isinstance(spec, VGGSpec):
        st = [list(s) for s in spec.stages]
        for sl in sls:
            st[sl.pos[0]][sl.pos[1]] = gw[sl.group]
        return spec.replace(stages=tuple(tuple(s) for s in st))
    st = [[list(b) for b in s] for s in spec.stages]
    for sl in sls:
        i, j, k = sl.pos
        st[i][j][k] = gw[sl.group]
    return spec.replace(stages=tuple(tuple(tuple(b) for b in s) for s in st))


@dataclass
class PruneResult:
    """Pruned spec, the eps found, OPs vs budget, per-layer counts and the index map."""

    spec: BaseSpec
    eps: float
    ops: float
    budget: float
    tol: float
    counts: dict
    index_map: dict
    calibration: dict
    history: list = field(default_factory=list)
    fill_t: float = 0.0

    @property
    def within_tolerance(self) -> bool:
        return self.budget * (1 - self.tol) <= self.ops <= self.budget

    def to_dict(self) -> dict:
        """JSON-ready record (the spec as data, so tables can be rebuilt without weights)."""
        return {"spec": spec_to_dict(self.spec), "eps": self.eps, "ops": self.ops,
                "budget": self.budget, "tol": self.tol, "within_tolerance": self.within_tolerance,
                "rel_gap": self.ops / self.budget - 1, "counts": dict(self.counts),
                "index_map": {k: [int(i) for i in v] for k, v in self.index_map.items()},
                "calibration": dict(self.calibration), "history": list(self.history),
                "fill_t": self.fill_t}


def _default_ops(spec):
    from .complexity import ops
    return ops(spec)


def _check_num(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or math.isnan(v):
        raise ValueError(f"{name}: got {v!r}; allowed: a number in [{lo}, {hi}]")


def prune_to_budget(model: nn.Module, images: torch.Tensor, budget: float, tol: float = 0.02,
                    calibration: CalibrationSet | None = None, represent: str = "spatial",
                    min_samples: int = 5, tie: str = "max", monotone: bool | None = None,
                    max_iter: int = 60, strict: bool = True, fill: bool = True,
                    ops_fn: Callable[[BaseSpec], float] | None = None) -> PruneResult:
    """Bisect one DBSCAN eps so the pruned spec's OPs land in [budget (1 - tol), budget].

    ``images`` are the calibration images (from ``calibration``, validation split). With
    ``strict`` a budget that cannot be met within ``tol`` raises RuntimeError."""
    _check_num("budget", budget, 1e-12, math.inf)
    _check_num("tol", tol, 0.0, 1.0)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise ValueError(f"min_samples: got {min_samples!r}; allowed: a positive int")
    if calibration is not None and not isinstance(calibration, CalibrationSet):
        raise ValueError(f"calibration: got {type(calibration).__name__}; allowed: CalibrationSet")
    if calibration is not None and len(calibration.indices) != len(images):
        raise ValueError(f"images: got {len(images)}; allowed: one per calibration index "
                         f"({len(calibration.indices)})")
    ops_fn = ops_fn or _default_ops
    dists = _distances(channel_features(model, images, represent))
    spec, hist = model.spec, []
    if monotone is None:
        monotone = isinstance(spec, ResNetSpec) and spec.shortcut == "pad"

    def at_eps(eps):
        counts, keeps = _cluster_all(spec, dists, eps, min_samples)
        return _try(eps, 0.0, _group_widths(spec, counts, tie), keeps, counts)

    def _try(eps, t, gw, keeps, counts):
        s, idx = _assemble(spec, gw, keeps, monotone)
        o = float(ops_fn(s))
        hist.append({"eps": eps, "t": t, "ops": o, "widths": [list(map(int, v)) for v in _flat(s)]})
        return {"eps": eps, "t": t, "spec": s, "idx": idx, "ops": o, "gw": gw, "keeps": keeps,
                "counts": counts}

    lo, hi = at_eps(_EPS_MIN), at_eps(2.0)  # cosine distance lives in [0, 2]; DBSCAN needs eps > 0
    if hi["ops"] > budget:
        raise ValueError(f"budget: got {budget:.6g} OPs; allowed: >= {hi['ops']:.6g}, the OPs with "
                         "every layer at its smallest width")
    best = lo if lo["ops"] <= budget else hi
    for _ in range(max_iter if best is hi else 0):
        if best["ops"] >= budget * (1 - tol) or hi["eps"] - lo["eps"] < 1e-12:
            break
        mid = at_eps(0.5 * (lo["eps"] + hi["eps"]))
        lo, hi = (lo, mid) if mid["ops"] <= budget else (mid, hi)
        best = hi
    if fill and best is hi and best["ops"] < budget * (1 - tol):
        best = _interpolate(lo, hi, budget, tol, _try)
    cal = {"n_images": len(images), "represent": represent, "min_samples": min_samples,
           "tie": tie, "monotone": monotone, "fill": fill}
    if calibration is not None:
        cal.update(split=calibration.split, seed=calibration.seed, indices=list(calibration.indices))
    res = PruneResult(best["spec"], best["eps"], best["ops"], float(budget), float(tol),
                      best["counts"], best["idx"], cal, hist, best["t"])
    if strict and not res.within_tolerance and best is not lo:
        raise RuntimeError(f"prune: OPs {res.ops:.6g} not within tol={tol} of budget {budget:.6g} "
                           f"(eps={res.eps:.4g}); raise tol or use fill=True")
    return res


def _interpolate(lo, hi, budget, tol, try_fn, steps: int = 30):
    """Group widths w_hi + floor(t (w_lo - w_hi)), bisecting t in [0, 1]: bridges one
    discrete jump of the clustering count between two adjacent eps (channels ranked by lo)."""
    best, a, b = hi, 0.0, 1.0
    for _ in range(steps):
        t = 0.5 * (a + b)
        gw = {g: hi["gw"][g] + math.floor(t * (lo["gw"][g] - hi["gw"][g])) for g in hi["gw"]}
        cur = try_fn(hi["eps"], t, gw, lo["keeps"], hi["counts"])
        if cur["ops"] <= budget:
            a, best = t, cur
            if cur["ops"] >= budget * (1 - tol):
                break
        else:
            b = t
    return best


def _flat(spec):
    return spec.stages if isinstance(spec, VGGSpec) else [sum(st, ()) for st in spec.stages]
