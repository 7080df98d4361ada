"""The CPU proxy regime's training options: resolution, label smoothing, lr schedules, and
hash neutrality of the fields added after records were committed."""
import json
from pathlib import Path

import pytest
import torch

from bnnlib import records
from bnnlib.data import augment_pad, downsample, resolve_dataset
from bnnlib.train import schedule_lr, train
from bnnlib.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic",
            synthetic_train=256, synthetic_test=64, val_size=64, batch_size=64, epochs=2,
            threads=1, seed=0)


def test_downsample_is_2x2_mean_rounded():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).view(2, 3, 32, 32)
    y = downsample(x, 16)
    assert y.shape == (2, 3, 16, 16) and y.dtype == torch.uint8
    ref = x[:, :, :2, :2].double().mean((2, 3)).round()
    assert torch.equal(y[:, :, 0, 0].double(), ref)
    assert downsample(x, 32) is x


@pytest.mark.parametrize("bad", [12, 0, 64, 3.0, True])
def test_downsample_refuses_non_divisors(bad):
    with pytest.raises(ValueError, match="resolution"):
        downsample(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), bad)


@pytest.mark.parametrize("bad", [12, 24, 64])
def test_config_refuses_resolution_not_dividing_32(bad):
    with pytest.raises(ValueError, match="resolution: got"):
        TrainConfig(**TINY, resolution=bad)


def test_resolution_reaches_data_and_record(tmp_path):
    s = resolve_dataset("synthetic", val_size=64, synthetic_train=256, synthetic_test=64, resolution=16)
    assert s.x_train.shape[-2:] == (16, 16) and s.x_test.shape[-2:] == (16, 16)
    assert s.info["resolution"] == 16 and s.info["augment_pad"] == 2 == augment_pad(16)
    rec = train(TrainConfig(**TINY, resolution=16), tmp_path)
    assert rec["status"] == "finished"
    assert rec["config"]["resolution"] == 16 and rec["dataset"]["resolution"] == 16
    assert "16x16" in rec["dataset"]["label"] and rec["model_spec"]["input_size"] == 16
    full = TrainConfig(**TINY).build_spec()
    from bnnlib.complexity import count
    assert count(TrainConfig(**TINY, resolution=16).build_spec()).totals["flops"] < \
        0.3 * count(full).totals["flops"]  # 4x fewer pixels: complexity counted at 16 px


def test_new_fields_are_hash_neutral_at_defaults():
    base = TrainConfig(**TINY)
    assert records.config_hash(base) == records.config_hash(base.replace(resolution=32, lr_schedule="cosine"))
    for change in ({"resolution": 16}, {"label_smoothing": 0.1}, {"lr_schedule": "linear"},
                   {"warmup_epochs": 1.0}):
        assert records.config_hash(base.replace(**change)) != records.config_hash(base), change


def test_committed_record_hashes_unchanged():
    """A sample of committed records: their stored config hashes to the stored hash."""
    found = sorted((ROOT / "results").rglob("record.json"))[:12]
    checked = 0
    for p in found:
        rec = json.loads(p.read_text())
        if "config" not in rec or "model" not in rec["config"]:
            continue
        cfg = TrainConfig.from_dict(rec["config"])
        assert records.config_hash(cfg) == rec["config_hash"], p
        checked += 1
    assert checked >= 5, "too few committed training records to check"


def test_schedules():
    assert schedule_lr(1.0, 0, 100) == 1.0 and abs(schedule_lr(1.0, 50, 100) - 0.5) < 1e-12
    assert schedule_lr(1.0, 50, 100, "linear") == 0.5 and schedule_lr(1.0, 100, 100, "linear") == 0.0
    assert schedule_lr(1.0, 0, 100, warmup=10) == 0.1 and schedule_lr(1.0, 9, 100, warmup=10) == 1.0
    assert schedule_lr(1.0, 10, 100, "linear", warmup=10) == 1.0
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(**TINY, lr_schedule="step")
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(**TINY, warmup_epochs=2.0)


def test_label_smoothing_changes_the_loss_only_when_set(tmp_path):
    a = train(TrainConfig(**{**TINY, "epochs": 1}), tmp_path / "a")
    b = train(TrainConfig(**{**TINY, "epochs": 1}, label_smoothing=0.2), tmp_path / "b")
    assert a["metrics"]["epochs"][0]["train_loss"] != b["metrics"]["epochs"][0]["train_loss"]
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(**TINY, label_smoothing=1.0)
