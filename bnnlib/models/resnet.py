"""ResNet family: CIFAR ResNet-20/18 and ImageNet Bi-Real-18, FP or BNN, any depth/width."""
from __future__ import annotations

from torch import nn

from ..spec import ResNetSpec
from .common import ConvBN, Head, init_weights, make_act, make_shortcut


class BiRealUnit(nn.Module):
    """One 3x3 conv with its own real-valued shortcut: act(BN(conv(x)) + shortcut(x))."""

    def __init__(self, spec: ResNetSpec, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = ConvBN(spec, cin, cout, 3, stride, True)
        self.shortcut = make_shortcut(spec, spec.shortcut, cin, cout, stride)
        self.act = make_act(spec, cout)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


class BiRealBlock(nn.Sequential):
    """A block of Bi-Real units: every conv has its own shortcut."""

    def __init__(self, spec: ResNetSpec, cin: int, widths: tuple, stride: int):
        units = []
        for i, w in enumerate(widths):
            units.append(BiRealUnit(spec, cin, w, stride if i == 0 else 1))
            cin = w
        super().__init__(*units)


class BasicBlock(nn.Module):
    """He et al. basic block: act(BN(conv2(act(BN(conv1(x))))) + shortcut(x))."""

    def __init__(self, spec: ResNetSpec, cin: int, widths: tuple, stride: int):
        super().__init__()
        mid, cout = widths
        self.conv1 = ConvBN(spec, cin, mid, 3, stride, True)
        self.act1 = make_act(spec, mid)
        self.conv2 = ConvBN(spec, mid, cout, 3, 1, True)
        self.shortcut = make_shortcut(spec, spec.shortcut, cin, cout, stride)
        self.act2 = make_act(spec, cout)

    def forward(self, x):
        return self.act2(self.conv2(self.act1(self.conv1(x))) + self.shortcut(x))


_BLOCKS = {"bireal": BiRealBlock, "basic": BasicBlock}


class ResNet(nn.Module):
    """Builds any ``ResNetSpec``. Stem and head follow ``spec.stem`` ('cifar' or 'imagenet')."""

    def __init__(self, spec: ResNetSpec):
        super().__init__()
        if not isinstance(spec, ResNetSpec):
            raise ValueError(f"spec: got {type(spec).__name__}; allowed: ResNetSpec")
        self.spec = spec
        w = spec.stem_width
        if spec.stem == "cifar":
            self.stem = nn.Sequential(ConvBN(spec, 3, w, 3, 1, spec.binary_stem), make_act(spec, w))
        else:
            self.stem = nn.Sequential(ConvBN(spec, 3, w, 7, 2, spec.binary_stem), make_act(spec, w),
                                      nn.MaxPool2d(3, 2, 1))
        stages, cin = [], w
        for st, stride in zip(spec.stages, spec.strides):
            blocks = []
            for j, widths in enumerate(st):
                blocks.append(_BLOCKS[spec.block](spec, cin, widths, stride if j == 0 else 1))
                cin = widths[-1]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = Head(spec, cin, spatial=1, global_pool=True)
        init_weights(self)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))
