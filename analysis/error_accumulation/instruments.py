"""Hook-based instruments: per-layer quantization error and gradient error of a BNN.

Three networks share the latent weights of the model under study (deep copies, no edit to
model code):

* the BNN itself (its surrogate gradients: STE, ApproxSign, RSign, ...);
* the *shadow*: every 1-bit binarizer replaced by its real-valued argument (identity, or
  ``x - beta`` for RSign), i.e. the real-valued network the BNN approximates (Eq. 13's a_r);
* *smooth* references: every 1-bit binarizer replaced by ``tanh(k * arg)``, a network whose
  forward converges to the BNN's as k grows and whose exact gradient is well defined.

Every BinaryConv2d / BinaryLinear is probed with a forward pre-hook on its input. At binary
layers the local residual e^i = a_r^i - B(a_r^i) is measured; at every layer the drift
between the BNN's input and the shadow's input (relative L2, cosine, SQNR); after a backward
pass the BNN's activation and weight gradients are compared with each reference.

BatchNorm mode. ``bn_mode='batch'`` (default) normalises with the statistics of the measured
batch in every network: at initialisation the running statistics are (0, 1) and describe
neither network, and after training they describe the BNN only, so eval mode would compare the
shadow at a scale that is not its own. Batch statistics are deterministic for a fixed batch.
``bn_mode='eval'`` uses the running statistics of the model under study in all networks.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from bnnlib import binarizers
from bnnlib.layers import BinaryConv2d, BinaryLinear

__all__ = ["probed_layers", "shadow_model", "smooth_model", "SmoothSign", "RealArg", "measure",
           "BN_MODES", "SHADOW_MODES"]

BN_MODES = ("batch", "eval")
SHADOW_MODES = ("both", "activations", "weights")
_ROLES = {"both": ("input_binarizer", "weight_binarizer"), "activations": ("input_binarizer",),
          "weights": ("weight_binarizer",)}


def probed_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All BinaryConv2d/BinaryLinear modules of ``model`` as (name, module), registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (BinaryConv2d, BinaryLinear))]


def _threshold(b: nn.Module):
    """RSign's learnable threshold (broadcast later), else None."""
    return getattr(b, "beta", None)


def _shift(x: torch.Tensor, beta) -> torch.Tensor:
    return x if beta is None else x - beta.view((1, -1) + (1,) * (x.dim() - 2))


class RealArg(binarizers.Binarizer):
    """Real-valued stand-in for a 1-bit binarizer: returns the argument of its sign."""

    binary = False

    def __init__(self, original: nn.Module):
        super().__init__()
        self.original = original  # keeps RSign's beta (shared with the copy it came from)

    def forward(self, x):
        return _shift(x, _threshold(self.original))


class SmoothSign(binarizers.Binarizer):
    """tanh(k * arg) in place of sign(arg); exact autograd gradient k (1 - tanh^2).

    For weights the argument is w / alpha with alpha = mean |w| per output channel (detached),
    so that k is on the scale of the weights; ScaledSign keeps its alpha factor.
    """

    binary = False

    def __init__(self, k: float, original: nn.Module, role: str):
        super().__init__()
        if not (isinstance(k, (int, float)) and k > 0 and math.isfinite(k)):
            raise ValueError(f"k: got {k!r}; allowed: a positive finite number")
        self.k, self.original, self.role = float(k), original, role

    def forward(self, x):
        if self.role == "input_binarizer":
            return torch.tanh(self.k * _shift(x, _threshold(self.original)))
        alpha = x.detach().abs().mean(dim=tuple(range(1, x.dim())), keepdim=True).clamp_min(1e-12)
        y = torch.tanh(self.k * x / alpha)
        return alpha * y if isinstance(self.original, binarizers.ScaledSign) else y


def _swapped(model: nn.Module, make, roles=_ROLES["both"]) -> nn.Module:
    """Deep copy of ``model`` with each 1-bit binarizer in ``roles`` replaced by ``make(b, role)``."""
    out = copy.deepcopy(model)
    for _, layer in probed_layers(out):
        for role in roles:
            b = getattr(layer, role)
            if binarizers.is_binary(b):
                setattr(layer, role, make(b, role))
    return out


def shadow_model(model: nn.Module, mode: str = "both") -> nn.Module:
    """Real-valued shadow of ``model`` (same latent weights); ``mode`` picks what stays real."""
    if mode not in SHADOW_MODES:
        raise ValueError(f"shadow mode: got {mode!r}; allowed: {SHADOW_MODES}")
    return _swapped(model, lambda b, role: RealArg(b), _ROLES[mode])


def smooth_model(model: nn.Module, k: float) -> nn.Module:
    """Copy of ``model`` whose 1-bit binarizers are tanh(k * arg) (converges to it as k grows)."""
    return _swapped(model, lambda b, role: SmoothSign(k, b, role))


class _Stats:
    """Float64 running sums over batches for comparing a tensor with a reference."""

    def __init__(self):
        self.diff = self.ref = self.own = self.dot = 0.0

    def add(self, own: torch.Tensor, ref: torch.Tensor) -> None:
        own, ref = own.detach().double(), ref.detach().double()
        self.diff += float(((own - ref) ** 2).sum())
        self.ref += float((ref ** 2).sum())
        self.own += float((own ** 2).sum())
        self.dot += float((own * ref).sum())

    def drift(self) -> dict:
        """Relative L2 error, cosine and SQNR (dB; None when the error is exactly 0)."""
        rel = math.sqrt(self.diff / self.ref) if self.ref > 0 else None
        sqnr = 10 * math.log10(self.ref / self.diff) if self.diff > 0 and self.ref > 0 else None
        return {"rel_l2": rel, "cos": self.cos(), "sqnr_db": sqnr}

    def cos(self):
        den = math.sqrt(self.own * self.ref)
        return self.dot / den if den > 0 else None

    def grad(self) -> dict:
        """Cosine similarity and norm ratio ||own|| / ||ref||."""
        ratio = math.sqrt(self.own / self.ref) if self.ref > 0 else None
        return {"cos": self.cos(), "norm_ratio": ratio}


class _Probe:
    """Forward pre-hooks on every probed layer: record order, inputs and input gradients."""

    def __init__(self, model: nn.Module, on_input=None, keep: bool = False):
        self.order, self.acts, self.grads, self.on_input, self.keep = [], {}, {}, on_input, keep
        self.handles = [m.register_forward_pre_hook(self._hook(n)) for n, m in probed_layers(model)]

    def _hook(self, name):
        def hook(module, args):
            x = args[0]
            if name in self.order:
                raise ValueError(f"layer: {name!r} ran twice in one forward; allowed: once")
            self.order.append(name)
            if self.on_input is not None:
                self.on_input(name, module, x)
            if self.keep:
                self.acts[name] = x.detach()
            if not x.requires_grad:
                return None
            # 'total' = gradient w.r.t. the activation tensor (all consumers, shortcut included);
            # 'branch' = the part that flows through this layer only (via a fresh view).
            x.register_hook(self._store(name, "total"))
            xv = x.view_as(x)
            xv.register_hook(self._store(name, "branch"))
            return (xv,) + tuple(args[1:])
        return hook

    def _store(self, name, part):
        def hook(g):
            self.grads[(name, part)] = g.detach()
        return hook

    def reset(self):
        self.order, self.acts, self.grads = [], {}, {}

    def remove(self):
        for h in self.handles:
            h.remove()


def _set_mode(model: nn.Module, bn_mode: str) -> nn.Module:
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode: got {bn_mode!r}; allowed: {BN_MODES}")
    model.train(bn_mode == "batch")
    model.zero_grad(set_to_none=True)
    return model


def _default_loss(out, y):
    return F.cross_entropy(out, y)


def _own(x: torch.Tensor) -> torch.Tensor:
    """A private copy of the input, so tensor hooks of one network never fire for another."""
    return x.detach().clone().requires_grad_(x.requires_grad)


def _ref_pass(net, probe, batch, loss_fn, bnn_probe, stats, tag):
    """Forward/backward a reference net; fold its activations and gradients into ``stats``."""
    x, y = batch
    out = net(_own(x))
    loss_fn(out, y).backward()
    for key, g in probe.grads.items():
        if key in bnn_probe.grads:
            stats.setdefault((tag,) + key, _Stats()).add(bnn_probe.grads[key], g)
    probe.reset()
    return out.detach()


def measure(model: nn.Module, batches, loss_fn=None, bn_mode: str = "batch", ks=(),
            shadow: str = "both") -> dict:
    """Per-layer forward and backward error of ``model`` on ``batches`` (list of (x, y)).

    Returns {"layers": [per-layer dict in execution order], "summary": {...}}. ``model`` is
    not modified (all networks are deep copies).
    """
    loss_fn = loss_fn or _default_loss
    ks = tuple(ks)
    for k in ks:
        SmoothSign(k, None, "input_binarizer")  # validates k
    if not batches:
        raise ValueError("batches: got an empty sequence; allowed: at least one (x, y) batch")
    bnn = _set_mode(copy.deepcopy(model), bn_mode)
    refs = {"shadow": _set_mode(shadow_model(model, shadow), bn_mode)}
    refs.update({f"k{k:g}": _set_mode(smooth_model(model, k), bn_mode) for k in ks})
    binary = {n for n, m in probed_layers(bnn) if m.is_binary}
    res, stats = {}, {}
    bnn_probe = _Probe(bnn, on_input=lambda n, m, x: _residual(res, n, m, x) if n in binary else None,
                       keep=True)
    probes = {t: _Probe(net, on_input=_drift_fold(stats, t, bnn_probe)) for t, net in refs.items()}
    order = None
    for batch in batches:
        out = bnn(_own(batch[0]))
        loss_fn(out, batch[1]).backward()
        order = order or list(bnn_probe.order)
        _fold_split(bnn_probe.grads, stats)
        for tag, net in refs.items():
            ref_out = _ref_pass(net, probes[tag], batch, loss_fn, bnn_probe, stats, tag)
            stats.setdefault((tag, "logits", "out"), _Stats()).add(out.detach(), ref_out)
        bnn_probe.reset()
    for p in [bnn_probe, *probes.values()]:
        p.remove()
    _weight_stats(bnn, refs, binary, stats)
    layers = _layer_table(order, binary, dict(probed_layers(bnn)), res, stats, refs)
    return {"layers": layers, "summary": _summary(layers, stats, refs)}


def _residual(res: dict, name: str, module: nn.Module, x: torch.Tensor) -> None:
    """Accumulate sum |a_r - B(a_r)|, sum |a_r| and the element count at a binary layer."""
    with torch.no_grad():
        b = module.input_binarizer
        arg = _shift(x, _threshold(b))
        e = (arg - b(x)).abs()
        r = res.setdefault(name, [0.0, 0.0, 0])
        r[0] += float(e.double().sum())
        r[1] += float(arg.abs().double().sum())
        r[2] += e.numel()


def _drift_fold(stats, tag, bnn_probe):
    """on_input callback: compare the reference's layer input with the BNN's stored one."""
    def fold(name, module, x):
        stats.setdefault((tag, name, "act"), _Stats()).add(bnn_probe.acts[name], x)
    return fold


def _fold_split(grads: dict, stats: dict) -> None:
    """Sum of squares of the BNN's branch and total input gradients (shortcut vs binary path)."""
    for (name, part), g in grads.items():
        if part == "branch" and (name, "total") in grads:
            acc = stats.setdefault(("split", name), [0.0, 0.0])
            acc[0] += float(g.double().pow(2).sum())
            acc[1] += float(grads[(name, "total")].double().pow(2).sum())


def _weight_stats(bnn, refs, binary, stats):
    """Compare accumulated latent-weight gradients of binary layers with each reference."""
    own = {n: m.weight.grad for n, m in probed_layers(bnn) if n in binary}
    for tag, net in refs.items():
        for n, m in probed_layers(net):
            if n in own and own[n] is not None and m.weight.grad is not None:
                stats.setdefault((tag, n, "weight"), _Stats()).add(own[n], m.weight.grad)


def _layer_table(order, binary, modules, res, stats, refs) -> list[dict]:
    """One dict per probed layer in execution order, with flat metric keys."""
    rows, eq, b_idx = [], 0.0, 0
    for i, name in enumerate(order):
        row = {"index": i, "name": name, "binary": name in binary,
               "kind": "conv" if isinstance(modules[name], BinaryConv2d) else "linear",
               "bin_index": None, "residual_abs": None, "residual_rel": None, "eq13_cum": None}
        if name in binary:
            s_e, s_a, cnt = res[name]
            eq += s_e / cnt
            row.update(bin_index=b_idx, residual_abs=s_e / cnt,
                       residual_rel=s_e / s_a if s_a > 0 else None, eq13_cum=eq)
            b_idx += 1
        split = stats.get(("split", name))
        # ||grad through this layer|| / ||grad w.r.t. its input tensor||: < 1 when a shortcut
        # (or another consumer) carries part of the gradient
        row["bnn_branch_grad_frac"] = math.sqrt(split[0] / split[1]) if split and split[1] > 0 else None
        for tag in refs:
            pre = "drift" if tag == "shadow" else f"drift_{tag}"
            for key, v in _get(stats, (tag, name, "act"), "drift").items():
                row[f"{pre}_{key}"] = v
            for part in ("total", "branch", "weight"):
                for key, v in _get(stats, (tag, name, part), "grad").items():
                    row[f"g_{tag}_{part}_{key}"] = v
        rows.append(row)
    return rows


def _get(stats, key, kind) -> dict:
    s = stats.get(key)
    if s is None:
        return {"rel_l2": None, "cos": None, "sqnr_db": None} if kind == "drift" else \
            {"cos": None, "norm_ratio": None}
    return s.drift() if kind == "drift" else s.grad()


def _summary(layers: list[dict], stats, refs) -> dict:
    """Network-level numbers: E_Q (Eq. 13), drift at the head and logits, E_G at layer 1."""
    binl = [r for r in layers if r["binary"]]  # empty for an FP model: every error is 0
    rel = [r["residual_rel"] for r in binl if r["residual_rel"] is not None]
    out = {"n_binary": len(binl), "n_layers": len(layers),
           "eq13": binl[-1]["eq13_cum"] if binl else 0.0,
           "eq13_rel": sum(rel),
           "residual_rel_mean": sum(rel) / len(rel) if rel else None,
           "drift_last_binary": binl[-1]["drift_rel_l2"] if binl else None,
           "drift_head": layers[-1]["drift_rel_l2"],
           "cos_head": layers[-1]["drift_cos"]}
    for tag in refs:
        logit = stats[(tag, "logits", "out")].drift()
        out[f"logit_rel_l2_{tag}"], out[f"logit_cos_{tag}"] = logit["rel_l2"], logit["cos"]
        first = next((r for r in binl if r[f"g_{tag}_total_cos"] is not None), None)
        out[f"eg_first_{tag}"] = None if first is None else 1.0 - first[f"g_{tag}_total_cos"]
        cos = [r[f"g_{tag}_total_cos"] for r in binl if r[f"g_{tag}_total_cos"] is not None]
        out[f"eg_sum_{tag}"] = sum(1.0 - c for c in cos) if cos else None
        wcos = [r[f"g_{tag}_weight_cos"] for r in binl if r[f"g_{tag}_weight_cos"] is not None]
        out[f"eg_weight_mean_{tag}"] = sum(1.0 - c for c in wcos) / len(wcos) if wcos else None
    return out
