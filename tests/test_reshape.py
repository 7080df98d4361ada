"""Reshaping rules: Table 2's s values, rounding, depth division, alignment, purity."""
import math

import pytest

from bnnlib.models import get_spec
from bnnlib.reshape import naive_reshape, round_width, scale, valid_s, widen


@pytest.mark.parametrize("name,expected", [
    ("resnet20", [1.5, 3.0]), ("resnet18", [2.0]), ("vgg11", [2.0])])
def test_valid_s_matches_table_2(name, expected):
    assert valid_s(get_spec(name)) == expected


def test_round_width_rule():
    assert [round_width(x) for x in (27.5, 27.49, 0.2, 110.85)] == [28, 27, 1, 111]
    assert round_width(27.0, divisor=4) == 28 and round_width(1.0, divisor=8) == 8
    with pytest.raises(ValueError, match="divisor"):
        round_width(3.0, divisor=0)


def test_naive_reshape_resnet20():
    s3 = naive_reshape(get_spec("resnet20"), 3)
    assert s3.depths == (1, 1, 1)
    assert s3.widths == tuple(round_width(w * math.sqrt(3)) for w in (16, 32, 64)) == (28, 55, 111)
    assert s3.align_width == 64 and s3.stem_width == 16
    s15 = naive_reshape(get_spec("resnet20"), 1.5)
    assert s15.depths == (2, 2, 2) and s15.widths == (20, 39, 78)


def test_widen_and_vgg11_depth_rule():
    w = widen(get_spec("resnet20"), 3)
    assert w.depths == (1, 1, 1) and w.widths == (48, 96, 192)
    v = naive_reshape(get_spec("vgg11"), 2)
    assert v.depths == (1, 1, 1, 1)  # the single-conv stage keeps its only conv
    assert v.align_width == 512


def test_reshape_is_pure():
    spec = get_spec("resnet20")
    before = spec.stages
    naive_reshape(spec, 3)
    assert spec.stages == before and spec.align_width is None


def test_non_uniform_specs_keep_first_blocks():
    spec = get_spec("resnet20").replace(stages=(((8, 8), (9, 9), (10, 10)),) * 3)
    out = scale(spec, 2.0, 3.0)
    assert out.stages == (((16, 16),),) * 3


@pytest.mark.parametrize("s", [2.0, 0.0, -1.0, float("inf")])
def test_bad_s(s):
    with pytest.raises(ValueError, match="s"):
        naive_reshape(get_spec("resnet20"), s)
