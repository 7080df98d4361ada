"""Tests for analysis.dwr.speed: one interleaved timing run of original vs DWR backbones."""
import math

import pytest

from analysis.dwr.speed import measure_speed, speed_markdown, speed_rows


def test_measure_speed_resnet20_pair():
    rec = measure_speed(("resnet20",), batch_size=4, infer_batch=4, steps=1, warmup=1)
    assert set(rec["models"]) == {"resnet20", "resnet20_dwr"}
    for m in rec["models"].values():
        assert m["train_step_s"] > 0 and m["latency_b1_s"] > 0 and len(m["raw"]["train_step_s"]) == 1
    (row,) = speed_rows(rec)
    assert row["s"] == 3.0 and math.isclose(row["paper_acts_ratio"], 3 ** -0.5)
    assert 0.5 < row["acts_ratio"] < 0.65  # activations ~ 1/sqrt(3) = 0.577
    assert "resnet20_dwr" in speed_markdown(rec)


@pytest.mark.parametrize("kw, match", [(dict(pairs=("vgg16",)), "pairs"), (dict(steps=0), "steps")])
def test_bad_inputs_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        measure_speed(**kw)
