"""Complexity counter: hand-computed toy, published figures, Tables 1/3 scaling, golden file."""
import json
import math
from pathlib import Path

import pytest

from bnnlib import complexity as C
from bnnlib.models import create_model, get_spec, list_models
from bnnlib.reshape import naive_reshape
from bnnlib.spec import ResNetSpec

GOLDEN = Path(__file__).parent / "golden" / "complexity.json"


def test_hand_computed_toy():
    spec = ResNetSpec.uniform((1,), (8,), stem_width=8, strides=(1,), input_size=8)
    t = C.count(spec).totals
    hw = 8 * 8
    stem, conv, fc = 3 * 9 * 8 * hw, 8 * 9 * 8 * hw, 8 * 10
    assert t["flops"] == stem + fc
    assert t["bops"] == 2 * conv
    assert t["ops"] == stem + fc + 2 * conv / 64
    assert t["acts"] == 8 * hw * 3 + 10
    assert t["params_binary"] == 2 * 8 * 8 * 9
    assert t["params_real"] == 3 * 9 * 8 + 3 * 2 * 8 + 8 * 10 + 10
    assert t["size_bits"] == t["params_binary"] + 32 * t["params_real"]


def test_fp_resnet18_imagenet_matches_published_flops():
    t = C.count("resnet18_imagenet", binary=False).totals
    assert abs(t["flops"] / 1.82e9 - 1) < 0.01 and t["bops"] == 0


def test_bireal18_matches_published_ops():
    t = C.count("resnet18_imagenet").totals
    assert abs(t["ops"] / 1.63e8 - 1) < 0.02


def _binary_part(spec):
    rows = [r for r in C.count(spec).layers if r["binary"]]
    return sum(r["macs"] for r in rows), sum(r["params"] for r in rows), sum(r["acts"] for r in rows)


@pytest.mark.parametrize("s", [4, 9])
def test_table_1_and_3_exact_on_uniform_stack(s):
    """N[w, d] vs N[sqrt(s) w, d/s]: binary OPs and params equal, activations / sqrt(s)."""
    w, d = 16, 36 // 1
    a = ResNetSpec.uniform((d,), (w,), stem_width=w, strides=(1,))
    k = int(math.isqrt(s))
    b = ResNetSpec.uniform((d // s,), (w * k,), stem_width=w * k, strides=(1,))
    (oa, pa, aa), (ob, pb, ab) = _binary_part(a), _binary_part(b)
    assert ob == oa and pb == pa
    assert ab / aa == pytest.approx(1 / math.sqrt(s))


def test_table_1_depth_and_width_scaling():
    base = ResNetSpec.uniform((2,), (16,), stem_width=16, strides=(1,))
    deep = ResNetSpec.uniform((4,), (16,), stem_width=16, strides=(1,))
    wide = ResNetSpec.uniform((2,), (32,), stem_width=32, strides=(1,))
    (o0, p0, a0), (o1, p1, a1), (o2, p2, a2) = map(_binary_part, (base, deep, wide))
    assert (o1 / o0, p1 / p0, a1 / a0) == (2, 2, 2)     # depth x s: everything x s
    assert (o2 / o0, p2 / p0, a2 / a0) == (4, 4, 2)     # width x sqrt(s), s=4: OPs, params x s; acts x sqrt(s)


def test_naive_reshape_resnet20_keeps_ops_and_cuts_acts():
    a, b = C.count("resnet20").totals, C.count(naive_reshape(get_spec("resnet20"), 3)).totals
    assert 0.9 < b["ops"] / a["ops"] < 1.05
    (_, _, aa), (_, _, ab) = _binary_part(get_spec("resnet20")), _binary_part(naive_reshape(get_spec("resnet20"), 3))
    assert ab / aa == pytest.approx(1 / math.sqrt(3), rel=0.05)


def test_golden_file_exact():
    """Regenerate with: python -m bnnlib.complexity --write-golden tests/golden/complexity.json"""
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == list_models()
    assert C.golden() == golden


def test_conventions_add_what_they_say():
    spec = ResNetSpec.uniform((1,), (8,), stem_width=8, strides=(1,), input_size=8)
    base = C.count(spec).totals
    bn = C.count(spec, conventions=C.Conventions(count_bn=True)).totals
    assert bn["flops"] - base["flops"] == 3 * 8 * 64           # three BN layers, one op/element
    act = C.count(spec, conventions=C.Conventions(count_act=True)).totals
    assert act["flops"] - base["flops"] == 3 * 8 * 64          # three Hardtanh
    b32 = C.count(spec, conventions=C.Conventions(bops_per_op=32)).totals
    assert b32["ops"] - base["ops"] == pytest.approx(base["bops"] / 32 - base["bops"] / 64)


def test_module_input_counts_like_its_spec():
    m = create_model("vgg_small")
    assert C.count(m).totals == C.count("vgg_small").totals


def test_dwr_table_rows_and_ratios():
    rows = C.dwr_table()
    assert {r["backbone"] for r in rows} == {"resnet20", "resnet18", "vgg_small", "vgg11", "resnet18_imagenet"}
    for r in rows:
        if r["kind"] == "original":
            assert r["ops_ratio"] == 1.0 and r["within_budget"]
    naive20 = next(r for r in rows if r["model"] == "resnet20 naive s=3")
    assert naive20["acts_ratio"] < 0.7


def test_cli_json_keys(capsys):
    assert C.main(["resnet20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(C.TOTAL_KEYS)
    assert C.main(["resnet20", "--fp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bops"] == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="model"):
        C.count(3.5)
    with pytest.raises(ValueError, match="bops_per_op"):
        C.Conventions(bops_per_op=0)
    with pytest.raises(ValueError, match="name"):
        C.count("resnet99")
    assert C.main(["resnet99"]) == 2
