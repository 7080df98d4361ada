"""Tests for analysis.gain_surface.study: grid, record parsing, equilibrium tables on synthetic data."""

import numpy as np
import pytest

from analysis.gain_surface import study as gs
from analysis.gain_surface.__main__ import main as gain_main

def _record(p, w, d, seed, acc, tag=None):
    return {"status": "finished", "config_hash": f"{p}{w}{d}{seed}", "dataset": {"name": "synthetic"},
            "config": {"tag": tag or f"{gs.TAG} resnet20 w={w:.4f} d={d}", "binary": p == "bnn",
                       "seed": seed, "epochs": 1},
            "metrics": {"final_test_acc": acc}, "complexity": {"ops": d * w * w, "params": 1}}


def test_grid_has_per_precision_iso_ops_diagonals():
    shapes = gs.make_grid("resnet20", depths=(1, 2, 3), width_mults=(0.5, 1.0), ref_depth=3,
                          iso_refs=(0.5,), stem_mult=0.5)
    rect = [s for s in shapes if s["width_mult"] in (0.5, 1.0)]
    diag = {s["depth"]: s for s in shapes if s not in rect}
    assert len(rect) == 6 and all(s["precisions"] == ["fp", "bnn"] for s in rect)
    assert all(s["spec"].stem_width == 8 and not s["spec"].binary for s in shapes)
    ref = next(s for s in shapes if (s["width_mult"], s["depth"]) == (0.5, 3))
    assert ref["spec"].widths == (8, 16, 32) and ref["spec"].depths == (3, 3, 3)
    # a fixed stem: FP and BNN diagonals coincide, so each diagonal net is trained in both
    assert sorted(diag) == [1, 2] and all(s["precisions"] == ["fp", "bnn"] for s in diag.values())
    for p in ("fp", "bnn"):  # matched OPs within each precision, up to width rounding
        c0 = gs.count_ops(ref["spec"], p)
        for s in diag.values():
            assert gs.count_ops(s["spec"], p) == pytest.approx(c0, rel=gs.ISO_TOL)
    # half-width first convs of later stages make a shallow net cheaper than d w^2 says
    assert diag[1]["width_mult"] > 0.5 * np.sqrt(3) and diag[2]["spec"].widths == (10, 20, 40)
    configs = gs.make_configs(shapes, seeds=(0, 3), dataset="synthetic", epochs=1)
    assert len(configs) == 4 * len(shapes) and sum(c.binary for c in configs) == 2 * len(shapes)
    assert {c.seed for c in configs} == {0, 3} and configs[0].build_spec() == rect[0]["spec"]
    with pytest.raises(ValueError, match="precisions"):
        gs.make_configs(shapes, precisions=("int8",))


def test_shape_spec_fixed_stem_and_bad_values():
    s = gs.shape_spec("resnet20", 2, 0.75, stem_mult=0.5)
    assert s.stem_width == 8 and s.widths == (12, 24, 48) and s.depths == (2, 2, 2)
    assert gs.shape_spec("resnet20", 1, 1.5).stem_width == 16  # the real stem keeps its width
    with pytest.raises(ValueError, match="stem"):
        gs.shape_spec("resnet20", 1, 0.5)
    with pytest.raises(ValueError, match="depth"):
        gs.shape_spec("resnet20", 0, 1.0)
    with pytest.raises(ValueError, match="width_mult"):
        gs.shape_spec("resnet20", 1, -1.0)
    with pytest.raises(ValueError, match="backbone"):
        gs.shape_spec("vgg_small", 1, 1.0)
    with pytest.raises(ValueError, match="ref_depth"):
        gs.make_grid(depths=(1, 2), ref_depth=3)


def test_runs_frame_parses_and_filters_records():
    recs = [_record("bnn", 0.5, 2, 1, 61.0), _record("fp", 1.0, 3, 0, 80.0),
            {**_record("fp", 1.0, 1, 0, 10.0), "status": "diverged"},
            _record("fp", 1.0, 1, 0, 50.0, tag="other study")]
    df = gs.runs_frame(recs)
    assert list(zip(df["precision"], df["width_mult"], df["depth"], df["acc"])) == [
        ("bnn", 0.5, 2, 61.0), ("fp", 1.0, 3, 80.0)]
    with pytest.raises(ValueError, match="metric"):
        gs.runs_frame(recs, metric="train_acc")


def test_study_configs_from_quick_preset(tmp_path):
    params = gs.load_preset("quick")
    committed = params["records_dir"]
    params["data_root"] = str(tmp_path)  # no CIFAR-10 there ...
    params["records_dir"] = str(tmp_path / "records")  # ... and no records: 'auto' -> synthetic
    configs = gs.study_configs(params)
    assert len(configs) == 9 * 2 * len(params["seeds"])
    assert {c.dataset for c in configs} == {"synthetic"} and {c.eval_test for c in configs} == {"end"}
    assert len({c.tag for c in configs}) == 9
    # The committed CIFAR-10 records make 'auto' pick cifar10 even without the data (re-plot).
    assert gs.resolve_dataset("auto", str(tmp_path), committed) == "cifar10"
    with pytest.raises(ValueError, match="missing"):
        gs.study_configs({"backbone": "resnet20"})
    with pytest.raises(ValueError, match="dataset"):
        gs.resolve_dataset("imagenet")
    with pytest.raises(ValueError, match="preset"):
        gs.load_preset("huge")


def test_cli_plan_lists_pending_runs(tmp_path, capsys):
    assert gain_main(["plan", "--preset", "quick", "--records", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "36 runs" in out and "'pending': 36" in out
