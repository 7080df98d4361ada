"""Binary layers: FP equivalence, padding modes, two-valued operands."""
import pytest
import torch
import torch.nn.functional as F

from bnnlib.layers import BinaryConv2d, BinaryLinear, RPReLU


def test_identity_binarizers_give_plain_conv(gen):
    conv = BinaryConv2d(3, 4, 3, padding=1, input_binarizer="identity", weight_binarizer="identity")
    x = torch.randn(2, 3, 5, 5, generator=gen)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, None, 1, 1))
    assert not conv.is_binary




def test_default_zero_padding_matches_reference_code(gen):
    conv = BinaryConv2d(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 4, 4, generator=gen)
    out = conv(x)
    ref = F.conv2d(torch.where(x >= 0, 1.0, -1.0), torch.where(conv.weight >= 0, 1.0, -1.0), None, 1, 1)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("pad_value", [-1.0, 1.0])
def test_binary_padding_keeps_two_values(gen, pad_value):
    conv = BinaryConv2d(2, 3, 3, padding=1, pad_value=pad_value)
    x = torch.randn(1, 2, 4, 4, generator=gen)
    xb = torch.where(x >= 0, 1.0, -1.0)
    padded = F.pad(xb, (1, 1, 1, 1), value=pad_value)
    assert set(padded.unique().tolist()) == {-1.0, 1.0}
    ref = F.conv2d(padded, torch.where(conv.weight >= 0, 1.0, -1.0))
    torch.testing.assert_close(conv(x), ref)


def test_bad_pad_value():
    with pytest.raises(ValueError, match="pad_value"):
        BinaryConv2d(2, 3, 3, padding=1, pad_value=0.5)


def test_binary_linear_and_gradient_reaches_latent_weights(gen):
    lin = BinaryLinear(4, 2, input_binarizer="sign", weight_binarizer="sign")
    x = torch.randn(3, 4, generator=gen)
    y = lin(x)
    ref = torch.where(x >= 0, 1.0, -1.0) @ torch.where(lin.weight >= 0, 1.0, -1.0).T + lin.bias
    torch.testing.assert_close(y, ref)
    y.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert lin.is_binary


def test_rprelu_formula(gen):
    m = RPReLU(2)
    with torch.no_grad():
        m.gamma.copy_(torch.tensor([0.5, -0.5])); m.zeta.copy_(torch.tensor([1.0, 2.0]))
    x = torch.randn(3, 2, 2, 2, generator=gen)
    g = torch.tensor([0.5, -0.5]).view(1, 2, 1, 1)
    d = x - g
    expect = torch.where(d >= 0, d, 0.25 * d) + torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    torch.testing.assert_close(m(x), expect)
