"""Binary layers. Latent real weights are ordinary parameters; binarizers are chosen by name."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import binarizers

__all__ = ["BinaryConv2d", "BinaryLinear", "RPReLU", "LearnableBias", "PAD_VALUES"]

# Spatial padding of a binary conv's (already binarized) input.
#  0.0  (default): what the published BNN code (Bi-Real, ReActNet, the DWR authors) does via
#        F.conv2d(padding=...). Border taps see 0, so the padded input is ternary {-1, 0, +1};
#        kept as default so that accuracies are comparable with the paper's.
# -1.0 / +1.0: pad with a binary value, so the conv sees strictly two values (what an
#        XNOR/popcount kernel computes without a border correction).
PAD_VALUES = (0.0, -1.0, 1.0)


class BinaryConv2d(nn.Conv2d):
    """Conv2d whose input and weight pass through binarizers before the convolution.

    ``input_binarizer`` / ``weight_binarizer`` are names from ``bnnlib.binarizers`` (or
    modules). With 'identity' for both, the layer is an ordinary real conv (FP variant).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=False,
                 input_binarizer="approx_sign", weight_binarizer="sign", pad_value=0.0,
                 groups=1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias=bias, groups=groups)
        if pad_value not in PAD_VALUES:
            raise ValueError(f"pad_value: got {pad_value!r}; allowed: {PAD_VALUES}")
        self.input_binarizer = binarizers.get(input_binarizer, channels=in_channels)
        self.weight_binarizer = binarizers.get(weight_binarizer, channels=out_channels)
        self.pad_value = float(pad_value)

    @property
    def is_binary(self) -> bool:
        """Both operands 1-bit: MACs count as BOPs."""
        return binarizers.is_binary(self.input_binarizer) and binarizers.is_binary(self.weight_binarizer)

    def forward(self, x):
        xb = self.input_binarizer(x)
        wb = self.weight_binarizer(self.weight)
        pad = self.padding
        if self.pad_value != 0.0 and any(pad):
            ph, pw = pad
            xb = F.pad(xb, (pw, pw, ph, ph), value=self.pad_value)
            pad = 0
        return F.conv2d(xb, wb, self.bias, self.stride, pad, self.dilation, self.groups)


class BinaryLinear(nn.Linear):
    """Linear layer with binarized input and weight (see ``BinaryConv2d``)."""

    def __init__(self, in_features, out_features, bias=True,
                 input_binarizer="approx_sign", weight_binarizer="sign"):
        super().__init__(in_features, out_features, bias=bias)
        self.input_binarizer = binarizers.get(input_binarizer, channels=in_features)
        self.weight_binarizer = binarizers.get(weight_binarizer, channels=out_features)

    @property
    def is_binary(self) -> bool:
        return binarizers.is_binary(self.input_binarizer) and binarizers.is_binary(self.weight_binarizer)

    def forward(self, x):
        return F.linear(self.input_binarizer(x), self.weight_binarizer(self.weight), self.bias)


class LearnableBias(nn.Module):
    """Per-channel learnable shift x + b_c (ReActNet's 'move' operation)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return x + self.bias.view(1, -1, *([1] * (x.dim() - 2)))


class RPReLU(nn.Module):
    """ReActNet's RPReLU: y = PReLU(x - gamma_c) + zeta_c, per-channel shifts and slopes.

    Source: Liu et al., "ReActNet", ECCV 2020, Eq. 4.
    """

    def __init__(self, channels: int, init_slope: float = 0.25):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.prelu = nn.PReLU(channels, init=init_slope)
        self.zeta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return self.prelu(x - self.gamma.view(shape)) + self.zeta.view(shape)
