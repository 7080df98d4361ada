"""Tests for analysis.dwr.pipeline: the widen -> pre-train -> prune -> train pipeline on tiny synthetic data."""
import json

import pytest

from analysis.dwr import pipeline as D
from bnnlib import data as bdata
from bnnlib.complexity import count
from bnnlib.spec import ResNetSpec, spec_from_dict

KW = {"dataset": "synthetic", "synthetic_train": 240, "synthetic_test": 40, "val_size": 60,
      "batch_size": 32, "device": "cpu", "threads": 1, "eval_test": "end", "progress": False}
TINY = ResNetSpec.uniform((2, 2), (8, 16), stem_width=8, block="bireal", shortcut="pad")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("dwr")
    recs = D.dwr(TINY, 2.0, pretrain_epochs=1, epochs=1, seed=3, records_dir=d, train_kw=KW,
                 calib_images=24, tag="t")
    return d, recs


def test_stages_write_records_and_meet_budget(pipeline):
    d, recs = pipeline
    assert set(recs) == {"pretrain", "prune", "train"}
    assert recs["pretrain"]["status"] == recs["train"]["status"] == "finished"
    pr = recs["prune"]
    budget = count(TINY).totals["ops"]
    assert pr["result"]["budget"] == budget
    assert budget * (1 - pr["key"]["tol"]) <= pr["complexity"]["ops"] <= budget
    assert pr["source_complexity"]["ops"] > budget  # the widened net was over budget
    assert recs["train"]["config"]["spec"] == pr["spec"]
    assert spec_from_dict(pr["spec"]).depths == (1, 1)  # d / s
    assert (d / "prune" / f"{pr['prune_hash']}.json").is_file()
    assert json.loads((d / "prune" / f"{pr['prune_hash']}.json").read_text()) == pr


def test_calibration_indices_are_validation_indices(pipeline):
    _, recs = pipeline
    cal = recs["prune"]["result"]["calibration"]
    ds = bdata.synthetic(KW["synthetic_train"], KW["synthetic_test"], seed=0)
    tr, va = bdata.split_train_val(ds.y_train, KW["val_size"], 0)
    assert cal["split"] == "val" and len(cal["indices"]) == 24
    assert set(cal["indices"]) <= set(va.tolist())
    assert not set(cal["indices"]) & set(tr.tolist())
    assert recs["prune"]["calibration_data"]["source"] == "train split, validation part"


def test_rerun_reads_records_and_lookup_never_trains(pipeline, monkeypatch):
    d, recs = pipeline
    monkeypatch.setattr(D, "train", lambda *a, **k: pytest.fail("retrained a finished stage"))
    again = D.dwr(TINY, 2.0, pretrain_epochs=1, epochs=1, seed=3, records_dir=d, train_kw=KW,
                  calib_images=24, tag="t")
    assert again["train"] == recs["train"] and again["prune"] == recs["prune"]
    other = D.dwr(TINY, 2.0, pretrain_epochs=1, epochs=1, seed=4, records_dir=d, train_kw=KW,
                  calib_images=24, tag="t", lookup=True)
    assert other["prune"] is None and other["train"] is None
    runs, prunes = D.load_stage_records(d)
    assert len(runs) == 2 and len(prunes) == 1
    assert D.spec_of(prunes[0]) == D.spec_of(runs[0]) or D.spec_of(prunes[0]) == D.spec_of(runs[1])


def test_inherit_writes_init_weights(tmp_path):
    recs = D.dwr(TINY, 2.0, pretrain_epochs=1, epochs=1, seed=0, records_dir=tmp_path,
                 train_kw=KW, calib_images=20, inherit=True)
    init = recs["prune"]["init_weights"]
    assert init and recs["train"]["config"]["init_weights"] == init
    assert (tmp_path / "prune" / f"{recs['prune']['prune_hash']}.init.pt").is_file()


@pytest.mark.parametrize("kw, match", [
    (dict(pretrain_epochs=0), "pretrain_epochs"), (dict(epochs=-1), "epochs"),
    (dict(prune_kw={"eps": 0.02}), "prune_kw"), (dict(original_spec="resnet20"), "original_spec"),
])
def test_bad_inputs_raise(tmp_path, kw, match):
    args = dict(original_spec=TINY, s=2.0, records_dir=tmp_path, train_kw=KW, calib_images=8)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        D.dwr(**args)


def test_calibration_needs_a_validation_split():
    from bnnlib.train_config import TrainConfig
    cfg = TrainConfig(dataset="synthetic", synthetic_train=100, synthetic_test=20, val_size=0)
    with pytest.raises(ValueError, match="val_size"):
        D.calibration_images(cfg, 5, 0)
