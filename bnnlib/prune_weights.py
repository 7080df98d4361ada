"""Weight inheritance for pruned specs (optional; DWR retrains pruned nets from scratch).

``inherit_weights(source, pruned, index_map)`` copies, for every tensor of the pruned net, the
slice of the source tensor at the kept channels (``bnnlib.prune`` index map): conv weights by
(output, input) channels, BN / activation / binarizer parameters by their channel. Tensors
that exist in only one of the nets (a shortcut adapter that appears or disappears when widths
change) keep their fresh initialisation and are listed in the returned report. Across a 'pad'
adapter whose widths changed, channel positions shift, so inheritance is a warm start only.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .prune import _check_spec, slots
from .spec import BaseSpec, VGGSpec

__all__ = ["channel_plan", "inherit_weights"]


def _full(n):
    return np.arange(n)


def channel_plan(spec: BaseSpec, index_map: dict) -> dict[str, tuple]:
    """Module-name prefix -> (kept input channels, kept output channels) in the SOURCE net."""
    _check_spec(spec)
    idx = {sl.name: np.asarray(index_map.get(sl.name, _full(sl.width))) for sl in slots(spec)}
    cur = _full(spec.stem_width)
    plan = {"stem": (_full(3), cur)}
    if isinstance(spec, VGGSpec):
        for sl in slots(spec):
            i, k = sl.pos
            out = idx[sl.name]
            plan[f"stages.{i}.{2 * k}"] = (cur, out)
            plan[f"stages.{i}.{2 * k + 1}"] = (out, out)
            cur = out
    else:
        for sl in slots(spec):
            i, j, k = sl.pos
            out = idx[sl.name]
            if spec.block == "bireal":
                p = f"stages.{i}.{j}.{k}"
                for sub in ("body", "shortcut", "act"):
                    plan[f"{p}.{sub}"] = (cur, out)
            else:
                p = f"stages.{i}.{j}"
                if k == 0:
                    plan[f"{p}.conv1"], plan[f"{p}.act1"], blk_in = (cur, out), (out, out), cur
                else:
                    plan[f"{p}.conv2"], plan[f"{p}.act2"] = (cur, out), (out, out)
                    plan[f"{p}.shortcut"] = (blk_in, out)
            cur = out
    return _plan_head(spec, plan, cur)


def _plan_head(spec, plan, cur):
    if spec.align_width is not None:
        plan["head.align"] = (cur, _full(spec.align_width))
        cur = _full(spec.align_width)
    if isinstance(spec, VGGSpec):
        sp = (spec.input_size // 2 ** (len(spec.stages) + int(spec.stem_pool))) ** 2
        cur = (cur[:, None] * sp + np.arange(sp)[None, :]).ravel()  # flatten is channel-major
    plan["head.bn"] = (cur, cur)
    plan["head.fc.0"] = (cur, None)
    return plan


def _slice(name: str, t_src: torch.Tensor, t_dst: torch.Tensor, io) -> torch.Tensor:
    """The part of t_src that t_dst inherits; dims that differ are indexed by in/out channels."""
    out = t_src
    for d in range(t_dst.dim()):
        if out.shape[d] == t_dst.shape[d]:
            continue
        if "input_binarizer" in name or (t_dst.dim() >= 2 and d == 1):
            ix = io[0]
        elif name.startswith("head.bn") or name.startswith("head.fc.0"):
            ix = io[0]
        else:
            ix = io[1]
        if ix is None or len(ix) != t_dst.shape[d]:
            raise ValueError(f"index_map: cannot map {name} dim {d} ({tuple(t_src.shape)} -> "
                             f"{tuple(t_dst.shape)})")
        out = out.index_select(d, torch.as_tensor(ix, dtype=torch.long))
    return out


def _check_widths(src_spec, dst_spec, index_map) -> None:
    """The index map must name, for every slot of the source, as many channels as the pruned
    net has there, each a valid source channel."""
    src_sl, dst_sl = slots(src_spec), slots(dst_spec)
    if [s.name for s in src_sl] != [s.name for s in dst_sl]:
        raise ValueError("pruned: got a net whose layers differ from the source's; allowed: the "
                         "source spec with other widths")
    for a, b in zip(src_sl, dst_sl):
        ix = np.asarray(index_map.get(a.name, np.arange(a.width)))
        if len(ix) != b.width or (len(ix) and (ix.min() < 0 or ix.max() >= a.width)):
            raise ValueError(f"index_map[{a.name!r}]: got {len(ix)} channels; allowed: {b.width} "
                             f"distinct ids in [0, {a.width})")


def inherit_weights(source: nn.Module, pruned: nn.Module, index_map: dict) -> dict:
    """Copy the kept slices of ``source`` (unpruned) into ``pruned``; returns which keys were
    inherited and which kept their fresh init (adapters that exist only in one net)."""
    _check_widths(source.spec, pruned.spec, index_map)
    plan = channel_plan(source.spec, index_map)
    src, new = source.state_dict(), {}
    report = {"inherited": [], "fresh": []}
    for name, t in pruned.state_dict().items():
        pre = max((p for p in plan if name.startswith(p + ".")), key=len, default=None)
        if name not in src or src[name].dim() != t.dim():
            report["fresh"].append(name)
            continue
        if pre is None:
            if src[name].shape != t.shape:
                raise ValueError(f"index_map: no channel plan for {name}")
            new[name] = src[name].clone()
        else:
            new[name] = _slice(name, src[name], t, plan[pre]).clone()
        report["inherited"].append(name)
    pruned.load_state_dict(new, strict=False)
    return report
