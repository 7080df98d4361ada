"""bnnlib.data: loader on fake archives (good, corrupt, missing), splits, synthetic data, augmentation."""
import hashlib
import json
import pickle
import tarfile

import numpy as np
import pytest
import torch

from bnnlib import data

N_PER_BATCH = 30


def _batch(rng, n, label_offset):
    labels = [(i + label_offset) % 10 for i in range(n)]
    return {b"batch_label": b"fake", b"labels": labels, b"filenames": [b"x"] * n,
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}


def _write_batches(folder, rng):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(data.TRAIN_FILES + (data.TEST_FILE,)):
        (folder / name).write_bytes(pickle.dumps(_batch(rng, N_PER_BATCH, i), protocol=4))


@pytest.fixture
def fake_archive(tmp_path):
    """A tiny cifar-10-python.tar.gz in the official layout, and its md5."""
    src = tmp_path / "src"
    _write_batches(src / data.DIRNAME, np.random.default_rng(0))
    arc = tmp_path / "fake-cifar.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        tar.add(src / data.DIRNAME, arcname=data.DIRNAME)
    return arc, hashlib.md5(arc.read_bytes()).hexdigest()


def test_download_extract_and_load(fake_archive, tmp_path):
    arc, md5 = fake_archive
    root = tmp_path / "root"
    ds = data.load_cifar10(root, url=arc.as_uri(), md5=md5)
    assert ds.x_train.shape == (5 * N_PER_BATCH, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (N_PER_BATCH, 3, 32, 32)
    assert ds.y_train[:3].tolist() == [0, 1, 2] and ds.note == data.OFFICIAL_NOTE
    arc.unlink()  # second load must not need the network / archive
    again = data.load_cifar10(root, url=arc.as_uri(), md5=md5)
    assert torch.equal(again.x_train, ds.x_train)
    assert not list(root.glob("*.tar.gz"))  # temp archive removed


def test_layout_pixels_follow_official_plane_order(tmp_path):
    rng = np.random.default_rng(1)
    _write_batches(tmp_path / data.DIRNAME, rng)
    raw = pickle.loads((tmp_path / data.DIRNAME / "data_batch_1").read_bytes())[b"data"]
    ds = data.load_cifar10(tmp_path, download=False)
    assert ds.x_train[0, 1, 0, 0] == raw[0, 1024] and ds.x_train[0, 0, 1, 0] == raw[0, 32]
    assert data.load_cifar10(tmp_path, download=False) is ds  # parsed once per process


def test_corrupt_md5_raises_and_extracts_nothing(fake_archive, tmp_path):
    arc, _ = fake_archive
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="md5"):
        data.load_cifar10(root, url=arc.as_uri(), md5="0" * 32)
    assert not (root / data.DIRNAME).exists()


def test_offline_message_says_where_to_put_files(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="BNNLIB_DATA") as e:
        data.load_cifar10(root, url=(tmp_path / "missing.tar.gz").as_uri())
    assert str(root / data.DIRNAME) in str(e.value)
    with pytest.raises(FileNotFoundError, match="download disabled"):
        data.load_cifar10(root, download=False)


def test_root_from_env_and_cache(tmp_path, monkeypatch):
    _write_batches(tmp_path / "env" / data.DIRNAME, np.random.default_rng(2))
    monkeypatch.setenv("BNNLIB_DATA", str(tmp_path / "env"))
    assert data.default_root() == tmp_path / "env"
    assert len(data.load_cifar10(download=False).y_test) == N_PER_BATCH
    monkeypatch.delenv("BNNLIB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.default_root() == tmp_path / "cache" / "bnnlib"
    assert data.default_root("/x/y") == data.Path("/x/y")


@pytest.mark.parametrize("text,jpeg", [("# WARNING: LOSSY COPY rebuilt from JPEG files", True),
                                       ("# a lossless copy", False)])
def test_source_md_sets_dataset_note(tmp_path, text, jpeg):
    _write_batches(tmp_path / data.DIRNAME, np.random.default_rng(3))
    (tmp_path / data.DIRNAME / "SOURCE.md").write_text(text)
    ds = data.load_cifar10(tmp_path, download=False)
    assert ("JPEG-rebuilt" in ds.note) == jpeg
    assert ds.info.get("jpeg_rebuilt", False) == jpeg and "source_md_sha256" in ds.info


def test_val_split_disjoint_stratified_seeded():
    labels = torch.arange(1000) % 10
    tr, va = data.split_train_val(labels, 200, seed=5)
    assert len(set(tr.tolist()) & set(va.tolist())) == 0
    assert sorted(tr.tolist() + va.tolist()) == list(range(1000))
    assert torch.bincount(labels[va]).tolist() == [20] * 10
    tr2, va2 = data.split_train_val(labels, 200, seed=5)
    assert torch.equal(va, va2)
    assert not torch.equal(va, data.split_train_val(labels, 200, seed=6)[1])
    assert len(data.split_train_val(labels, 0)[1]) == 0


def test_stratified_counts_with_unbalanced_classes():
    labels = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    idx = data.stratified_subset(labels, 10, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [7, 2, 1]
    assert len(set(idx.tolist())) == 10


@pytest.mark.parametrize("fn,args,field", [
    (data.split_train_val, (torch.arange(10), 10), "val_size"),
    (data.split_train_val, (torch.arange(10), -1), "val_size"),
    (data.stratified_subset, (torch.arange(10), 0), "train_subset"),
    (data.stratified_subset, (torch.arange(10), 11), "train_subset"),
    (data.resolve_dataset, ("imagenet",), "dataset"),
    (data.synthetic, (0,), "n_train"),
])
def test_bad_values_name_the_field(fn, args, field):
    with pytest.raises(ValueError, match=field):
        fn(*args)


def test_resolve_dataset_val_from_train_subset_from_rest_full_test():
    s = data.resolve_dataset("synthetic", val_size=100, train_subset=300, split_seed=0,
                             synthetic_train=1000, synthetic_test=150)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (300, 100, 150)
    tr = {bytes(x.numpy()) for x in s.x_train}
    assert not tr & {bytes(x.numpy()) for x in s.x_val}
    assert s.info["name"] == "synthetic" and "synthetic" in s.info["note"]
    assert s.info["n_train"] == 300 and s.info["n_test"] == 150


def test_synthetic_seeded_and_learnable():
    a, b = data.synthetic(400, 200, seed=0), data.synthetic(400, 200, seed=0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, data.synthetic(400, 200, seed=1).x_train)
    # a nearest-class-mean classifier beats chance (10 %) by far: there is signal to learn
    x = a.x_train.float().flatten(1)
    means = torch.stack([x[a.y_train == c].mean(0) for c in range(10)])
    pred = torch.cdist(a.x_test.float().flatten(1), means).argmin(1)
    assert (pred == a.y_test).float().mean() > 0.5


def test_augment_identity_flip_and_crop_windows():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=g)
    assert torch.equal(data.augment(x, g, pad=0, flip=False), x)
    out = data.augment(x, torch.Generator().manual_seed(1), pad=2, flip=True)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        windows += [w.flip(-1) for w in windows]
        assert any(torch.equal(out[i], w) for w in windows)
    again = data.augment(x, torch.Generator().manual_seed(1), pad=2, flip=True)
    assert torch.equal(out, again)


def test_normalize_matches_formula_and_layout():
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    y = data.normalize(x, channels_last=True)
    want = (1.0 - torch.tensor(data.CIFAR_MEAN)) / torch.tensor(data.CIFAR_STD)
    assert torch.allclose(y[0, :, 0, 0], want, atol=1e-5)
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_choose_dataset_auto_prefers_data_then_cifar_records(tmp_path, monkeypatch):
    from bnnlib.data import choose_dataset
    monkeypatch.setenv("BNNLIB_DATA", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    recs = tmp_path / "records"
    assert choose_dataset("auto", records_dir=recs) == "synthetic"
    (recs / "a").mkdir(parents=True)
    (recs / "a" / "record.json").write_text(json.dumps({"dataset": {"name": "synthetic"}}))
    assert choose_dataset("auto", records_dir=recs) == "synthetic"
    (recs / "b.json").write_text(json.dumps({"dataset": {"name": "cifar10", "note": "x"}}))
    assert choose_dataset("auto", records_dir=recs) == "cifar10"
    assert choose_dataset("synthetic", records_dir=recs) == "synthetic"
    with pytest.raises(ValueError, match="dataset: got 'imagenet'"):
        choose_dataset("imagenet")


@pytest.mark.parametrize("info, want", [
    ({"name": "cifar10", "note": "JPEG copy"}, "CIFAR-10 (JPEG copy)"),
    ({"name": "cifar10", "note": "JPEG copy", "resolution": 32}, "CIFAR-10 (JPEG copy)"),
    ({"name": "cifar10", "note": "JPEG copy", "resolution": 16}, "CIFAR-10 at 16x16 (JPEG copy)"),
    ({"name": "cifar10", "note": "n", "resolution": 16, "label": "CIFAR-10 at 16x16"}, "CIFAR-10 at 16x16 (n)"),
    ({"name": "synthetic"}, "synthetic"),
    ({"note": "only a note"}, "only a note"),
    ({}, None),
])
def test_describe_is_the_one_dataset_line(info, want):
    """Figures, tables and manifests label their data with this one line: the input size is
    named whenever it is not 32x32, so no cpu-regime accuracy is read as a 32x32 number."""
    assert data.describe(info) == want
