"""Tests for bnnlib.prune_weights: inheritance is exact when nothing is pruned and copies the
kept slices otherwise."""
import numpy as np
import pytest
import torch

from bnnlib.complexity import ops
from bnnlib.models import build, get_spec
from bnnlib.prune import prune_to_budget, slots
from bnnlib.prune_weights import channel_plan, inherit_weights
from bnnlib.reshape import widen


def _images(n, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _model(spec, seed=0):
    torch.manual_seed(seed)
    return build(spec)


@pytest.mark.parametrize("name", ["resnet20", "resnet20_dwr", "vgg_small", "resnet20_react"])
def test_inherit_identical_function_when_nothing_pruned(name):
    spec = get_spec(name)
    if name == "vgg_small":
        spec = spec.replace(stages=((16,), (16, 24), (24, 32)), stem_width=16)
    src, dst = _model(spec, 0), _model(spec, 1)
    full = {sl.name: np.arange(sl.width) for sl in slots(spec)}
    rep = inherit_weights(src, dst, full)
    assert not rep["fresh"]
    x = _images(4)
    src.eval(), dst.eval()
    assert torch.equal(src(x), dst(x))


def test_inherit_copies_kept_slices():
    model = _model(widen(get_spec("resnet20"), 3))
    res = prune_to_budget(model, _images(16), ops(get_spec("resnet20")))
    pruned = _model(res.spec, 5)
    inherit_weights(model, pruned, res.index_map)
    name = "stages.1.0.1.body.0"
    idx = torch.as_tensor(res.index_map[name])
    w_src = model.get_submodule(name).weight
    assert torch.equal(pruned.get_submodule(name).weight, w_src[idx][:, idx])


def test_vgg_head_plan_expands_flattened_channels():
    spec = get_spec("vgg_small").replace(stages=((8,), (8, 8), (8, 4)), stem_width=8)
    plan = channel_plan(spec, {"stages.2.2.0": np.array([1, 3])})
    feat_in = plan["head.fc.0"][0]
    assert list(feat_in) == [16 + i for i in range(16)] + [48 + i for i in range(16)]


def test_unmappable_index_map_raises():
    spec = get_spec("resnet20")
    src = _model(spec)
    bad = {sl.name: np.arange(sl.width - 1) for sl in slots(spec)}
    with pytest.raises(ValueError, match="index_map"):
        inherit_weights(src, _model(spec), bad)
