"""bnnlib.train_config: validation of every field, dict/YAML coercion, CLI flags."""
import dataclasses

import pytest

from bnnlib.train_config import PRESETS, TrainConfig, parse_args, resolved_hparams

TINY = dict(model="resnet20", width_mult=0.25, depth_div=3, dataset="synthetic")


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


BAD = [
    ({"model": "resnet99"}, "model"),
    ({"dataset": "mnist"}, "dataset"),
    ({"optimizer": "lamb"}, "optimizer"),
    ({"width_mult": -0.5}, "width_mult"),
    ({"depth_div": 0}, "depth_div"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 2.0}, "epochs"),
    ({"batch_size": -1}, "batch_size"),
    ({"lr": -0.1}, "lr"),
    ({"lr": "fast"}, "lr"),
    ({"seed": -1}, "seed"),
    ({"binary": "yes"}, "binary"),
    ({"model_kwargs": {"input_binarizer": "magic"}}, "input_binarizer"),
    ({"model_kwargs": {"weight_binarizer": "nope"}}, "weight_binarizer"),
    ({"amp": "fp8"}, "amp"),
    ({"compile_mode": "fast"}, "compile_mode"),
    ({"device": "tpu"}, "device"),
    ({"val_size": -5}, "val_size"),
    ({"teacher_model": "resnet20"}, "teacher_weights"),
    ({"binary": False, "two_step": True}, "two_step"),
    ({"distill_weight": 1.5}, "distill_weight"),
    ({"stop_after_epoch": 2}, "stop_after_epoch"),
    ({"spec": {"stages": []}}, "spec"),
]


@pytest.mark.parametrize("kw,field", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_config_raises_naming_field_value_allowed(kw, field):
    with pytest.raises(ValueError) as e:
        tiny(**kw)
    msg = str(e.value)
    assert msg.startswith(field) or f"{field}:" in msg
    assert "allowed" in msg and "got" in msg


def test_from_dict_unknown_key_and_yaml_strings():
    with pytest.raises(ValueError, match="config field"):
        TrainConfig.from_dict({"lrr": 0.1})
    c = TrainConfig.from_dict({"lr": "1e-3", "width_mult": 2})
    assert c.lr == 1e-3 and isinstance(c.width_mult, float)
    assert c.replace(seed=3).seed == 3 and dataclasses.asdict(c.replace(seed=3))["lr"] == 1e-3


def test_presets_and_overrides():
    h = resolved_hparams(tiny())
    assert (h["optimizer"], h["lr"], h["momentum"], h["weight_decay"], h["batch_size"]) == \
        ("sgd", 0.1, 0.9, 1e-4, 128)
    a = resolved_hparams(tiny(optimizer="imagenet_adam", lr=2e-3))
    assert (a["optimizer"], a["lr"], a["weight_decay"], a["batch_size"]) == ("adam", 2e-3, 1e-5, 512)
    assert set(PRESETS) == {"cifar_sgd", "imagenet_adam", "cifar_adam"}


def test_cli_flags_map_to_fields():
    cfg, out, resume = parse_args(["--out", "x", "--no-binary", "--lr", "none", "--epochs", "3",
                                   "--model-kwargs", '{"act": "relu"}', "--resume"])
    assert (cfg.binary, cfg.lr, cfg.epochs, cfg.model_kwargs, out, resume) == \
        (False, None, 3, {"act": "relu"}, "x", True)
    with pytest.raises(ValueError, match="width_mult"):
        parse_args(["--out", "x", "--width-mult", "-1"])


def test_int_and_float_spellings_hash_alike():
    from bnnlib.records import config_hash
    a, b = tiny(depth_div=3, lr=1), tiny(depth_div=3.0, lr=1.0)
    assert a == b and config_hash(a) == config_hash(b) and isinstance(a.depth_div, float)
    assert config_hash(a.replace(seed=0)) == config_hash(a)
