"""analysis.dwr.imagenet and bnnlib.recipes: Table 8 recipes, the DWR chain on a tiny generated
ImageFolder (single process; the same chain under torchrun is exercised by hand, see README),
the plan's GPU-hours and the provenance of its throughput."""
import pytest
import yaml

from analysis.dwr import imagenet as I
from bnnlib.imagenet import fake_folder
from bnnlib.recipes import RECIPES, recipe


def test_recipes_build_and_scale_lr_with_the_global_batch():
    for name in RECIPES:
        cfg = recipe(name)
        assert cfg.dataset == "imagenet" and cfg.batch_size == 512 and cfg.lr == 1e-3
        assert cfg.build_spec().num_classes == 1000 and cfg.build_spec().input_size == 224
    assert recipe("bireal18", batch_size=256).lr == pytest.approx(5e-4)
    assert recipe("bireal18", batch_size=256, lr=1e-3).lr == 1e-3
    r2 = recipe("reactnet18_dwr_2step")
    assert r2.two_step and r2.lighting == 0.1 and r2.build_spec().widths == (116, 188, 408, 910)
    assert r2.build_spec().input_binarizer == "rsign"
    with pytest.raises(ValueError, match="recipe: got 'nope'"):
        recipe("nope")


def test_plan_states_unmeasured_throughput_and_scales(capsys):
    p = I.load_preset("table8")
    assert p["rows"] == list(I.ROWS)
    p["rows"] = ["none/original", "none/dwr"]  # complexity counts take seconds each
    I._print_plan(p, 8, None)
    out = capsys.readouterr().out
    assert "UNMEASURED" in out and "RTX Titan" in out and "GPU-hours" in out
    a, b = I.plan_rows(p, 8), I.plan_rows(p, 8, images_per_s=2 * I.PUBLISHED_THROUGHPUT["images_per_s_per_gpu"])
    assert sum(r["gpu_hours"] for r in a) == pytest.approx(2 * sum(r["gpu_hours"] for r in b))
    orig = next(r for r in a if r["row"] == "none/original")
    assert orig["epochs"] == 128 and orig["wall_hours"] == pytest.approx(orig["gpu_hours"] / 8)
    assert I.main(["plan", "--preset", "nope"]) == 2


@pytest.mark.slow
def test_dwr_chain_on_a_tiny_folder(tmp_path):
    root = fake_folder(tmp_path / "inet")
    preset = {"rows": ["none/original", "none/dwr"], "epochs": 1, "pretrain_epochs": 1,
              "calib_images": 8, "records_dir": str(tmp_path / "rec"),
              "overrides": {"data_root": str(root), "image_size": 32, "width_mult": 0.125,
                            "model_kwargs": {"num_classes": 4}, "val_size": 8, "batch_size": 8,
                            "lr": 1e-3, "workers": 0, "threads": 1, "device": "cpu"}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(preset))
    p = I.load_preset(str(path))
    recs = I.run(p)
    assert [r["status"] for r in recs] == ["finished", "finished"]
    assert recs[1]["_prune"]["calibration_data"]["source"] == "train split, validation part"
    rows = {r["row"]: r for r in I.table_rows(p)}
    assert rows["none/original"]["ops_ratio"] == pytest.approx(1.0)
    assert rows["none/dwr"]["ops_ratio"] <= 1.02 and rows["none/dwr"]["n_seeds"] == 1
    assert rows["none/dwr"]["paper_top1"] == 56.9 and rows["none/original"]["top1_mean"] is not None
    assert len(list((tmp_path / "rec" / "runs").iterdir())) == 3  # original, pre-train, retrain
