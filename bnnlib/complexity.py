"""Binary-aware complexity: FLOPs, BOPs, OPs, parameters, size in bits, activations.

Counted once, here, for every model: the model is built on the ``meta`` device (no memory,
no arithmetic) and one forward pass of a single image is traced with hooks, so the count is
of the network that is actually built and cannot drift from the model code.

Conventions (documented defaults; each switchable through ``Conventions``):
- FLOPs = real-valued multiply-accumulates (MACs), the BNN literature's convention (FP
  ResNet-18 "1.8 GFLOPs"). BOPs = MACs of layers whose input AND weight are both 1-bit.
  OPs = BOPs / 64 + FLOPs (ReActNet; DWR Sec. 3.2). A layer with only one binary operand
  counts as real (FLOPs).
- The first conv, the last FC, downsampling 1x1 convs and anything else with identity
  binarizers are real: the model decides, the counter only reads ``is_binary``.
- Not counted by default (Bi-Real / ReActNet convention, 1.63e8 OPs for Bi-Real-18): BN,
  activations (PReLU, RPReLU, Hardtanh, ReLU, learnable biases, RSign thresholds), pooling,
  conv/linear bias adds, the per-channel scale of scaled weights, residual additions.
  ``Conventions(count_bn=True, ...)`` adds them as one real op per output element (BN folded
  into one multiply-add; pooling as one op per input element).
- params: every learnable parameter; params_binary = weights of binary layers, params_real =
  the rest (BN affine, biases, real layers, thresholds). size_bits = params_binary + 32 *
  params_real.
- acts: number of elements of every conv and linear output for one image (Dollar et al.,
  "Fast and Accurate Model Scaling", CVPR 2021).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from . import layers as L
from .models import build, get_spec, list_models
from .models.zoo import DWR_PAIRS
from .reshape import naive_reshape
from .spec import BaseSpec

__all__ = ["Conventions", "Report", "count", "ops", "dwr_table", "TOTAL_KEYS"]

TOTAL_KEYS = ("flops", "bops", "ops", "params", "params_binary", "params_real", "size_bits", "acts")
_ACT_TYPES = (nn.PReLU, nn.ReLU, nn.Hardtanh, L.LearnableBias)
_POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class Conventions:
    """Which extra operations count (all off = Bi-Real/ReActNet convention)."""

    count_bn: bool = False
    count_act: bool = False
    count_pool: bool = False
    count_bias: bool = False
    count_scale: bool = False
    bops_per_op: int = 64

    def __post_init__(self):
        for k, v in asdict(self).items():
            if k == "bops_per_op":
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise ValueError(f"bops_per_op: got {v!r}; allowed: a positive int")
            elif not isinstance(v, bool):
                raise ValueError(f"{k}: got {v!r}; allowed: True or False")


@dataclass
class Report:
    """Per-layer rows and totals for one model (one image)."""

    layers: list = field(default_factory=list)
    totals: dict = field(default_factory=dict)

    def table(self) -> str:
        """Fixed-width per-layer table followed by the totals."""
        hdr = f"{'layer':44s} {'type':14s} {'bin':>3s} {'out shape':>16s} {'MACs':>12s} {'params':>10s} {'acts':>10s}"
        lines = [hdr, "-" * len(hdr)]
        for r in self.layers:
            lines.append(f"{r['name'][:44]:44s} {r['type'][:14]:14s} {'B' if r['binary'] else '':>3s} "
                         f"{str(tuple(r['out_shape'])):>16s} {r['macs']:12,d} {r['params']:10,d} {r['acts']:10,d}")
        lines.append("-" * len(hdr))
        t = self.totals
        lines.append(f"FLOPs {t['flops']:.4g}  BOPs {t['bops']:.4g}  OPs {t['ops']:.4g}  params "
                     f"{t['params']:,} (binary {t['params_binary']:,}, real {t['params_real']:,})  "
                     f"size {t['size_bits'] / 8 / 2**20:.3f} MiB  acts {t['acts']:,}")
        return "\n".join(lines)


def _conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
    k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
    return int(out[0].numel() * k)


def _param_split(m: nn.Module) -> tuple[int, int]:
    """(binary, real) counts of m's own parameters and those of its binarizers."""
    binary, real = 0, 0
    for name, p in m.named_parameters():
        if name == "weight" and getattr(m, "is_binary", False):
            binary += p.numel()
        else:
            real += p.numel()
    return binary, real


def _is_counted_leaf(m: nn.Module) -> bool:
    """Modules that own their parameters for counting: convs/linears (with their binarizers)
    and every leaf not inside one of them."""
    return isinstance(m, (nn.Conv2d, nn.Linear)) or not any(True for _ in m.children())


def _static_rows(model: nn.Module) -> dict[str, dict]:
    """One row per counted module with its parameter split; no forward needed."""
    rows, skip = {}, ()
    for name, m in model.named_modules():
        if not name or (skip and name.startswith(skip)):
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            skip = name + "."
        elif not _is_counted_leaf(m):
            own = sum(p.numel() for p in m.parameters(recurse=False))
            if own:  # e.g. RPReLU's shifts: parameters held by a container
                rows[name] = _row(name, m, 0, own)
            continue
        b, r = _param_split(m) if _is_counted_leaf(m) else (0, 0)
        rows[name] = _row(name, m, b, r)
    return rows


def _row(name, m, b, r) -> dict:
    return {"name": name, "type": type(m).__name__, "binary": bool(getattr(m, "is_binary", False)),
            "in_shape": [], "out_shape": [], "macs": 0, "real_ops": 0, "acts": 0,
            "params_binary": b, "params_real": r, "params": b + r}


def _trace(model: nn.Module, input_size: int, conv: Conventions) -> list[dict]:
    rows = _static_rows(model)

    def hook(m, inp, out, row):
        row["in_shape"], row["out_shape"] = list(inp[0].shape[1:]), list(out.shape[1:])
        n_out = int(out[0].numel())
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            row["macs"] = _conv_macs(m, out) if isinstance(m, nn.Conv2d) else m.in_features * m.out_features
            row["acts"] = n_out
            row["real_ops"] += n_out if conv.count_bias and m.bias is not None else 0
            scaled = type(getattr(m, "weight_binarizer", None)).__name__ == "ScaledSign"
            row["real_ops"] += n_out if conv.count_scale and row["binary"] and scaled else 0
        elif isinstance(m, _BN_TYPES) and conv.count_bn:
            row["real_ops"] = n_out
        elif isinstance(m, _ACT_TYPES) and conv.count_act:
            row["real_ops"] = n_out
        elif isinstance(m, _POOL_TYPES) and conv.count_pool:
            row["real_ops"] = int(inp[0][0].numel())

    mods = dict(model.named_modules())
    handles = [mods[n].register_forward_hook(lambda m, i, o, r=row: hook(m, i, o, r))
               for n, row in rows.items()]
    was_training = model.training
    try:
        model.eval()
        dev = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device=dev))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return list(rows.values())


def _meta_model(obj, create_kwargs) -> tuple[nn.Module, int]:
    if isinstance(obj, str):
        spec = get_spec(obj, **create_kwargs)
    elif isinstance(obj, BaseSpec):
        spec = obj.replace(**create_kwargs) if create_kwargs else obj
    elif isinstance(obj, nn.Module):
        if create_kwargs:
            raise ValueError(f"create_kwargs: got {sorted(create_kwargs)} with a model; allowed: none")
        spec = getattr(obj, "spec", None)
        if spec is None:
            return copy.deepcopy(obj).to("meta"), 32
    else:
        raise ValueError(f"model: got {type(obj).__name__}; allowed: a registered name, a spec or an nn.Module")
    with torch.device("meta"):
        model = build(spec)
    return model, spec.input_size


def count(model, conventions: Conventions | None = None, **create_kwargs) -> Report:
    """Count FLOPs, BOPs, OPs, params, size and activations of a name, spec or module."""
    conv = conventions or Conventions()
    net, input_size = _meta_model(model, create_kwargs)
    rows = _trace(net, input_size, conv)
    flops = sum(r["macs"] for r in rows if not r["binary"]) + sum(r["real_ops"] for r in rows)
    bops = sum(r["macs"] for r in rows if r["binary"])
    pb = sum(r["params_binary"] for r in rows)
    pr = sum(r["params_real"] for r in rows)
    totals = {"flops": int(flops), "bops": int(bops), "ops": flops + bops / conv.bops_per_op,
              "params": pb + pr, "params_binary": pb, "params_real": pr, "size_bits": pb + 32 * pr,
              "acts": sum(r["acts"] for r in rows)}
    return Report(layers=[r for r in rows if r["macs"] or r["params"] or r["real_ops"]], totals=totals)


def ops(model, **kw) -> float:
    """OPs = BOPs/64 + FLOPs of a name, spec or module."""
    return count(model, **kw).totals["ops"]


def dwr_table() -> list[dict]:
    """Original vs naive-reshaped vs DWR rows for every backbone in DWR_PAIRS (BNN).

    OPs are given under two conventions: real-valued downsampling/adapter 1x1 convs (the
    default, Sec. 5.1 of the paper) and binary ones (``binary_shortcut=True``), because the
    budget verdict of some DWR backbones flips between the two.
    """
    rows = []
    for orig, (dwr_name, s) in DWR_PAIRS.items():
        variants = [(orig, "original", get_spec(orig))]
        if s != 1.0:
            variants.append((f"{orig} naive s={s:g}", "naive", naive_reshape(get_spec(orig), s)))
        variants.append((dwr_name, "DWR", get_spec(dwr_name)))
        base = count(variants[0][2]).totals
        base_bs = count(variants[0][2].replace(binary_shortcut=True)).totals["ops"]
        for label, kind, spec in variants:
            t = count(spec).totals
            ops_bs = count(spec.replace(binary_shortcut=True)).totals["ops"]
            rows.append({"backbone": orig, "model": label, "kind": kind, "s": s, "ops": t["ops"],
                         "params": t["params"], "acts": t["acts"], "ops_ratio": t["ops"] / base["ops"],
                         "params_ratio": t["params"] / base["params"], "acts_ratio": t["acts"] / base["acts"],
                         "within_budget": t["ops"] <= base["ops"], "ops_binary_shortcut": ops_bs,
                         "ops_ratio_binary_shortcut": ops_bs / base_bs,
                         "within_budget_binary_shortcut": ops_bs <= base_bs})
    return rows


def golden() -> dict:
    """Totals of every registered model, BNN and FP (the golden file's content)."""
    return {name: {kind: count(name, binary=b).totals for kind, b in (("bnn", True), ("fp", False))}
            for name in list_models()}


def _fmt_dwr_table(rows) -> str:
    out = ["| backbone | model | OPs (M) | params (M) | acts (M) | OPs ratio | params ratio | acts ratio "
           "| within budget | OPs ratio, binary 1x1 | within, binary 1x1 |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    yn = lambda b: "yes" if b else "NO"
    for r in rows:
        out.append(f"| {r['backbone']} | {r['model']} | {r['ops'] / 1e6:.2f} | {r['params'] / 1e6:.3f} | "
                   f"{r['acts'] / 1e6:.3f} | {r['ops_ratio']:.3f} | {r['params_ratio']:.3f} | "
                   f"{r['acts_ratio']:.3f} | {yn(r['within_budget'])} | "
                   f"{r['ops_ratio_binary_shortcut']:.3f} | {yn(r['within_budget_binary_shortcut'])} |")
    return "\n".join(out)


def main(argv=None) -> int:
    """CLI: per-layer table and totals of one model, the DWR table, or the golden file."""
    from .cli import Parser, fail
    p = Parser(prog="python -m bnnlib.complexity", example="python -m bnnlib.complexity resnet20 --fp --json",
               description=__doc__.split("\n")[0] + "\n\nCounts the BNN of a registered model by "
               "default (its binary layers as BOPs);\n--fp counts the full-precision model. "
               "OPs = BOPs/64 + FLOPs, for one image at the model's input size.")
    p.add_argument("model", nargs="?", help=f"registered model, one of {list_models()}; required "
                   "unless --table or --write-golden is given")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--binary", dest="binary", action="store_true", default=None,
                   help="count the BNN (what an unflagged run counts: the registered nets are BNNs)")
    g.add_argument("--fp", dest="binary", action="store_false",
                   help="count the full-precision model instead (every layer real: FLOPs only)")
    p.add_argument("--width-mult", type=float, default=1.0,
                   help="multiply every stage width, a number > 0")
    p.add_argument("--depth-div", type=float, default=1.0,
                   help="divide the blocks per stage, a number > 0 that divides the depths")
    p.add_argument("--json", action="store_true", help="print the totals as one JSON object")
    p.add_argument("--table", choices=["dwr"],
                   help="print a table instead of one model: 'dwr' = original vs naive vs DWR, every backbone")
    p.add_argument("--write-golden", metavar="PATH", help="write totals of every registered model "
                   "(BNN and FP) as JSON to PATH: the golden file the tests compare against")
    for c in ("bn", "act", "pool", "bias", "scale"):
        p.add_argument(f"--count-{c}", action="store_true", help=f"also count {c} ops (one real op "
                       "per element; the paper's convention leaves them out)")
    a = p.parse_args(argv)
    if a.table == "dwr":
        rows = dwr_table()
        print(json.dumps(rows, indent=1) if a.json else _fmt_dwr_table(rows))
        return 0
    if a.write_golden:
        with open(a.write_golden, "w") as f:
            json.dump(golden(), f, indent=1, sort_keys=True)
            f.write("\n")
        return 0
    if not a.model:
        p.error("the following arguments are required: model")
    if a.model not in list_models():
        return fail(f"model: got {a.model!r}; allowed: {list_models()}")
    conv = Conventions(count_bn=a.count_bn, count_act=a.count_act, count_pool=a.count_pool,
                       count_bias=a.count_bias, count_scale=a.count_scale)
    try:
        spec = get_spec(a.model, binary=a.binary, width_mult=a.width_mult, depth_div=a.depth_div)
        rep = count(spec, conventions=conv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rep.totals) if a.json else rep.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
