"""Error accumulation: the residual activation as a study axis, the 16x16 regime and the
trained-recipe options; all hash-neutral at their defaults."""
import json
from pathlib import Path

import pytest
from torch import nn

from analysis.error_accumulation import (config_hash, fit_table, grid, load_records, make_config,
                                         records_frame, run_study, select_records)
from analysis.error_accumulation.plots import _BB_LABEL
from analysis.error_accumulation.study import make_spec
from bnnlib.models import build

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_keep_committed_hashes():
    recs = [json.loads(p.read_text()) for p in
            sorted((ROOT / "results" / "quick" / "error_accumulation").glob("*.json"))[:20]]
    recs = [r for r in recs if r.get("config", {}).get("study") == "error_accumulation"]
    assert len(recs) >= 10
    for r in recs:
        c = r["config"]
        assert "act" not in c and "resolution" not in c
        keys = ("backbone", "blocks", "width", "binarizer", "seed", "batches", "batch_size",
                "trained_epochs", "train_subset", "dataset", "bn_mode", "ks", "data_seed", "val_size")
        rebuilt = make_config(**{k: c[k] for k in keys})
        assert config_hash(rebuilt) == r["config_hash"]


def test_act_axis_builds_the_named_residual_activation():
    c = make_config(backbone="resnet", blocks=2, width=4, dataset="synthetic", act="identity")
    assert c["act"] == "identity" and config_hash(c) != config_hash({k: v for k, v in c.items() if k != "act"})
    acts = {type(m).__name__ for m in build(make_spec("resnet", 1, 4, act="identity")).modules()}
    assert "Hardtanh" not in acts
    assert "Hardtanh" in {type(m).__name__ for m in build(make_spec("resnet", 1, 4)).modules()}
    assert "RPReLU" in {type(m).__name__ for m in build(make_spec("resnet", 1, 4, act="rprelu")).modules()}
    with pytest.raises(ValueError, match="act: got"):
        make_config(act="gelu", dataset="synthetic")
    cfgs = grid(["resnet"], [1, 2], [4], ["approx_sign"], [0], acts=["hardtanh", "identity"],
                dataset="synthetic")
    assert sorted(c.get("act", "hardtanh") for c in cfgs) == ["hardtanh"] * 2 + ["identity"] * 2


def test_options_validated_and_neutral():
    c = make_config(dataset="synthetic", resolution=16, trained_epochs=2,
                    train_options={"optimizer": "cifar_adam", "label_smoothing": 0.1})
    assert c["resolution"] == 16 and c["train_options"]["optimizer"] == "cifar_adam"
    assert "train_options" not in make_config(dataset="synthetic", train_options={"lr": 0.1})  # init
    with pytest.raises(ValueError, match="train_options"):
        make_config(dataset="synthetic", trained_epochs=1, train_options={"epochs": 3})
    with pytest.raises(ValueError, match="resolution"):
        make_config(dataset="synthetic", resolution=12)


def test_acts_measured_apart_at_16px(tmp_path):
    cfgs = grid(["resnet"], [1, 2, 3], [4], ["approx_sign"], [0], acts=["hardtanh", "identity"],
                dataset="synthetic", batch_size=4, ks=(4.0,), resolution=16)
    run_study(cfgs, tmp_path / "rec", log=None)
    recs = select_records(load_records(tmp_path / "rec"), batch_size=4, ks=(4.0,),
                          dataset="synthetic", resolution=16)
    assert len(recs) == 6 and recs[0]["dataset"]["resolution"] == 16
    with pytest.raises(ValueError, match="no record"):  # 32-px settings never pool 16-px records
        select_records(recs, batch_size=4, ks=(4.0,), dataset="synthetic")
    rf = records_frame(recs)
    assert set(rf["backbone"]) == {"resnet", "resnet+identity"}
    table, _ = fit_table(rf, metrics=("drift_head",), n_boot=20)
    assert set(table["backbone"]) == {"resnet", "resnet+identity"}
    assert _BB_LABEL["resnet+identity"].endswith("nothing after +")
    assert _BB_LABEL["resnet"].endswith("hardtanh after +") and _BB_LABEL["vgg"].endswith(", hardtanh")
    assert "16x16" in rf["dataset_note"].iloc[0]
