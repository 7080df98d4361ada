"""Binarizers: forward sign functions with surrogate gradients, looked up by name.

Every binarizer is an ``nn.Module`` so that those with parameters (ReActNet's RSign) and
those without share one interface. ``get(name, channels=...)`` builds one; ``names(kind)``
lists what is registered.

Convention used everywhere: ``sign(0) = +1`` (Eq. 4 of the DWR paper), so a binarized tensor
holds exactly the two values -1 and +1. ``torch.sign`` maps 0 to 0 and would make the tensor
ternary; it is never used here.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["Binarizer", "get", "names", "register", "binary_sign", "is_binary"]


def binary_sign(x: torch.Tensor) -> torch.Tensor:
    """Sign with sign(0) = +1: returns a tensor of -1/+1 with x's dtype."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def _ste_clipped(x):
    """Clipped straight-through gradient: 1 if |x| <= 1 else 0."""
    return (x.abs() <= 1).to(x.dtype)


def _approx_sign_grad(x):
    """Bi-Real ApproxSign gradient: 2 - 2|x| if |x| < 1 else 0."""
    return torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)


class _SurrogateSign(torch.autograd.Function):
    """y = sign(x) (sign(0) = +1); dy/dx := surrogate(x)."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return binary_sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.surrogate(x), None


class _ScaledSignSTE(torch.autograd.Function):
    """y = alpha * sign(w) with alpha per output channel; dy/dw := 1 if |w| <= 1 else 0."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        alpha = w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)
        return alpha * binary_sign(w)

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return g * _ste_clipped(w)


class Binarizer(nn.Module):
    """Base class. ``binary`` says whether outputs are 1-bit (drives BOPs counting)."""

    binary: bool = True
    kind: str = "activation"  # or "weight" or "both"


class Identity(Binarizer):
    """Full precision: y = x, dy/dx = 1. Used for FP variants of every backbone."""

    binary = False
    kind = "both"

    def forward(self, x):
        return x


class SignSTE(Binarizer):
    """BinaryNet sign with the clipped straight-through estimator.

    Forward:  y = +1 if x >= 0 else -1.
    Backward: dL/dx = dL/dy * 1{|x| <= 1}.
    Source: Hubara et al., "Binarized Neural Networks", NeurIPS 2016 (BinaryNet);
    the STE from Bengio et al. 2013.
    """

    kind = "both"

    def forward(self, x):
        return _SurrogateSign.apply(x, _ste_clipped)


class ApproxSign(Binarizer):
    """Bi-Real Net's ApproxSign: sign forward, piecewise-polynomial gradient backward.

    Forward:  y = +1 if x >= 0 else -1.
    Backward: dL/dx = dL/dy * (2 - 2|x|) for |x| < 1, else 0. This is the derivative of the
    piecewise quadratic F(x) = -1 (x < -1), 2x + x^2 (-1 <= x < 0), 2x - x^2 (0 <= x < 1), 1.
    Source: Liu et al., "Bi-Real Net", ECCV 2018 / IJCV 2020. The DWR paper uses it.
    """

    kind = "activation"

    def forward(self, x):
        return _SurrogateSign.apply(x, _approx_sign_grad)


class RSign(Binarizer):
    """ReActNet's RSign: sign with a learnable per-channel threshold.

    Forward:  y = sign(x - beta_c), beta of shape (C,), initialised to 0.
    Backward: dL/dx = dL/dy * (2 - 2|x - beta|) 1{|x - beta| < 1} (ApproxSign's gradient);
    dL/dbeta_c = -sum over the other dims of dL/dx.
    Source: Liu et al., "ReActNet", ECCV 2020.
    """

    kind = "activation"

    def __init__(self, channels: int):
        super().__init__()
        if not isinstance(channels, int) or channels <= 0:
            raise ValueError(f"channels: got {channels!r}; RSign needs a positive int")
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return _SurrogateSign.apply(x - self.beta.view(shape), _approx_sign_grad)


class ScaledSign(Binarizer):
    """Weight sign scaled by the per-output-channel mean |W| (XNOR-Net / Bi-Real / ReActNet).

    Forward:  y = alpha_o * sign(W), alpha_o = mean(|W[o, ...]|) over all but the output dim.
    Backward: dL/dW = dL/dy * 1{|W| <= 1}; alpha is treated as a constant (detached), as in
    the ReActNet and Bi-Real reference code.
    Sources: Rastegari et al., "XNOR-Net", ECCV 2016; Liu et al., "Bi-Real Net", ECCV 2018.
    The tensor holds two values per output channel (+alpha_o, -alpha_o), so a binary MAC
    plus one real scale per output: counted as BOPs.
    """

    kind = "weight"

    def forward(self, w):
        return _ScaledSignSTE.apply(w)


_REGISTRY: dict[str, type[Binarizer]] = {
    "identity": Identity,
    "sign": SignSTE,
    "approx_sign": ApproxSign,
    "rsign": RSign,
    "scaled_sign": ScaledSign,
}
_NEEDS_CHANNELS = {"rsign"}


def register(name: str, cls: type[Binarizer]) -> None:
    """Add a binarizer class under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"name: {name!r} is already registered; choose another name")
    _REGISTRY[name] = cls


def names(kind: str | None = None) -> list[str]:
    """Registered names, optionally only those usable for ``kind`` ('activation'/'weight')."""
    allowed = (None, "activation", "weight")
    if kind not in allowed:
        raise ValueError(f"kind: got {kind!r}; allowed: {allowed}")
    return sorted(n for n, c in _REGISTRY.items() if kind is None or c.kind in (kind, "both"))


def get(spec: str | Binarizer | Callable, channels: int | None = None) -> nn.Module:
    """Build a binarizer from a registered name, an instance, or a callable (wrapped)."""
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, str):
        if spec not in _REGISTRY:
            raise ValueError(f"binarizer: got {spec!r}; allowed: {names()}")
        cls = _REGISTRY[spec]
        if spec in _NEEDS_CHANNELS:
            if channels is None:
                raise ValueError(f"channels: got None; binarizer {spec!r} needs a channel count")
            return cls(channels)
        return cls()
    if callable(spec):
        return _Lambda(spec)
    raise ValueError(f"binarizer: got {spec!r} of type {type(spec).__name__}; "
                     f"allowed: a name in {names()}, a Binarizer or a callable")


class _Lambda(Binarizer):
    """Wraps a plain callable; assumed binary unless it says otherwise."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.binary = bool(getattr(fn, "binary", True))

    def forward(self, x):
        return self.fn(x)


def is_binary(b: nn.Module) -> bool:
    """True when a binarizer module produces 1-bit values."""
    return bool(getattr(b, "binary", False))
