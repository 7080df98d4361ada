"""bnnlib.imagenet: ImageFolder index, errors naming the layout, transforms, determinism, and a
single-process training run through the loader source."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bnnlib import records
from bnnlib.distributed import DistEnv
from bnnlib.imagenet import (LoaderSource, eval_transform, fake_folder, random_resized_crop_box,
                             scan, train_transform)
from bnnlib.train import TrainConfig, main, train

CFG = dict(model="resnet18_imagenet", width_mult=0.125, model_kwargs={"num_classes": 4},
           dataset="imagenet", image_size=32, val_size=8, batch_size=8, optimizer="imagenet_adam",
           epochs=1, workers=0, threads=1, device="cpu", seed=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return fake_folder(tmp_path_factory.mktemp("inet"))


def cfg(folder, **kw) -> TrainConfig:
    return TrainConfig(**{**CFG, "data_root": str(folder), **kw})


def test_scan_labels_follow_sorted_train_folders(folder):
    idx = scan(folder)
    assert idx.classes == sorted(p.name for p in (folder / "train").iterdir())
    assert len(idx.train_paths) == 48 and len(idx.test_paths) == 12
    assert torch.bincount(idx.train_labels).tolist() == [12] * 4
    assert all(Path(p).parent.name == idx.classes[int(l)] for p, l in zip(idx.test_paths, idx.test_labels))


def test_root_from_environment(folder, monkeypatch):
    monkeypatch.setenv("BNNLIB_IMAGENET", str(folder))
    assert scan().root == folder


@pytest.mark.parametrize("damage, why", [
    ("nothing", "no such folder"), ("no_val", "no val/ folder"), ("flat", "images directly in train/"),
    ("empty_class", "class folders without images"), ("extra_val_class", "val/ classes missing from train/"),
    ("no_classes", "has no class folders")])
def test_malformed_folder_errors_name_the_layout(tmp_path, damage, why):
    root = tmp_path / "inet"
    if damage != "nothing":
        fake_folder(root, classes=2, train_per_class=2, val_per_class=2)
    if damage == "no_val":
        for p in sorted((root / "val").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (root / "val").rmdir()
    elif damage == "flat":
        next((root / "train").rglob("*.JPEG")).rename(root / "train" / "stray.JPEG")
    elif damage == "empty_class":
        (root / "train" / "n99999999").mkdir()
    elif damage == "extra_val_class":
        (root / "val" / "n99999999").mkdir()
        next((root / "val").rglob("*.JPEG")).rename(root / "val" / "n99999999" / "x.JPEG")
    elif damage == "no_classes":
        for p in sorted((root / "train").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    with pytest.raises(ValueError, match=r"data_root: got .*" + why + r".*train/<wnid>/\*\.JPEG and val/<wnid>/\*\.JPEG"):
        scan(root)


def test_unset_root_error(monkeypatch):
    monkeypatch.delenv("BNNLIB_IMAGENET", raising=False)
    with pytest.raises(ValueError, match="BNNLIB_IMAGENET is unset; allowed: a folder holding train/<wnid>"):
        scan()


def test_cli_missing_folder_is_one_line(tmp_path, capsys):
    code = main(["--model", "resnet18_imagenet", "--dataset", "imagenet", "--data-root",
                 str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: data_root: got") and err.count("\n") == 1


def test_class_count_mismatch_with_the_head(folder, tmp_path):
    with pytest.raises(ValueError, match="num_classes: got a model head of 1000 classes for an "
                                         "ImageFolder of 4 classes"):
        train(cfg(folder, model_kwargs=None), tmp_path)


def test_crop_box_inside_image_and_fallback():
    rng = np.random.default_rng(0)
    for w, h in ((50, 40), (500, 375), (40, 400), (33, 33)):
        for _ in range(50):
            x0, y0, cw, ch = random_resized_crop_box(w, h, rng)
            assert 0 <= x0 and 0 <= y0 and 0 < cw and 0 < ch and x0 + cw <= w and y0 + ch <= h
    # an impossible area range forces the centred fallback within the aspect-ratio range
    assert random_resized_crop_box(40, 400, rng, scale=(2.0, 2.0)) == (0, 173, 40, 53)


def test_transforms_shapes_determinism_and_lighting(folder):
    path = str(next((folder / "train").rglob("*.JPEG")))
    a = train_transform(path, 24, np.random.default_rng([0, 0, 5]))
    b = train_transform(path, 24, np.random.default_rng([0, 0, 5]))
    c = train_transform(path, 24, np.random.default_rng([0, 1, 5]))
    assert a.shape == (3, 24, 24) and a.dtype == torch.uint8 and torch.equal(a, b) and not torch.equal(a, c)
    lit = train_transform(path, 24, np.random.default_rng([0, 0, 5]), lighting=0.5)
    assert lit.shape == a.shape and not torch.equal(lit, a)
    e = eval_transform(path, 32)
    assert e.shape == (3, 32, 32) and torch.equal(e, eval_transform(path, 32))


def test_batches_do_not_depend_on_worker_count(folder):
    def first_epoch(workers):
        src = LoaderSource(cfg(folder, workers=workers), 8, torch.device("cpu"), DistEnv())
        return [(x.clone(), y.clone()) for x, y in src.train_batches(0)]
    zero, one = first_epoch(0), first_epoch(1)
    assert len(zero) == 5 and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(zero, one))


def test_validation_is_carved_from_train_and_test_is_official_val(folder):
    src = LoaderSource(cfg(folder), 8, torch.device("cpu"), DistEnv())
    val, test, train_set = src.eval_sets["val"], src.eval_sets["test"], src.train_loader.dataset
    assert len(val) == 8 and len(train_set) == 40 and len(test) == 12
    assert not set(val.paths) & set(train_set.paths)
    assert all("/train/" in p for p in val.paths) and all("/val/" in p for p in test.paths)
    assert torch.bincount(val.labels).tolist() == [2] * 4  # stratified


def test_single_process_run_record(folder, tmp_path):
    rec = train(cfg(folder, epochs=2, eval_test="end"), tmp_path)
    assert rec["status"] == "finished" and rec["dataset"]["name"] == "imagenet"
    assert rec["dataset"]["n_val"] == 8 and rec["dataset"]["n_test"] == 12
    assert rec["distributed"]["world_size"] == 1 and rec["distributed"]["ranks"][0]["images_per_s"] > 0
    assert rec["complexity"]["params"] > 0 and rec["model_spec"]["input_size"] == 32
    assert json.loads((tmp_path / "record.json").read_text()) == rec
    m = rec["metrics"]
    assert m["test_acc_at_best_val"] is not None and m["best_epoch"] in (1, 2)


def test_new_fields_are_hash_neutral_at_their_defaults():
    base = TrainConfig()
    for k, v in TrainConfig.HASH_NEUTRAL_DEFAULTS.items():
        assert getattr(base, k) == v, k
    committed = sorted(Path(__file__).resolve().parents[1].glob("results/quick/**/record.json"))[:20]
    for f in committed:
        rec = json.loads(f.read_text())
        if "config" in rec and "model" in rec["config"]:
            assert records.config_hash(TrainConfig.from_dict(rec["config"])) == rec["config_hash"], f
    assert records.config_hash(base.replace(workers=0, ddp_check_every=3)) == records.config_hash(base)
    assert records.config_hash(base.replace(lighting=0.1)) != records.config_hash(base)
