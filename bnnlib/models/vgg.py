"""VGG family: VGG-Small and VGG-11, FP or BNN, any depth/width."""
from __future__ import annotations

from torch import nn

from ..spec import VGGSpec
from .common import ConvBN, Head, init_weights, make_act


class VGG(nn.Module):
    """Builds any ``VGGSpec``: real stem, binary conv stages each ending in a 2x2 max-pool."""

    def __init__(self, spec: VGGSpec):
        super().__init__()
        if not isinstance(spec, VGGSpec):
            raise ValueError(f"spec: got {type(spec).__name__}; allowed: VGGSpec")
        self.spec = spec
        w = spec.stem_width
        stem = [ConvBN(spec, 3, w, 3, 1, spec.binary_stem), make_act(spec, w)]
        if spec.stem_pool:
            stem.append(nn.MaxPool2d(2))
        self.stem = nn.Sequential(*stem)
        stages, cin = [], w
        for st in spec.stages:
            layers = []
            for cout in st:
                layers += [ConvBN(spec, cin, cout, 3, 1, True), make_act(spec, cout)]
                cin = cout
            layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        spatial = spec.input_size // 2 ** (len(spec.stages) + int(spec.stem_pool))
        self.head = Head(spec, cin, spatial=spatial, global_pool=False, hidden=spec.fc)
        init_weights(self)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))
