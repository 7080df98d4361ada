"""Tests for analysis.dwr.study and analysis.dwr.tables: what each table runs, and the record-only table builder."""
import math

import pytest

from analysis.dwr import study as T
from analysis.dwr import tables as TB
from bnnlib.complexity import count
from bnnlib.models import get_spec
from bnnlib.reshape import naive_reshape

P = {"seeds": [0, 1], "epochs": 3, "pretrain_epochs": 1, "calib_images": 20,
     "table5_pretrain": [1, 2, 3]}


def test_table4_plan_matches_the_paper_rows():
    js = T.jobs("table4", P)
    assert len(js) == 7 * 2
    by = {(j["key"], j["seed"]): j for j in js}
    r20 = get_spec("resnet20")
    assert by[("fp", 0)]["spec"] == r20.replace(binary=False)
    assert by[("original_plus1", 1)]["spec"].align_width == 64
    assert by[("naive_3", 0)]["spec"] == naive_reshape(r20, 3)
    assert by[("naive_3", 0)]["spec"].depths == (1, 1, 1)
    assert by[("dwr_1.5", 0)]["kind"] == "dwr" and by[("dwr_1.5", 0)]["s"] == 1.5
    assert by[("dwr_3", 1)]["original"] == r20


def test_other_tables_plan():
    t5 = {j["key"]: j for j in T.jobs("table5", {**P, "seeds": [0]})}
    assert [t5[k]["pretrain"] for k in ("dwr_pre5", "dwr_pre10", "dwr_pre15", "dwr_full")] == [1, 2, 3, 3]
    assert t5["original"]["spec"].input_binarizer == "rsign"
    t6 = {j["key"] for j in T.jobs("table6", {**P, "seeds": [0]})}
    assert {"vgg11/dwr", "resnet18/dwr", "resnet20/dwr_authors"} <= t6
    t7 = {j["key"]: j for j in T.jobs("table7", {**P, "seeds": [0]})}
    assert count(t7["original_plus1"]["start"]).totals["ops"] > count(get_spec("vgg_small")).totals["ops"]
    assert t7["original_minus1"]["start"].depths == (1, 2, 1)


@pytest.mark.parametrize("table, preset, match", [
    ("table9", P, "table"), ("table4", {**P, "epoch": 3}, "preset"),
])
def test_bad_inputs_raise(table, preset, match):
    with pytest.raises(ValueError, match=match):
        T.jobs(table, preset)


def _fake_record(job, acc):
    from bnnlib.spec import spec_to_dict
    cfg = {"spec": T._norm(spec_to_dict(job["spec"])), "epochs": P["epochs"], "seed": job["seed"],
           "tag": f"dwr:{job['row_id']}", "model": "resnet20"}
    return {"status": "finished", "seed": job["seed"], "config_hash": f"h{acc}", "config": cfg,
            "dataset": {"note": "JPEG-rebuilt test note"},
            "metrics": {"final_test_acc": acc, "test_acc_at_best_val": acc - 1,
                        "best_epoch": 2 + job["seed"]}}


def test_build_table_mean_std_and_complexity(monkeypatch):
    accs = {("original", 0): 50.0, ("original", 1): 54.0, ("naive_3", 0): 60.0}
    runs = [_fake_record(j, accs[(j["key"], j["seed"])]) for j in T.jobs("table4", P)
            if (j["key"], j["seed"]) in accs]
    runs.append({**runs[0], "config": {**runs[0]["config"], "epochs": 99}})  # other preset
    monkeypatch.setattr(TB, "record_index", lambda d: {"runs": runs, "by_hash": {}, "prunes": {}})
    monkeypatch.setattr(T, "run_job", lambda *a, **k: pytest.fail("the builder must never train"))
    rows = {r["key"]: r for r in TB.build_table("table4", P, "unused")}
    o = rows["original"]
    assert o["acc_mean"] == 52.0 and math.isclose(o["acc_std"], math.sqrt(8.0))
    assert o["n_seeds"] == 2 and o["paper_acc"] == 85.2 and o["acc_at_best_val_mean"] == 51.0
    assert o["best_val_epoch"] == "2/3, 3/3"  # per seed: where validation accuracy peaked
    assert o["ops"] == count(get_spec("resnet20")).totals["ops"]
    assert rows["naive_3"]["acc_std"] is None and rows["naive_3"]["depths"] == "1/1/1"  # one seed
    ours = TB.table_frame(list(rows.values()))["ours"].tolist()
    assert "52.00 ± 2.83" in ours and "60.00 (1 seed)" in ours  # no '± 0.00' from one seed
    order = {(o["a"], o["b"]): o for o in TB.orderings("table4", list(rows.values()))}
    assert order["naive_3", "original"]["ours_gap"] == 8.0
    assert order["naive_3", "original"]["noise_std"] is None  # no spread measured for naive_3
    assert rows["dwr_3"]["acc_mean"] is None and rows["dwr_3"]["n_seeds"] == 0
    assert o["dataset_note"] == "JPEG-rebuilt test note"


def test_rows_without_records_count_ops_at_the_presets_resolution(tmp_path):
    r20 = get_spec("resnet20")
    at = {res: {r["key"]: r for r in TB.build_table("table4", {**P, "resolution": res}, tmp_path)}
          for res in (32, 16)}
    assert at[32]["original"]["ops"] == count(r20).totals["ops"]
    assert at[16]["original"]["ops"] == count(r20.replace(input_size=16)).totals["ops"]
    assert at[16]["fp"]["ops"] < at[32]["fp"]["ops"] / 3  # convs cost a quarter at 16x16
    assert at[16]["original"]["acc_mean"] is None and at[16]["original"]["n_seeds"] == 0
