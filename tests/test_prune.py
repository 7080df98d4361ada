"""Tests for bnnlib.prune: budget, determinism, validation-only calibration, residual policy,
weight inheritance, input validation."""
import numpy as np
import pytest
import torch

from bnnlib.complexity import ops
from bnnlib.models import build, get_spec
from bnnlib.prune import (CalibrationSet, channel_features, cluster_layer,
                          prune_to_budget, slots, widths_for_eps)
from bnnlib.reshape import widen
from bnnlib.spec import ResNetSpec


def _images(n, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _model(spec, seed=0):
    torch.manual_seed(seed)
    return build(spec)


@pytest.fixture(scope="module")
def widened():
    return get_spec("resnet20"), _model(widen(get_spec("resnet20"), 3))


def test_pruned_spec_meets_budget(widened):
    orig, model = widened
    budget = ops(orig)
    res = prune_to_budget(model, _images(24), budget, tol=0.02)
    assert res.ops == ops(res.spec)
    assert budget * 0.98 <= res.ops <= budget
    assert res.within_tolerance and res.to_dict()["within_tolerance"]
    assert ops(model.spec) > budget  # pruning did work
    assert res.spec.depths == model.spec.depths
    assert all(w <= w0 for w, w0 in zip(res.spec.widths, model.spec.widths))


def test_pruning_is_deterministic_for_a_seed(widened):
    orig, model = widened
    data = _images(60, seed=3)
    val = list(range(20, 60))

    def run(seed):
        cal = CalibrationSet.draw(val, 16, seed)
        return prune_to_budget(model, data[list(cal.indices)], ops(orig), calibration=cal).to_dict()

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert a["calibration"]["indices"] != c["calibration"]["indices"]


def test_calibration_uses_validation_indices_only():
    val, test = list(range(100, 200)), list(range(1000, 1100))
    cal = CalibrationSet.draw(val, 30, seed=0, test_indices=test)
    assert set(cal.indices) <= set(val) and not set(cal.indices) & set(test)
    assert len(set(cal.indices)) == 30 and cal.split == "val"
    cal.check_within(val)
    with pytest.raises(ValueError, match="validation"):
        CalibrationSet((5, 150), seed=0).check_within(val)
    with pytest.raises(ValueError, match="split"):
        CalibrationSet((150,), seed=0, split="test")
    with pytest.raises(ValueError, match="test_indices"):
        CalibrationSet.draw(val, 3, 0, test_indices=[150])
    with pytest.raises(ValueError, match="n"):
        CalibrationSet.draw(val, 101, 0)


def test_cluster_layer_counts_clusters_plus_noise():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    feats = np.stack([a] * 6 + [b] * 5 + list(np.eye(8)[:3]))
    from sklearn.metrics.pairwise import cosine_distances
    n, keep = cluster_layer(np.clip(cosine_distances(feats), 0, 2), eps=1e-3)
    assert n == 5 and len(keep) == 5
    assert set(keep[-3:]) == {11, 12, 13} and keep[0] in range(6) and keep[1] in range(6, 11)


def _dists(spec, kept):
    """Distance matrices so that layer i keeps ``kept[i]`` channels at eps=0.5."""
    out = {}
    for sl, k in zip(slots(spec), kept):
        d = np.ones((sl.width, sl.width))
        d[k - 1:, k - 1:] = 0.0  # channels k-1.. collapse into one cluster
        np.fill_diagonal(d, 0.0)
        out[sl.name] = d
    return out


def test_residual_policy_bireal_tied_and_monotone_for_pad():
    spec = ResNetSpec.uniform((2, 2), (32, 64), convs_per_block=1, stem_width=16, block="bireal")
    new, idx, counts = widths_for_eps(spec, _dists(spec, [8, 12, 40, 30]), 0.5, tie="max")
    assert new.stages == (((16,), (16,)), ((40,), (40,)))  # stage 0 lifted to the stem width
    assert np.array_equal(idx["stages.0.0.0.body.0"], idx["stages.0.1.0.body.0"])
    assert counts["stages.0.0.0.body.0"] == 8
    new_mean, _, _ = widths_for_eps(spec, _dists(spec, [8, 12, 40, 30]), 0.5, tie="mean",
                                    monotone=False)
    assert new_mean.stages == (((10,), (10,)), ((35,), (35,)))


def test_residual_policy_basic_inner_conv_free():
    spec = ResNetSpec.uniform((2,), (32,), stem_width=16, block="basic", shortcut="conv")
    new, _, _ = widths_for_eps(spec, _dists(spec, [6, 10, 9, 12]), 0.5)
    assert new.stages == (((6, 12), (9, 12)),)
    assert ops(new) < ops(spec)


def test_channel_features_shapes(widened):
    _, model = widened
    f = channel_features(model, _images(5), represent="spatial")
    g = channel_features(model, _images(5), represent="images")
    assert f["stages.0.0.0.body.0"].shape == (48, 32 * 32)
    assert g["stages.2.0.1.body.0"].shape == (192, 5)


@pytest.mark.parametrize("kw, match", [
    (dict(budget=-1.0), "budget"), (dict(tol=1.5), "tol"), (dict(tie="median"), "tie"),
    (dict(represent="pixels"), "represent"), (dict(min_samples=0), "min_samples"),
    (dict(budget=10.0), "budget"), (dict(calibration=[1, 2]), "calibration"),
])
def test_bad_inputs_raise(widened, kw, match):
    _, model = widened
    args = dict(budget=ops(get_spec("resnet20")))
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        prune_to_budget(model, _images(8), **args)
