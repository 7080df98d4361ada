"""PyTorch BNN -> OpenVINO graph, built op by op so that every binary conv is a BinaryConvolution.

How a binary conv is written (OpenVINO opset1 semantics, see module ``bnnlib.deploy`` doc):

  x --FakeQuantize(levels=2, threshold t, out 0/1)--> u1 bits
    --BinaryConvolution(xnor-popcount, kernel bits = (sign W > 0), pad_value = p)--> integer sums
    --Multiply(A_o)--Add(B_o)-->   (weight scale alpha_o, conv bias and BatchNorm folded)

- ``sign(0) = +1`` (bnnlib's convention): the CPU plugin's binarization sets bit 1 when
  ``x > t``, so t is the largest float32 below the binarizer's threshold (0, or RSign's
  beta_c): ``x > nextafter(beta, -inf)`` is ``x >= beta``, and ``x - beta >= 0`` in float32 is
  the same test (a float difference is 0 only at equality). Thresholds whose float32
  predecessor is subnormal use -FLT_MIN instead, since the plugin may flush subnormals; only
  subnormal inputs (never produced in practice) could then differ.
- Padding: BinaryConvolution's ``pad_value`` is the value its border taps see. bnnlib's
  ``pad_value`` (0 by default: the ternary border of F.conv2d(padding=...), or -1/+1) maps to
  it one to one, so the exported function is the PyTorch function, border included.
- Weight scale: a binarized weight tensor must be ``alpha_o * s`` with s in {-1,+1} per output
  channel (sign: alpha = 1; scaled_sign: alpha = mean|W_o|); the exporter checks this on the
  tensor the binarizer actually returns, packs ``s`` as bits and moves alpha after the conv,
  where it is folded with the conv bias and the following BatchNorm into one scale and shift.
- Input channels not a multiple of 8: OpenVINO 2026.4's CPU plugin mis-reads packed
  activations in that case (measured: wrong sums for ic = 12, 20, 78, 100; right for
  multiples of 8), so the exporter pads the activation with constant +1 channels before the
  FakeQuantize and gives them kernel bits that cancel in pairs (+1, -1). An odd pad leaves one
  +1 channel whose contribution (the number of valid taps, plus pad_value times the border
  taps) is a known spatial map, subtracted in the folded shift. Exact; the price (an f32 Pad
  and, for odd widths, a spatial shift) is counted in ``ExportInfo.channel_padded``.

Real layers (stem, 1x1 shortcut adapters, align conv when real, head) are ordinary f32
Convolution / MatMul with BatchNorm folded into weight and bias.

Refused with ValueError naming the layer: binary Linear layers (no binary FullyConnected),
grouped binary convs, binarizers without a 2-level threshold form, one-operand-binary layers,
module types the exporter does not know.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import binarizers as B
from .. import layers as L
from ..models.common import Head, PadShortcut
from ..models.resnet import BasicBlock, BiRealUnit, ResNet
from ..models.vgg import VGG

__all__ = ["ExportInfo", "BinaryLayer", "export", "require_openvino", "sign_threshold"]

_FLT_MIN = np.float32(np.finfo(np.float32).tiny)
_SIGN_TYPES = (B.SignSTE, B.ApproxSign)  # sign(x), sign(0) = +1
_THRESH_TYPES = _SIGN_TYPES + (B.RSign,)


def require_openvino():
    """Import openvino and its opset, or raise ImportError with the install command."""
    try:
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("openvino is not installed; install the deploy extra: "
                          "pip install -e '.[deploy]'") from e
    return ov, ops


def sign_threshold(beta: np.ndarray) -> np.ndarray:
    """float32 t with ``x > t`` <=> ``x >= beta`` (see module doc for the subnormal rule)."""
    beta = np.asarray(beta, dtype=np.float32)
    t = np.nextafter(beta, np.float32(-np.inf)).astype(np.float32)
    small = np.abs(t) < _FLT_MIN
    return np.where(small & (beta <= _FLT_MIN), -_FLT_MIN, np.where(small, _FLT_MIN, t)).astype(np.float32)


@dataclass
class BinaryLayer:
    """One exported binary conv: module name, shapes and what the exporter did to it."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    pad_value: float
    channel_pad: int = 0
    spatial_shift: bool = False


@dataclass
class ExportInfo:
    """What ``export`` built: binary and real layer names, padding paid, pre-sign tensors."""

    binary: list = field(default_factory=list)       # BinaryLayer
    real_convs: list = field(default_factory=list)   # module names
    real_linear: list = field(default_factory=list)
    input_shape: tuple = ()
    pre_sign: dict = field(default_factory=dict)     # name -> ov Output (FakeQuantize input)
    fusion_guarded: list = field(default_factory=list)  # binary convs given an extra pad (see
                                                        # _Builder.risky_inputs)

    @property
    def channel_padded(self) -> list:
        """Names of binary convs whose input channels were padded to a multiple of 8."""
        return [b.name for b in self.binary if b.channel_pad]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _bn_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNorm as y = a x + b (float64)."""
    if bn.running_mean is None or not bn.track_running_stats:
        raise ValueError("BatchNorm without running statistics: cannot fold for inference")
    a = 1.0 / np.sqrt(_np(bn.running_var) + bn.eps)
    if bn.weight is not None:
        a = a * _np(bn.weight)
    b = -_np(bn.running_mean) * a
    if bn.bias is not None:
        b = b + _np(bn.bias)
    return a, b


class _Builder:
    def __init__(self, ops, info: ExportInfo, extra_pad=()):
        self.ops, self.info = ops, info
        self.residuals = []
        self.extra_pad = set(extra_pad)

    # ---------------------------------------------------------------- helpers
    def c(self, arr, dtype=np.float32):
        return self.ops.constant(np.array(arr, dtype=dtype, order="C"))

    def chan(self, v):
        """Per-channel constant shaped (1, C, 1, 1)."""
        return self.c(np.asarray(v).reshape(1, -1, 1, 1))

    def affine(self, x, a, b, name, rank=4):
        shape = (1, -1) + (1,) * (rank - 2)
        y = x
        if not np.all(a == 1.0):
            y = self.ops.multiply(y, self.c(np.asarray(a).reshape(shape)), name=f"{name}.scale")
        if b is not None and not (np.ndim(b) == 1 and np.all(b == 0.0)):
            bb = np.asarray(b)
            bb = bb.reshape(shape) if bb.ndim == 1 else bb
            y = self.ops.add(y, self.c(bb), name=f"{name}.shift")
        return y

    # ---------------------------------------------------------------- dispatch
    def run(self, m: nn.Module, x, name: str):
        if isinstance(m, (ResNet, VGG)):
            return self.run(m.head, self.run(m.stages, self.run(m.stem, x, "stem"), "stages"), "head")
        if isinstance(m, BiRealUnit):
            y = self.run(m.body, x, f"{name}.body")
            s = self.run(m.shortcut, x, f"{name}.shortcut")
            return self.residual(m.act, y, s, name, "act")
        if isinstance(m, BasicBlock):
            y = self.run(m.conv1, x, f"{name}.conv1")
            y = self.run(m.act1, y, f"{name}.act1")
            y = self.run(m.conv2, y, f"{name}.conv2")
            s = self.run(m.shortcut, x, f"{name}.shortcut")
            return self.residual(m.act2, y, s, name, "act2")
        if isinstance(m, Head):
            return self.head(m, x, name)
        if isinstance(m, nn.Sequential):  # ConvBN, BiRealBlock and plain containers
            kids = list(m.named_children())
            i = 0
            while i < len(kids):
                k, sub = kids[i]
                nxt = kids[i + 1][1] if i + 1 < len(kids) else None
                if isinstance(sub, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
                    x = self.conv(sub, x, _join(name, k), bn=nxt)
                    i += 2
                    continue
                x = self.run(sub, x, _join(name, k))
                i += 1
            return x
        if isinstance(m, nn.Conv2d):
            return self.conv(m, x, name, bn=None)
        if isinstance(m, nn.BatchNorm2d):
            a, b = _bn_affine(m)
            return self.affine(x, a, b, name)
        if isinstance(m, nn.Identity):
            return x
        if isinstance(m, nn.Hardtanh):
            return self.ops.clamp(x, float(m.min_val), float(m.max_val), name=name)
        if isinstance(m, nn.ReLU):
            return self.ops.relu(x, name=name)
        if isinstance(m, nn.PReLU):
            return self.ops.prelu(x, self.c(_np(m.weight).reshape(-1)), name=name)
        if isinstance(m, L.RPReLU):
            y = self.ops.subtract(x, self.chan(_np(m.gamma)), name=f"{name}.gamma")
            y = self.ops.prelu(y, self.c(_np(m.prelu.weight).reshape(-1)), name=f"{name}.prelu")
            return self.ops.add(y, self.chan(_np(m.zeta)), name=f"{name}.zeta")
        if isinstance(m, L.LearnableBias):
            return self.ops.add(x, self.chan(_np(m.bias)), name=name)
        if isinstance(m, PadShortcut):
            return self.pad_shortcut(m, x, name)
        if isinstance(m, nn.MaxPool2d):
            return self.maxpool(m, x, name)
        if isinstance(m, nn.AvgPool2d):
            return self.avgpool(m, x, name)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            if _pair(m.output_size) != (1, 1):
                raise ValueError(f"{name}: AdaptiveAvgPool2d to {m.output_size}; only 1x1 is exported")
            return self.ops.reduce_mean(x, self.c([2, 3], np.int64), True, name=name)
        raise ValueError(f"{name or 'model'}: module type {type(m).__name__} is not supported by "
                         "the OpenVINO exporter")

    def residual(self, act, y, s, name, act_name):
        """act(y + s); remembered so that ``guard_residuals`` can rewrite it (see there)."""
        add = self.ops.add(y, s, name=f"{name}.add")
        out = self.run(act, add, f"{name}.{act_name}")
        self.residuals.append((name, add, y, s, out))
        return out

    def risky_inputs(self) -> list:
        """Binary convs whose input is a residual output consumed by nothing but their own
        packing (FakeQuantize or channel Pad). OpenVINO 2026.4's CPU plugin then fuses the
        residual add (as an in-place 'sum') and the binarization into the producing
        BinaryConvolution and gives the sum input the fused output's u1 precision: the
        residual is binarized before it is added (measured: logits off by O(1); a Subtract
        in its place is normalised back to Add). ``export`` rebuilds these convs with an
        extra, exactly cancelling 8-channel pad, which keeps the add out of the fusion."""
        out = []
        for name, add, y, s, res in self.residuals:
            users = list(res.get_target_inputs()) if hasattr(res, "get_target_inputs") else \
                list(res.output(0).get_target_inputs())
            if len(users) == 1 and users[0].get_node().get_type_name() == "FakeQuantize":
                fq = users[0].get_node().get_friendly_name()
                out.append(fq[:-len(".sign")] if fq.endswith(".sign") else fq)
        return out

    # ---------------------------------------------------------------- layers
    def conv(self, m: nn.Conv2d, x, name: str, bn=None):
        ib = getattr(m, "input_binarizer", None)
        wb = getattr(m, "weight_binarizer", None)
        w = m.weight_binarizer(m.weight) if wb is not None else m.weight
        w = _np(w)
        bias = _np(m.bias) if m.bias is not None else None
        a_bn, b_bn = _bn_affine(bn) if bn is not None else (None, None)
        if isinstance(m, L.BinaryConv2d) and m.is_binary:
            return self.binary_conv(m, x, name, w, bias, a_bn, b_bn)
        if ib is not None and not isinstance(ib, B.Identity):
            raise ValueError(f"{name}: binary input with a real weight ({type(ib).__name__} / "
                             f"{type(wb).__name__}) has no BinaryConvolution form; not exported")
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ValueError(f"{name}: padding {m.padding!r} / {m.padding_mode!r} not supported")
        pad_value = getattr(m, "pad_value", 0.0)
        if pad_value != 0.0 and any(m.padding):
            x = self.ops.pad(x, [0, 0, m.padding[0], m.padding[1]], [0, 0, m.padding[0], m.padding[1]],
                             "constant", self.c(pad_value), name=f"{name}.pad")
            pads = [0, 0]
        else:
            pads = list(m.padding)
        if m.groups != 1:
            raise ValueError(f"{name}: grouped convolution (groups={m.groups}) is not exported")
        if a_bn is not None:  # fold BN into the weights and bias
            w = w * a_bn.reshape(-1, 1, 1, 1)
            bias = (bias if bias is not None else 0.0) * a_bn + b_bn
        y = self.ops.convolution(x, self.c(w), list(m.stride), pads, pads, list(m.dilation), name=name)
        if bias is not None:
            y = self.ops.add(y, self.chan(bias), name=f"{name}.bias")
        self.info.real_convs.append(name)
        return y

    def binary_conv(self, m, x, name, w, bias, a_bn, b_bn):
        ops = self.ops
        ib = m.input_binarizer
        if m.groups != 1:
            raise ValueError(f"{name}: grouped binary convolution (groups={m.groups}) is not exported; "
                             "BinaryConvolution has no groups")
        if not isinstance(ib, _THRESH_TYPES):
            raise ValueError(f"{name}: input binarizer {type(ib).__name__} has no known 2-level "
                             f"threshold form; allowed: {[t.__name__ for t in _THRESH_TYPES]}")
        cout, cin, kh, kw = w.shape
        # weight = alpha_o * s, s in {-1, +1}
        s = np.where(w >= 0, 1.0, -1.0)
        alpha = np.abs(w).reshape(cout, -1)
        if not np.allclose(alpha, alpha[:, :1], rtol=1e-6, atol=0.0):
            raise ValueError(f"{name}: binarized weight is not alpha_o * sign (|W_b| varies within "
                             "an output channel); not exportable as BinaryConvolution")
        alpha = alpha[:, 0]
        beta = _np(ib.beta) if isinstance(ib, B.RSign) else np.zeros(1)
        thr = sign_threshold(beta)
        # channel padding to a multiple of 8 (see module doc)
        p = (-cin) % 8 + (8 if name in self.extra_pad else 0)
        in_hw = list(x.get_output_partial_shape(0).to_shape())[2:]
        if p:
            x = ops.pad(x, [0, 0, 0, 0], [0, p, 0, 0], "constant", self.c(1.0), name=f"{name}.chpad")
            pad_w = np.ones((cout, p, kh, kw))
            pad_w[:, 1::2] = -1.0
            s = np.concatenate([s, pad_w], axis=1)
            if thr.size > 1:
                thr = np.concatenate([thr, np.full(p, -_FLT_MIN, np.float32)])
        t = self.chan(thr) if thr.size > 1 else self.c(thr.reshape(()))
        self.info.pre_sign[name] = x
        fq = ops.fake_quantize(x, t, t, self.c(0.0), self.c(1.0), 2, name=f"{name}.sign")
        bits = np.packbits((s > 0).reshape(-1), bitorder="little")
        ov = _ov()
        packed = ov.Tensor(ov.Type.u1, list(s.shape))  # owns its memory (the numpy-sharing
        packed.data[:] = bits                            # constructor would dangle)
        kernel = ops.constant(packed, name=f"{name}.bits")
        pads = [int(v) for v in m.padding]
        y = ops.binary_convolution(fq, kernel, list(m.stride), pads, pads, list(m.dilation),
                                   "xnor-popcount", float(m.pad_value), name=name)
        # y_true = conv(sign x, s) = y - corr (corr only for an odd channel pad)
        a = alpha.copy()
        b = bias if bias is not None else np.zeros(cout)
        if a_bn is not None:
            a, b = a * a_bn, b * a_bn + b_bn
        spatial = False
        out_shape = list(y.get_output_partial_shape(0).to_shape())
        if p % 2:
            corr = _border_count(in_hw, out_shape[2:], (kh, kw), m)
            b = b.reshape(-1, 1, 1) - a.reshape(-1, 1, 1) * corr[None]
            b = b[None]
            spatial = True
        y = self.affine(y, a, b, name)
        self.info.binary.append(BinaryLayer(name, cin, cout, kh, int(m.stride[0]), float(m.pad_value),
                                            channel_pad=p, spatial_shift=spatial))
        return y

    def pad_shortcut(self, m: PadShortcut, x, name):
        ops = self.ops
        if m.stride > 1:
            shp = list(x.get_output_partial_shape(0).to_shape())
            x = ops.strided_slice(x, self.c([0, 0, 0, 0], np.int64), self.c(shp, np.int64),
                                  self.c([1, 1, m.stride, m.stride], np.int64), [0, 0, 0, 0], [0, 0, 0, 0],
                                  name=f"{name}.subsample")
        if m.front or m.back:
            x = ops.pad(x, [0, m.front, 0, 0], [0, m.back, 0, 0], "constant", self.c(0.0), name=f"{name}.pad")
        return x

    def maxpool(self, m: nn.MaxPool2d, x, name):
        if m.dilation not in (1, (1, 1)) or m.return_indices:
            raise ValueError(f"{name}: MaxPool2d with dilation/indices is not exported")
        k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
        import openvino.opset1 as o1
        return o1.max_pool(x, list(s), list(p), list(p), list(k), "ceil" if m.ceil_mode else "floor",
                           name=name)

    def avgpool(self, m: nn.AvgPool2d, x, name):
        k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
        if m.divisor_override is not None:
            raise ValueError(f"{name}: AvgPool2d divisor_override is not exported")
        return self.ops.avg_pool(x, list(s), list(p), list(p), list(k), not m.count_include_pad,
                                 "ceil" if m.ceil_mode else "floor", name=name)

    def linear(self, m: nn.Linear, x, name):
        if getattr(m, "is_binary", False):
            raise ValueError(f"{name}: binary Linear layers are not exported (OpenVINO has no binary "
                             "FullyConnected); build the model with binary_head=False")
        for bz in (getattr(m, "input_binarizer", None), getattr(m, "weight_binarizer", None)):
            if bz is not None and not isinstance(bz, B.Identity):
                raise ValueError(f"{name}: Linear with one binary operand ({type(bz).__name__}) "
                                 "is not exported")
        y = self.ops.matmul(x, self.c(_np(m.weight)), False, True, name=name)
        if m.bias is not None:
            y = self.ops.add(y, self.c(_np(m.bias).reshape(1, -1)), name=f"{name}.bias")
        self.info.real_linear.append(name)
        return y

    def head(self, h: Head, x, name):
        if h.align is not None:
            x = self.run(h.align, x, f"{name}.align")
        x = self.run(h.pool, x, f"{name}.pool")
        x = self.ops.reshape(x, self.c([0, -1], np.int64), True, name=f"{name}.flatten")
        if isinstance(h.bn, nn.BatchNorm1d):
            a, b = _bn_affine(h.bn)
            x = self.affine(x, a, b, f"{name}.bn", rank=2)
        elif not isinstance(h.bn, nn.Identity):
            raise ValueError(f"{name}.bn: {type(h.bn).__name__} is not supported")
        kids = list(h.fc.named_children())
        for k, sub in kids:
            nm = f"{name}.fc.{k}"
            if isinstance(sub, nn.Linear):
                x = self.linear(sub, x, nm)
            elif isinstance(sub, nn.BatchNorm1d):
                a, b = _bn_affine(sub)
                x = self.affine(x, a, b, nm, rank=2)
            elif isinstance(sub, nn.PReLU):
                x = self.ops.prelu(x, self.c(_np(sub.weight).reshape(-1)), name=nm)
            elif isinstance(sub, L.RPReLU):
                y = self.ops.subtract(x, self.c(_np(sub.gamma).reshape(1, -1)), name=f"{nm}.gamma")
                y = self.ops.prelu(y, self.c(_np(sub.prelu.weight).reshape(-1)), name=f"{nm}.prelu")
                x = self.ops.add(y, self.c(_np(sub.zeta).reshape(1, -1)), name=f"{nm}.zeta")
            else:
                x = self.run(sub, x, nm)
        return x


def _join(a, b):
    return f"{a}.{b}" if a else b


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _border_count(in_hw, out_hw, k, m) -> np.ndarray:
    """Per output position: valid taps + pad_value * border taps of one all-(+1) channel."""
    import torch.nn.functional as F
    ph, pw = (int(v) for v in m.padding)
    ones = torch.ones(1, 1, int(in_hw[0]), int(in_hw[1]), dtype=torch.float64)
    ones = F.pad(ones, (pw, pw, ph, ph), value=float(m.pad_value))
    out = F.conv2d(ones, torch.ones(1, 1, *k, dtype=torch.float64), stride=m.stride, dilation=m.dilation)
    got = tuple(out.shape[2:])
    if got != tuple(out_hw):
        raise RuntimeError(f"border map shape {got} != conv output {tuple(out_hw)}")
    return out[0, 0].numpy()


def _ov():
    import openvino as ov
    return ov


def export(model: nn.Module, input_shape=(1, 3, 32, 32), name: str = "bnn"):
    """(ov.Model, ExportInfo) for an eval-mode bnnlib model (see module doc).

    ``input_shape`` is static (N, C, H, W). The model is not modified. Raises ValueError for a
    layer the exporter refuses, naming it."""
    ov, ops = require_openvino()
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: got {type(model).__name__}; allowed: a torch nn.Module")
    if model.training:
        raise ValueError("model: in training mode; call model.eval() first (BN is folded with "
                         "its running statistics)")
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 4 or min(shape) <= 0:
        raise ValueError(f"input_shape: got {input_shape!r}; allowed: 4 positive ints (N, C, H, W)")
    extra = ()
    for _ in range(2):  # second pass only when the first found a fusion to prevent
        info = ExportInfo(input_shape=shape)
        b = _Builder(ops, info, extra)
        x = ops.parameter(list(shape), np.float32, name="input")
        with torch.no_grad():  # whole nets: layer names = module names; else under the class name
            y = b.run(model, x, "" if isinstance(model, (ResNet, VGG)) else type(model).__name__)
        risky = b.risky_inputs()
        if not risky:
            break
        extra = risky
    info.fusion_guarded = list(extra)
    res = ops.result(y, name="logits")
    return ov.Model([res], [x], name), info
