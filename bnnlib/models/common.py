"""Building blocks shared by the model families: conv+BN units, activations, shortcuts."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..layers import BinaryConv2d, BinaryLinear, RPReLU
from ..spec import BaseSpec


def make_act(spec: BaseSpec, channels: int) -> nn.Module:
    """The spec's activation for ``channels`` channels."""
    return {
        "hardtanh": lambda: nn.Hardtanh(inplace=False),
        "relu": lambda: nn.ReLU(inplace=False),
        "prelu": lambda: nn.PReLU(channels),
        "rprelu": lambda: RPReLU(channels),
        "identity": nn.Identity,
    }[spec.act]()


def make_conv(spec: BaseSpec, cin: int, cout: int, k: int, stride: int, binary_role: bool) -> BinaryConv2d:
    """A conv whose binarizers follow the spec; real when the spec or the role says so."""
    ib, wb = spec.binarizers_for(binary_role)
    return BinaryConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False,
                        input_binarizer=ib, weight_binarizer=wb, pad_value=spec.pad_value)


class ConvBN(nn.Sequential):
    """conv -> BN."""

    def __init__(self, spec, cin, cout, k=3, stride=1, binary_role=True):
        super().__init__(make_conv(spec, cin, cout, k, stride, binary_role), nn.BatchNorm2d(cout))


class PadShortcut(nn.Module):
    """Option-A shortcut (He et al. 2016): subsample by ``stride``, zero-pad new channels
    (split as evenly as possible before/after). Parameter-free and real-valued."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cout < cin:
            raise ValueError(f"cout: got {cout} < cin {cin}; allowed: cout >= cin for a pad shortcut")
        self.stride, self.front, self.back = stride, (cout - cin) // 2, cout - cin - (cout - cin) // 2

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.front, self.back))


def make_shortcut(spec: BaseSpec, kind: str, cin: int, cout: int, stride: int) -> nn.Module:
    """Identity when shapes match, else the adapter ``kind`` ('pad' falls back to 'conv' when
    channels shrink, since zero-padding cannot drop channels)."""
    if cin == cout and stride == 1:
        return nn.Identity()
    if kind == "pad" and cout >= cin:
        return PadShortcut(cin, cout, stride)
    if kind == "avgpool_conv":
        pool = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()
        return nn.Sequential(pool, ConvBN(spec, cin, cout, 1, 1, spec.binary_shortcut))
    return ConvBN(spec, cin, cout, 1, stride, spec.binary_shortcut)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs/linears, unit BN; deterministic under torch.manual_seed."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=5 ** 0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Head(nn.Module):
    """Optional alignment conv (Sec. 4.1), pooling/flatten, optional BN1d, hidden FCs, classifier."""

    def __init__(self, spec: BaseSpec, cin: int, spatial: int, global_pool: bool, hidden=()):
        super().__init__()
        self.align = None
        if spec.align_width is not None:
            self.align = nn.Sequential(ConvBN(spec, cin, spec.align_width, 3, 1, spec.align_binary),
                                       make_act(spec, spec.align_width))
            cin = spec.align_width
        self.pool = nn.AdaptiveAvgPool2d(1) if global_pool else nn.Identity()
        feat = cin if global_pool else cin * spatial * spatial
        self.bn = nn.BatchNorm1d(feat) if spec.head_bn else nn.Identity()
        ib, wb = spec.binarizers_for(spec.binary_head)
        layers = []
        for h in hidden:
            layers += [BinaryLinear(feat, h, input_binarizer=ib, weight_binarizer=wb),
                       nn.BatchNorm1d(h), make_act(spec, h)]
            feat = h
        layers.append(BinaryLinear(feat, spec.num_classes, input_binarizer=ib, weight_binarizer=wb))
        self.fc = nn.Sequential(*layers)
        self.in_features = feat

    def forward(self, x):
        if self.align is not None:
            x = self.align(x)
        x = self.pool(x).flatten(1)
        return self.fc(self.bn(x))
