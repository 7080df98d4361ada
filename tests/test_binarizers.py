"""Binarizers: forward values, exact two-valuedness, gradients against analytic references."""
import numpy as np
import pytest
import torch

from bnnlib import binarizers as B

X = torch.tensor([-2.0, -1.0, -0.75, -0.5, -1e-3, 0.0, 1e-3, 0.5, 0.75, 1.0, 1.5, 3.0], dtype=torch.float64)


def _grad(binarizer, x):
    x = x.clone().requires_grad_(True)
    y = binarizer(x)
    y.backward(torch.ones_like(y))
    return y.detach(), x.grad


def test_sign_of_zero_is_plus_one():
    assert B.binary_sign(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("name", ["sign", "approx_sign"])
def test_forward_is_two_valued_sign(name):
    y, _ = _grad(B.get(name), X)
    assert set(y.unique().tolist()) == {-1.0, 1.0}
    np.testing.assert_array_equal(y.numpy(), np.where(X.numpy() >= 0, 1.0, -1.0))


ANALYTIC = {
    "sign": np.vectorize(lambda x: 1.0 if abs(x) <= 1 else 0.0),
    "approx_sign": np.vectorize(lambda x: 2 - 2 * abs(x) if abs(x) < 1 else 0.0),
    "identity": np.vectorize(lambda x: 1.0),
}


@pytest.mark.parametrize("name", sorted(ANALYTIC))
def test_gradient_matches_analytic(name):
    _, g = _grad(B.get(name), X)
    np.testing.assert_allclose(g.numpy(), ANALYTIC[name](X.numpy()), rtol=0, atol=1e-12)


def test_approx_sign_gradient_is_derivative_of_its_polynomial():
    # F(x) = 2x + x^2 on [-1, 0), 2x - x^2 on [0, 1): finite differences of F equal the surrogate.
    F = lambda x: np.where(x < -1, -1, np.where(x < 0, 2 * x + x * x, np.where(x < 1, 2 * x - x * x, 1)))
    x = np.array([-0.9, -0.3, 0.2, 0.7])
    fd = (F(x + 1e-6) - F(x - 1e-6)) / 2e-6
    _, g = _grad(B.get("approx_sign"), torch.tensor(x))
    np.testing.assert_allclose(g.numpy(), fd, atol=1e-5)


def test_rsign_threshold_and_gradients():
    rs = B.get("rsign", channels=2).double()
    with torch.no_grad():
        rs.beta.copy_(torch.tensor([0.5, -0.25]))
    x = torch.tensor([[[[0.4]], [[-0.2]]], [[[0.6]], [[-0.3]]]], dtype=torch.float64, requires_grad=True)
    y = rs(x)
    assert y.flatten().tolist() == [-1.0, 1.0, 1.0, -1.0]
    y.sum().backward()
    d = (x.detach() - rs.beta.detach().view(1, 2, 1, 1)).numpy()
    expect = ANALYTIC["approx_sign"](d)
    np.testing.assert_allclose(x.grad.numpy(), expect, atol=1e-12)
    np.testing.assert_allclose(rs.beta.grad.numpy(), -expect.sum(axis=(0, 2, 3)), atol=1e-12)


def test_scaled_sign_values_and_gradient():
    w = torch.tensor([[0.5, -1.5, 0.0], [-0.2, 0.4, 2.0]], dtype=torch.float64, requires_grad=True)
    y = B.get("scaled_sign")(w)
    alpha = w.detach().abs().mean(dim=1, keepdim=True)
    np.testing.assert_allclose(y.detach().numpy(), (alpha * torch.where(w >= 0, 1.0, -1.0)).numpy())
    for row, a in zip(y.detach(), alpha.flatten()):
        assert set(row.abs().unique().tolist()) == {a.item()}
    y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), (w.detach().abs() <= 1).double().numpy())


def test_binary_flags():
    assert not B.is_binary(B.get("identity"))
    assert all(B.is_binary(B.get(n, channels=3)) for n in B.names() if n != "identity")


@pytest.mark.parametrize("bad", ["Sign", "ste", "", 3, None])
def test_bad_name_raises_value_error(bad):
    with pytest.raises(ValueError, match="binarizer"):
        B.get(bad)


def test_rsign_needs_channels_and_kind_is_checked():
    with pytest.raises(ValueError, match="channels"):
        B.get("rsign")
    with pytest.raises(ValueError, match="kind"):
        B.names("bias")
    assert "scaled_sign" in B.names("weight") and "scaled_sign" not in B.names("activation")
    assert "rsign" in B.names("activation") and "rsign" not in B.names("weight")


def test_callable_is_wrapped():
    b = B.get(lambda x: x * 2)
    assert B.is_binary(b) and b(torch.ones(1)).item() == 2.0
