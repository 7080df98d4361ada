"""Specs: validation names field, value and what is allowed; dict round trip; stable hash."""
import pytest

from bnnlib.spec import ResNetSpec, VGGSpec, spec_from_dict, spec_hash, spec_to_dict
from bnnlib.models import get_spec, list_models


@pytest.mark.parametrize("name", list_models())
def test_round_trip_and_hash(name):
    s = get_spec(name)
    d = spec_to_dict(s)
    assert spec_from_dict(d) == s
    assert spec_hash(spec_from_dict(d)) == spec_hash(s)


def test_hash_changes_with_any_field():
    s = get_spec("resnet20")
    assert spec_hash(s) != spec_hash(s.replace(binary=False))
    assert spec_hash(s) != spec_hash(s.replace(stages=(((16, 16),),) + s.stages[1:]))
    with pytest.raises(ValueError, match="stages"):
        s.replace(stages=((16, 16),))


@pytest.mark.parametrize("kwargs,msg", [
    (dict(depths=(0, 1, 1), widths=(8, 8, 8)), "depths: got 0"),
    (dict(depths=(1, 1), widths=(8, 8, 8)), "depths/widths"),
    (dict(depths=(1,), widths=(-4,)), "width: got -4"),
    (dict(depths=(1,), widths=(8,), block="wide"), "block: got 'wide'"),
    (dict(depths=(1,), widths=(8,), shortcut="proj"), "shortcut: got 'proj'"),
    (dict(depths=(1,), widths=(8,), strides=(3,)), "strides"),
    (dict(depths=(1,), widths=(8,), num_classes=0), "num_classes: got 0"),
    (dict(depths=(1,), widths=(8,), binary=1), "binary: got 1"),
    (dict(depths=(1,), widths=(8,), pad_value=0.5), "pad_value"),
    (dict(depths=(1,), widths=(8,), align_width=2.5), "align_width"),
])
def test_resnet_spec_validation(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        ResNetSpec.uniform(**kwargs)


def test_basic_block_needs_two_widths():
    with pytest.raises(ValueError, match="2 widths"):
        ResNetSpec(stages=(((8,),),), strides=(1,), block="basic")


def test_vgg_validation():
    with pytest.raises(ValueError, match="input_size"):
        VGGSpec(stages=((8,),) * 6)
    with pytest.raises(ValueError, match="fc"):
        VGGSpec(stages=((8,),), fc=(0,))
    with pytest.raises(ValueError, match="family"):
        spec_from_dict({"family": "mlp"})


def test_uniform_properties():
    s = ResNetSpec.uniform((3, 2), (16, 32), convs_per_block=2)
    assert s.depths == (3, 2) and s.widths == (16, 32) and s.num_binary_convs == 10
    assert s.strides == (1, 2)
