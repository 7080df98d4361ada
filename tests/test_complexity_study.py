"""analysis.complexity: Table 1/3 ratios on real models, Table 8 rows, input checks."""
import math

import pytest

from analysis import complexity as C


@pytest.fixture(scope="module")
def width_only():
    """resnet20 has 3 blocks per stage, so s=2 allows width scaling but no depth scaling."""
    return C.scaling_rows(["resnet20"], [2.0], ["bnn"])


def test_depth_rows_only_where_s_divides(width_only):
    assert set(width_only["transform"]) == {"width"}
    assert len(width_only) == 2 * len(C.QUANTITIES)  # body and whole
    assert set(width_only["widths_new"]) == {"23/45/91"}  # round(sqrt(2) * 16/32/64)


def test_width_rule_on_the_body(width_only):
    body = width_only[width_only["scope"] == "body"].set_index("quantity")
    assert body.loc["acts", "measured"] == pytest.approx(math.sqrt(2), rel=0.02)
    assert body.loc["params", "measured"] == pytest.approx(2.0, rel=0.02)
    assert (body["predicted"] == [2.0, 2.0, math.sqrt(2)]).all()


def test_error_summary(width_only):
    summ = C.error_summary(width_only)
    assert len(summ) == 6 and (summ["n"] == 1).all()
    row = summ[(summ["scope"] == "body") & (summ["quantity"] == "acts")].iloc[0]
    expected = abs(width_only.query("scope == 'body' and quantity == 'acts'")["rel_error"].iloc[0])
    assert row["max_abs_rel_error"] == pytest.approx(expected) and row["worst_model"] == "resnet20"


def test_scaling_table_is_wide(width_only):
    wide = C.scaling_table(width_only, "whole")
    assert list(wide.columns) == ["model", "precision", "transform", "s", "ops_pred", "ops_meas",
                                  "params_pred", "params_meas", "acts_pred", "acts_meas"]
    assert len(wide) == 1


@pytest.mark.parametrize("kw,match", [
    ({"models": ["resnet99"]}, "models: got 'resnet99'"),
    ({"factors": [1.0]}, "factors: got 1.0"),
    ({"factors": [True]}, "factors: got True"),
    ({"precisions": ["int8"]}, "precisions: got 'int8'"),
])
def test_bad_inputs(kw, match):
    args = {"models": ["resnet20"], "factors": [3.0], "precisions": ["fp"], **kw}
    with pytest.raises(ValueError, match=match):
        C.scaling_rows(**args)


def test_table8_rows_carry_paper_numbers():
    t8 = C.table8_rows().set_index(["method", "reshaping"])
    assert len(t8) == len(C.PAPER_TABLE8)
    assert t8.loc[("ReActNet", "DWR"), "widths"] == "116/188/408/910"
    assert t8.loc[("None", "DWR"), "paper_ops_1e8"] == 1.73
    # The DWR Bi-Real-18 has fewer activations than the original (Sec. 4.3).
    assert t8.loc[("None", "DWR"), "acts_M"] < t8.loc[("None", "Original"), "acts_M"]
    # Binary downsampling convs can only lower OPs; extras can only raise them.
    assert (t8["ours_binary_1x1_ops_1e8"] <= t8["ours_ops_1e8"] + 1e-12).all()
    assert (t8["ours_all_extras_ops_1e8"] >= t8["ours_ops_1e8"]).all()
