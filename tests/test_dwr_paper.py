"""Tests for analysis.dwr.paper: the paper's numbers as data."""
import pytest

from analysis.dwr.paper import PAPER, paper_rows


def test_tables_and_key_numbers():
    assert set(PAPER) == {"table4", "table5", "table6", "table7"}
    t4 = {r["key"]: r["acc"] for r in paper_rows("table4")}
    assert t4 == {"fp": 90.8, "original": 85.2, "original_plus1": 85.2, "naive_1.5": 85.4,
                  "naive_3": 85.8, "dwr_1.5": 85.5, "dwr_3": 86.0}
    t5 = [r["acc"] for r in paper_rows("table5")]
    assert t5 == [90.8, 87.5, 88.0, 88.2, 88.3, 88.4]
    t6 = {r["key"]: r["acc"] for r in paper_rows("table6")}
    assert (t6["vgg11/dwr"], t6["resnet18/dwr"], t6["resnet20/dwr"]) == (84.9, 91.3, 86.0)
    t7 = {r["key"]: r["acc"] for r in paper_rows("table7")}
    assert (t7["original"], t7["original_minus1"], t7["original_plus1"]) == (90.2, 90.1, 90.6)
    assert all(r["source"] == "DWR (AAAI 2023), Table 6" for r in paper_rows("table6"))


def test_unique_keys_and_bad_table():
    for t in PAPER:
        keys = [r["key"] for r in paper_rows(t)]
        assert len(keys) == len(set(keys))
    with pytest.raises(ValueError, match="table"):
        paper_rows("table8")
