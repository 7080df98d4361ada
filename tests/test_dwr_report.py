"""Tests for analysis.dwr.tables and analysis.dwr.plots: table frame, Markdown/CSV table, accuracy-vs-OPs figure."""
import pandas as pd
import pytest

from analysis import dwr as R

pytest.importorskip("analysis.figures")


def _rows():
    base = {"table": "table4", "backbone": "ResNet-20", "bits": "1/1", "reproduced": True,
            "acc_std": 0.5, "n_seeds": 2, "acc_at_best_val_mean": 40.0, "params": 2e5,
            "acts": 1e5, "dataset_note": "JPEG-rebuilt CIFAR-10 copy", "depths": "3/3/3",
            "dataset_short": "JPEG-rebuilt CIFAR-10 (short)",
            "widths": "16/32/64"}
    return [{**base, "key": "fp", "method": "FP", "reshaping": "FP", "paper_acc": 90.8,
             "acc_mean": 70.0, "ops": 4e7},
            {**base, "key": "original", "method": "None", "reshaping": "Original",
             "paper_acc": 85.2, "acc_mean": 41.0, "ops": 1.07e6},
            {**base, "key": "naive_3", "method": "None", "reshaping": "Naive reshaping",
             "paper_acc": 85.8, "acc_mean": 43.0, "ops": 1.01e6, "depths": "1/1/1"},
            {**base, "key": "dwr_3", "method": "None", "reshaping": "Reshaping with pruning (DWR)",
             "paper_acc": 86.0, "acc_mean": None, "ops": None, "n_seeds": 0},
            {**base, "key": "x", "method": "IR-Net", "reshaping": "Original", "paper_acc": 86.5,
             "acc_mean": None, "reproduced": False}]


def test_table_frame_and_files(tmp_path):
    df = R.table_frame(_rows())
    assert list(df["ours"]) == ["70.00 ± 0.50", "41.00 ± 0.50", "43.00 ± 0.50", "missing", "not run"]
    paths = R.write_table("table4", _rows(), tmp_path, "unit", "recs")
    md = paths["md"].read_text()
    assert "85.2" in md and "JPEG-rebuilt" in md and "not run" in md
    assert len(pd.read_csv(paths["csv"])) == 5


def test_accuracy_vs_ops_plots_bnn_rows_only(tmp_path):
    paths = R.accuracy_vs_ops(_rows(), tmp_path, "unit")
    data = pd.read_csv(paths["csv"])
    assert list(data["key"]) == ["original", "naive_3"]  # FP, missing and not-run rows left out
    assert set(data["group"]) == {"Original", "Naive reshaping"}
    assert paths["pdf"].stat().st_size > 0
    import json
    assert json.loads(paths["json"].read_text())["dataset"] == "JPEG-rebuilt CIFAR-10 (short)"


def test_accuracy_vs_ops_skips_the_figure_before_any_bnn_row_is_measured(tmp_path, capsys):
    rows = [{**r, "acc_mean": None} if r["method"] != "FP" else r for r in _rows()]
    assert R.accuracy_vs_ops(rows, tmp_path, "unit") == {}
    assert list(tmp_path.iterdir()) == [] and "figure skipped" in capsys.readouterr().out


def test_dataset_name_resolution(tmp_path):
    assert R.resolve_dataset_name("auto", str(tmp_path)) == "synthetic"
    assert R.resolve_dataset_name("cifar10") == "cifar10"
    with pytest.raises(ValueError, match="dataset"):
        R.resolve_dataset_name("imagenet")


def test_orderings_sign_and_noise(tmp_path):
    rows = _rows()
    rows[3].update(acc_mean=44.0, acc_std=0.5, n_seeds=2)  # dwr_3
    got = {(o["a"], o["b"]): o for o in R.orderings("table4", rows)}
    o = got[("naive_3", "original")]
    assert o["paper_gap"] == pytest.approx(0.6) and o["ours_gap"] == pytest.approx(2.0)
    assert o["sign_holds"] is True
    # gap 2 with se 0.5 on 2 df: t = 4.30, so the 95% interval [-0.15, 4.15] reaches 0
    assert o["ci95_lo"] == pytest.approx(2.0 - 4.3027 * 0.5, abs=1e-3) and o["separated"] is False
    assert got[("dwr_3", "naive_3")]["ours_gap"] == pytest.approx(1.0)
    assert ("naive_1.5", "original") not in got  # a row we do not have is skipped
    df = pd.read_csv(R.write_orderings("table4", rows, tmp_path, "unit", "r")["csv"])
    assert len(df) == len(got)


def test_orderings_report_each_seeds_own_gap(tmp_path):
    """seed_gaps pairs the two rows' runs of the same seed (seeds only one row has are left
    out); seeds_same_sign counts those with the paper's sign, and is empty for a paper tie."""
    rows = _rows()
    rows[1]["seed_accs"] = {0: 41.0, 1: 42.0, 2: 40.0}  # original
    rows[2]["seed_accs"] = {0: 43.5, 1: 41.5}  # naive_3: seed 2 missing
    got = {(o["a"], o["b"]): o for o in R.orderings("table4", rows)}
    o = got[("naive_3", "original")]
    assert o["seed_gaps"] == "0: +2.50; 1: -0.50" and o["seeds_same_sign"] == "1/2"
    df = pd.read_csv(R.write_orderings("table4", rows, tmp_path, "unit", "r")["csv"])
    assert df.loc[df["a"] == "naive_3", "seeds_same_sign"].item() == "1/2"


def test_short_dataset_line_keeps_the_input_size():
    """The short data line under the accuracy-vs-OPs plot still says 16x16 for the cpu regime,
    and it is built from the record's dataset dict (not parsed back out of the long line)."""
    from bnnlib.data import describe
    info = {"name": "cifar10", "note": "JPEG-rebuilt CIFAR-10 copy (q 75)", "jpeg_rebuilt": True}
    assert describe({**info, "resolution": 16}, short=True).startswith(
        "JPEG-rebuilt CIFAR-10 at 16x16 (lossy copy")
    assert " at " not in describe(info, short=True)
    official = {"name": "cifar10", "note": "official CIFAR-10 pixels", "jpeg_rebuilt": False}
    assert describe(official, short=True) == describe(official) == "CIFAR-10 (official CIFAR-10 pixels)"


@pytest.mark.parametrize("a, b", [((60.0, 0.4, 3), (57.0, 0.9, 2)), ((52.8, 0.8, 2), (52.1, 0.3, 3)),
                                  ((58.7, 1.2, 3), (57.6, 0.1, 3))])
def test_welch_interval_agrees_with_scipys_welch_test(a, b):
    """The interval excludes 0 exactly when scipy's Welch t-test gives p < 0.05, and the gap's
    t statistic over the interval's half-width is the t quantile (an independent computation)."""
    from scipy import stats
    lo, hi = R.welch_ci(*a, *b)
    t, p = stats.ttest_ind_from_stats(a[0], a[1], a[2], b[0], b[1], b[2], equal_var=False)
    assert lo < a[0] - b[0] < hi and (lo > 0 or hi < 0) == (p < 0.05)
    se = (a[1] ** 2 / a[2] + b[1] ** 2 / b[2]) ** 0.5
    assert t == pytest.approx((a[0] - b[0]) / se)
    with pytest.raises(ValueError, match="n_seeds"):
        R.welch_ci(60.0, 0.4, 1, 57.0, 0.9, 2)
