"""Backbone specs: frozen dataclasses that fully describe a model. Specs in, models out.

A ResNet is ``stages -> blocks -> conv widths``; a VGG is ``stages -> conv widths`` with a
max-pool after each stage. Uniform nets are built with ``ResNetSpec.uniform`` /
``VGGSpec.uniform``; pruned nets simply carry non-uniform widths. Which layers are binary is
data too (``binary``, ``binary_stem``, ``binary_head``, ``binary_shortcut``, ``align_binary``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from . import binarizers

__all__ = ["BaseSpec", "ResNetSpec", "VGGSpec", "ACTIVATIONS", "spec_to_dict", "spec_from_dict",
           "spec_hash"]

ACTIVATIONS = ("hardtanh", "relu", "prelu", "rprelu", "identity")
RESNET_BLOCKS = ("bireal", "basic")
SHORTCUTS = ("pad", "conv", "avgpool_conv")
STEMS = ("cifar", "imagenet")


def _check_pos_int(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{name}: got {v!r}; allowed: a positive int")


def _check_choice(name: str, v: Any, allowed) -> None:
    if v not in allowed:
        raise ValueError(f"{name}: got {v!r}; allowed: {tuple(allowed)}")


def _check_bool(name: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise ValueError(f"{name}: got {v!r} ({type(v).__name__}); allowed: True or False")


@dataclass(frozen=True)
class BaseSpec:
    """Fields shared by every family. Binary roles default to the paper's Section 5.1."""

    num_classes: int = 10
    input_size: int = 32
    binary: bool = True
    input_binarizer: str = "approx_sign"
    weight_binarizer: str = "sign"
    act: str = "hardtanh"
    pad_value: float = 0.0
    binary_stem: bool = False
    binary_head: bool = False
    binary_shortcut: bool = False
    align_width: int | None = None
    align_binary: bool = True
    head_bn: bool = False

    family = "base"

    def _validate_base(self) -> None:
        _check_pos_int("num_classes", self.num_classes)
        _check_pos_int("input_size", self.input_size)
        for f in ("binary", "binary_stem", "binary_head", "binary_shortcut", "align_binary", "head_bn"):
            _check_bool(f, getattr(self, f))
        _check_choice("input_binarizer", self.input_binarizer, binarizers.names("activation"))
        _check_choice("weight_binarizer", self.weight_binarizer, binarizers.names("weight"))
        _check_choice("act", self.act, ACTIVATIONS)
        _check_choice("pad_value", self.pad_value, (0.0, -1.0, 1.0))
        if self.align_width is not None:
            _check_pos_int("align_width", self.align_width)

    def binarizers_for(self, binary_role: bool) -> tuple[str, str]:
        """(input, weight) binarizer names for a layer whose role flag is ``binary_role``."""
        if self.binary and binary_role:
            return self.input_binarizer, self.weight_binarizer
        return "identity", "identity"

    def replace(self, **changes):
        """A new spec with ``changes`` applied (validated)."""
        known = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise ValueError(f"spec field: got {bad}; allowed: {sorted(known)}")
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ResNetSpec(BaseSpec):
    """ResNet family (CIFAR ResNet-20/18, ImageNet Bi-Real-18).

    ``stages[i][j]`` is the tuple of conv output widths of block j in stage i.
    block 'bireal': a real shortcut around every conv (Bi-Real / "ResNet-20 with the
    additional shortcut"); 'basic': one shortcut around the whole block (He et al.).
    ``shortcut`` picks the adapter used when a shortcut changes shape: 'pad' (option A:
    subsample + zero channels, parameter-free; falls back to 'conv' when channels shrink),
    'conv' (1x1 conv + BN), 'avgpool_conv' (avg-pool, then 1x1 conv + BN, as Bi-Real).
    """

    stem: str = "cifar"
    stem_width: int = 16
    stages: tuple = ()
    strides: tuple = ()
    block: str = "bireal"
    shortcut: str = "pad"

    family = "resnet"

    def __post_init__(self):
        self._validate_base()
        _check_choice("stem", self.stem, STEMS)
        _check_pos_int("stem_width", self.stem_width)
        _check_choice("block", self.block, RESNET_BLOCKS)
        _check_choice("shortcut", self.shortcut, SHORTCUTS)
        try:
            object.__setattr__(self, "stages", tuple(tuple(tuple(b) for b in st) for st in self.stages))
            object.__setattr__(self, "strides", tuple(self.strides))
        except TypeError:
            raise ValueError(f"stages: got {self.stages!r}; allowed: nested tuples "
                             "stage -> block -> conv widths, e.g. (((16, 16),),)") from None
        if not self.stages:
            raise ValueError("stages: got (); allowed: at least one stage")
        if len(self.strides) != len(self.stages):
            raise ValueError(f"strides: got {self.strides!r}; allowed: one stride per stage "
                             f"({len(self.stages)})")
        for i, st in enumerate(self.stages):
            if not st:
                raise ValueError(f"stages[{i}]: got (); allowed: at least one block")
            for j, blk in enumerate(st):
                n = 2 if self.block == "basic" else None
                if not blk or (n and len(blk) != n):
                    raise ValueError(f"stages[{i}][{j}]: got {blk!r}; allowed: "
                                     f"{'2 widths' if n else 'one or more widths'} per block")
                for w in blk:
                    _check_pos_int(f"stages[{i}][{j}] width", w)
        for s in self.strides:
            _check_choice("strides", s, (1, 2))

    @classmethod
    def uniform(cls, depths, widths, convs_per_block=2, strides=None, **kw) -> "ResNetSpec":
        """Spec with ``depths[i]`` blocks of ``convs_per_block`` convs of width ``widths[i]``."""
        depths, widths = tuple(depths), tuple(widths)
        if len(depths) != len(widths):
            raise ValueError(f"depths/widths: got {len(depths)} and {len(widths)} stages; "
                             "allowed: the same number")
        for d in depths:
            _check_pos_int("depths", d)
        strides = tuple(strides) if strides is not None else (1,) + (2,) * (len(depths) - 1)
        stages = tuple(tuple((w,) * convs_per_block for _ in range(d)) for d, w in zip(depths, widths))
        return cls(stages=stages, strides=strides, **kw)

    @property
    def depths(self) -> tuple[int, ...]:
        """Blocks per stage."""
        return tuple(len(st) for st in self.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        """Output width of each stage (its last conv)."""
        return tuple(st[-1][-1] for st in self.stages)

    @property
    def num_binary_convs(self) -> int:
        return sum(len(b) for st in self.stages for b in st)


@dataclass(frozen=True)
class VGGSpec(BaseSpec):
    """VGG family (VGG-Small, VGG-11): real stem conv, then stages of 3x3 convs, each stage
    followed by a 2x2 max-pool; optional alignment conv; real FC layers (``fc`` hidden widths,
    each Linear + BN1d + act) and a final classifier."""

    stem_width: int = 128
    stem_pool: bool = False
    stages: tuple = ()
    fc: tuple = ()

    family = "vgg"

    def __post_init__(self):
        self._validate_base()
        _check_pos_int("stem_width", self.stem_width)
        _check_bool("stem_pool", self.stem_pool)
        try:
            object.__setattr__(self, "stages", tuple(tuple(st) for st in self.stages))
            object.__setattr__(self, "fc", tuple(self.fc))
        except TypeError:
            raise ValueError(f"stages: got {self.stages!r}; allowed: nested tuples stage -> conv "
                             "widths, e.g. ((128,), (256, 256))") from None
        if not self.stages:
            raise ValueError("stages: got (); allowed: at least one stage")
        for i, st in enumerate(self.stages):
            if not st:
                raise ValueError(f"stages[{i}]: got (); allowed: at least one conv")
            for w in st:
                _check_pos_int(f"stages[{i}] width", w)
        for w in self.fc:
            _check_pos_int("fc", w)
        n_pools = len(self.stages) + int(self.stem_pool)
        if self.input_size % (2 ** n_pools):
            raise ValueError(f"input_size: got {self.input_size}; allowed: a multiple of "
                             f"2**{n_pools} for {n_pools} max-pools")

    @classmethod
    def uniform(cls, depths, widths, **kw) -> "VGGSpec":
        """Spec with ``depths[i]`` convs of width ``widths[i]`` in stage i."""
        for d in depths:
            _check_pos_int("depths", d)
        return cls(stages=tuple((w,) * d for d, w in zip(depths, widths)), **kw)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(st) for st in self.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(st[-1] for st in self.stages)

    @property
    def num_binary_convs(self) -> int:
        return sum(len(st) for st in self.stages)


_FAMILIES = {"resnet": ResNetSpec, "vgg": VGGSpec}


def spec_to_dict(spec: BaseSpec) -> dict:
    """JSON-ready dict with a 'family' key (round-trips through ``spec_from_dict``)."""
    d = dataclasses.asdict(spec)
    d["family"] = spec.family
    return d


def _tuplify(v):
    return tuple(_tuplify(x) for x in v) if isinstance(v, (list, tuple)) else v


def spec_from_dict(d: dict) -> BaseSpec:
    """Inverse of ``spec_to_dict``."""
    d = dict(d)
    fam = d.pop("family", None)
    _check_choice("family", fam, tuple(_FAMILIES))
    return _FAMILIES[fam](**{k: _tuplify(v) for k, v in d.items()})


def spec_hash(spec: BaseSpec) -> str:
    """Stable short hash of a spec (sorted-key JSON)."""
    s = json.dumps(spec_to_dict(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(s.encode()).hexdigest()[:16]
