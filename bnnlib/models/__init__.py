"""Model registry: every backbone is a named spec; ``create_model`` turns a spec into a model.

Architecture numbers of the DWR backbones come from the authors' public code
(see docs in README: "Registered backbones").
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..reshape import scale
from ..spec import BaseSpec, ResNetSpec, VGGSpec
from .resnet import ResNet
from .vgg import VGG

__all__ = ["create_model", "get_spec", "list_models", "register", "build", "ResNet", "VGG"]

_REGISTRY: dict[str, Callable[[], BaseSpec]] = {}
_BUILDERS = {ResNetSpec: ResNet, VGGSpec: VGG}


def register(fn: Callable[[], BaseSpec]) -> Callable[[], BaseSpec]:
    """Decorator: register a spec factory under its function name."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"name: {fn.__name__!r} is already registered")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str, binary: bool | None = None, width_mult: float = 1.0,
             depth_div: float = 1.0, **overrides) -> BaseSpec:
    """The registered spec ``name`` with scaling and field overrides applied."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"name: got {name!r}; allowed: {list_models()}")
    spec = _REGISTRY[name]()
    return _apply(spec, binary, width_mult, depth_div, overrides)


def _apply(spec, binary, width_mult, depth_div, overrides):
    if binary is not None:
        if not isinstance(binary, bool):
            raise ValueError(f"binary: got {binary!r}; allowed: True, False or None")
        overrides = {**overrides, "binary": binary}
    if overrides:
        spec = spec.replace(**overrides)
    if width_mult != 1.0 or depth_div != 1.0:
        spec = scale(spec, width_mult, depth_div)
    return spec


def build(spec: BaseSpec) -> nn.Module:
    """Instantiate the family class for ``spec``."""
    cls = _BUILDERS.get(type(spec))
    if cls is None:
        raise ValueError(f"spec: got {type(spec).__name__}; allowed: {[c.__name__ for c in _BUILDERS]}")
    return cls(spec)


def create_model(name: str | None = None, binary: bool | None = None, width_mult: float = 1.0,
                 depth_div: float = 1.0, spec: BaseSpec | None = None, **overrides) -> nn.Module:
    """Build a model by registered ``name`` or from an explicit ``spec`` (FP: binary=False)."""
    if spec is None:
        spec = get_spec(name, binary, width_mult, depth_div, **overrides)
    else:
        if name is not None:
            raise ValueError(f"name: got {name!r} together with spec; allowed: one of the two")
        if not isinstance(spec, BaseSpec):
            raise ValueError(f"spec: got {type(spec).__name__}; allowed: ResNetSpec or VGGSpec")
        spec = _apply(spec, binary, width_mult, depth_div, overrides)
    return build(spec)


from . import zoo  # noqa: E402,F401  (registers the backbones)
