"""``TrainConfig``: the frozen, validated description of one training run.

Everything that changes the numbers a run produces is a field here, so the config hash
(``bnnlib.records.config_hash``) identifies a run. Bad values fail at construction with a
``ValueError`` naming the field, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any

import torch

from .data import DATASETS

__all__ = ["TrainConfig", "PRESETS", "AMP_MODES", "EVAL_TEST_MODES", "LR_SCHEDULES",
           "RESOLUTIONS", "resolved_hparams",
           "make_optimizer", "parse_args"]

# The paper's recipes. lr/batch/wd of a config override these when not None.
PRESETS = {
    # CIFAR (paper and authors' code): SGD momentum 0.9, wd 1e-4 on all params, batch 128,
    # lr 0.1, cosine to zero (we anneal per step, not per epoch: smoother for short runs).
    "cifar_sgd": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
                  "batch_size": 128, "wd_on": "all"},
    # ImageNet (authors' Bi-Real-18 code): Adam, batch 512, lr 1e-3, cosine, wd 1e-5 on conv and
    # linear weights only (BN and biases are not decayed).
    "imagenet_adam": {"optimizer": "adam", "lr": 1e-3, "momentum": None, "weight_decay": 1e-5,
                      "batch_size": 512, "wd_on": "weights"},
    # CIFAR with Adam (ReActNet/Bi-Real-style BNN recipe at CIFAR batch size): lr 1e-3,
    # wd 5e-6 on conv/linear weights only (ReActNet step 1 uses 5e-6; BN and biases undecayed).
    "cifar_adam": {"optimizer": "adam", "lr": 1e-3, "momentum": None, "weight_decay": 5e-6,
                   "batch_size": 128, "wd_on": "weights"},
}
LR_SCHEDULES = ("cosine", "linear")
RESOLUTIONS = (32, 16, 8)  # divisors of CIFAR's 32 px: average-pooled once on load
AMP_MODES = ("none", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
EVAL_TEST_MODES = ("every_epoch", "end")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Accuracies in records are percentages of the scored images."""

    model: str = "resnet20"            # registered name (ignored when ``spec`` is given)
    spec: dict | None = None           # spec_to_dict() of an explicit architecture
    binary: bool | None = None         # None: the spec's own setting (registered nets are BNNs)
    width_mult: float = 1.0
    depth_div: float = 1.0
    model_kwargs: dict | None = None   # spec field overrides, e.g. {"input_binarizer": "sign"}
    dataset: str = "cifar10"
    data_root: str | None = None       # None: $BNNLIB_DATA, then the user cache dir
    train_subset: int | None = None    # stratified, drawn after the validation split
    val_size: int = 5000               # carved from train (stratified); 0: no validation
    split_seed: int = 0                # val split / subset / synthetic data; shared across seeds
    synthetic_train: int = 10000
    synthetic_test: int = 2000
    epochs: int = 2
    batch_size: int | None = None      # None: preset
    lr: float | None = None            # None: preset (peak lr of the cosine schedule)
    optimizer: str = "cifar_sgd"       # preset name, see PRESETS
    weight_decay: float | None = None  # None: preset
    augment: bool = True               # random crop (pad 4 at 32 px, scaled with resolution) + flip
    resolution: int = 32               # input side in px: 32, or 16/8 (2x2/4x4 average pool on load)
    label_smoothing: float = 0.0       # cross-entropy label smoothing in [0, 1)
    lr_schedule: str = "cosine"        # per-step decay to zero: "cosine" | "linear" (ReActNet)
    warmup_epochs: float = 0.0         # linear warm-up from 0 to the peak lr (epochs, may be fractional)
    seed: int = 0                      # init, data order, augmentation
    device: str = "auto"               # "auto" | "cpu" | "cuda" | "cuda:N"
    threads: int | None = None         # torch CPU threads; None: leave torch's default
    amp: str = "none"                  # "bf16": autocast on CUDA/CPU
    channels_last: bool = False
    compile: bool = False              # torch.compile the model
    compile_mode: str = "default"      # "reduce-overhead": CUDA graphs on a GPU
    deterministic: bool = False        # cuDNN deterministic, no TF32, deterministic algorithms
    eval_batch_size: int | None = None  # None: 100 on CPU (cache-friendly), 1000 on CUDA
    eval_test: str = "every_epoch"     # "end": test only at the last and the best-val epoch
    two_step: bool = False             # step 1 real weights + binary acts, step 2 all binary
    teacher_model: str | None = None   # registered name of a real-valued teacher (distillation)
    teacher_weights: str | None = None  # its state_dict
    distill_weight: float = 1.0        # loss = (1-w) CE + w T^2 KL(teacher || student)
    distill_temperature: float = 1.0
    init_weights: str | None = None    # state_dict to start from
    save_weights: bool = False
    tag: str = ""                      # free text, part of the hash (grouping)
    progress: bool | None = None       # tqdm bars; None: only on a TTY outside CI
    stop_after_epoch: int | None = None  # testing aid: checkpoint, then raise StopTraining
    image_size: int = 224              # ImageNet crop side (eval: short side to size*256/224, centre crop)
    lighting: float = 0.0              # ImageNet PCA lighting noise std (ReActNet: 0.1)
    workers: int = 8                   # ImageNet DataLoader worker processes per rank
    sync_bn: bool = False              # data-parallel: SyncBatchNorm over ranks (CUDA only)
    ddp_check_every: int = 0           # data-parallel: compare weights across ranks every N steps (0: each epoch)

    # Fields added after records were committed: left out of the config hash while they hold
    # these defaults, so every earlier record keeps its hash (bnnlib.records.config_hash).
    HASH_NEUTRAL_DEFAULTS: typing.ClassVar[dict] = {
        "image_size": 224, "lighting": 0.0, "workers": 8, "sync_bn": False, "ddp_check_every": 0,
        "resolution": 32, "label_smoothing": 0.0, "lr_schedule": "cosine", "warmup_epochs": 0.0,
        "deterministic": False}

    def __post_init__(self):
        """Validate types, normalise float fields, validate values."""
        _check_types(self)
        for name, hint in typing.get_type_hints(TrainConfig).items():
            v = getattr(self, name)  # 3 and 3.0 must hash alike: float fields hold floats
            if float in (typing.get_args(hint) or (hint,)) and isinstance(v, int) and not isinstance(v, bool):
                object.__setattr__(self, name, float(v))
        _check_values(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict (JSON/YAML); unknown keys fail; numeric strings become floats."""
        if not isinstance(d, dict):
            raise ValueError(f"config: got {type(d).__name__}; allowed: a dict of TrainConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"config field: got {bad}; allowed: {sorted(known)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(hints[k], v) for k, v in d.items()})

    def replace(self, **changes) -> "TrainConfig":
        """A validated copy with ``changes``."""
        return TrainConfig.from_dict({**dataclasses.asdict(self), **changes})

    def build_spec(self):
        """The architecture this config trains (validated)."""
        from .models import get_spec
        from .models import _apply  # same override path as create_model
        from .spec import spec_from_dict
        kw = dict(self.model_kwargs or {})
        if self.resolution != 32 and "input_size" not in kw:
            kw["input_size"] = self.resolution  # so complexity and VGG heads see the real input
        if self.dataset == "imagenet" and "input_size" not in kw:
            kw["input_size"] = self.image_size
        if self.spec is not None:
            return _apply(spec_from_dict(self.spec), self.binary, self.width_mult, self.depth_div, kw)
        return get_spec(self.model, self.binary, self.width_mult, self.depth_div, **kw)


def _coerce(hint, v):
    """YAML 1.1 reads '1e-3' as a string and '2' as int: accept those for float fields."""
    args = typing.get_args(hint) or (hint,)
    if float in args and not isinstance(v, bool):
        if isinstance(v, int):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return v  # let validation report it
    return v


def _type_ok(v: Any, hint) -> bool:
    """Whether ``v`` matches the annotation ``hint`` (int is no float's bool)."""
    args = typing.get_args(hint) or (hint,)
    for t in args:
        if t is type(None) and v is None:
            return True
        if t is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            return True
        if t is int and isinstance(v, int) and not isinstance(v, bool):
            return True
        if t in (str, bool, dict) and isinstance(v, t):
            return True
    return False


def _check_types(cfg: TrainConfig) -> None:
    """Raise ValueError for the first field whose value has the wrong type."""
    for name, hint in typing.get_type_hints(TrainConfig).items():
        v = getattr(cfg, name)
        if not _type_ok(v, hint):
            raise ValueError(f"{name}: got {v!r} ({type(v).__name__}); allowed: {_fmt_hint(hint)}")


def _fmt_hint(hint) -> str:
    """An annotation as 'int or None' for error messages."""
    args = typing.get_args(hint) or (hint,)
    return " or ".join("None" if a is type(None) else a.__name__ for a in args)


def _need(cond: bool, name: str, v: Any, allowed: str) -> None:
    """Raise ValueError(name: got value; allowed: ...) unless ``cond``."""
    if not cond:
        raise ValueError(f"{name}: got {v!r}; allowed: {allowed}")


def _check_values(c: TrainConfig) -> None:
    """Ranges, choices and cross-field rules; builds the spec to validate it."""
    from .models import list_models
    _need(c.model in list_models(), "model", c.model, str(list_models()))
    _need(c.dataset in DATASETS + ("imagenet",), "dataset", c.dataset, str(DATASETS + ("imagenet",)))
    if c.dataset == "imagenet":
        _need(c.resolution == 32, "resolution", c.resolution, "32 (CIFAR only; ImageNet uses image_size)")
    for f in ("workers", "ddp_check_every"):
        _need(getattr(c, f) >= 0, f, getattr(c, f), "an int >= 0")
    _need(c.image_size >= 8, "image_size", c.image_size, "an int >= 8")
    _need(c.lighting >= 0, "lighting", c.lighting, "a number >= 0")
    _need(c.optimizer in PRESETS, "optimizer", c.optimizer, str(tuple(PRESETS)))
    _need(c.amp in AMP_MODES, "amp", c.amp, str(AMP_MODES))
    _need(c.compile_mode in COMPILE_MODES, "compile_mode", c.compile_mode, str(COMPILE_MODES))
    _need(c.eval_test in EVAL_TEST_MODES, "eval_test", c.eval_test, str(EVAL_TEST_MODES))
    _need(c.lr_schedule in LR_SCHEDULES, "lr_schedule", c.lr_schedule, str(LR_SCHEDULES))
    _need(c.resolution in RESOLUTIONS, "resolution", c.resolution,
          f"{RESOLUTIONS} (a divisor of CIFAR's 32 px)")
    _need(0.0 <= c.label_smoothing < 1.0, "label_smoothing", c.label_smoothing, "a number in [0, 1)")
    _need(0.0 <= c.warmup_epochs < c.epochs, "warmup_epochs", c.warmup_epochs,
          f"a number in [0, epochs={c.epochs})")
    for f in ("width_mult", "depth_div", "distill_temperature"):
        _need(getattr(c, f) > 0, f, getattr(c, f), "a number > 0")
    for f in ("epochs", "synthetic_train", "synthetic_test"):
        _need(getattr(c, f) > 0, f, getattr(c, f), "an int > 0")
    for f in ("batch_size", "threads", "train_subset", "stop_after_epoch", "eval_batch_size"):
        v = getattr(c, f)
        _need(v is None or v > 0, f, v, "None or an int > 0")
    _need(c.val_size >= 0, "val_size", c.val_size, "an int >= 0")
    _need(c.lr is None or c.lr > 0, "lr", c.lr, "None or a number > 0")
    _need(c.weight_decay is None or c.weight_decay >= 0, "weight_decay", c.weight_decay,
          "None or a number >= 0")
    _need(0.0 <= c.distill_weight <= 1.0, "distill_weight", c.distill_weight, "a number in [0, 1]")
    _need(c.seed >= 0, "seed", c.seed, "an int >= 0")
    _need(c.device == "auto" or c.device == "cpu" or c.device.startswith("cuda"), "device",
          c.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
    _need((c.teacher_model is None) == (c.teacher_weights is None), "teacher_weights",
          c.teacher_weights, "set together with teacher_model (both or neither)")
    if c.teacher_model is not None:
        _need(c.teacher_model in list_models(), "teacher_model", c.teacher_model, str(list_models()))
    if c.spec is not None:
        _need("family" in c.spec, "spec", c.spec, "a dict made by bnnlib.spec.spec_to_dict")
    spec = c.build_spec()  # raises ValueError for unknown binarizers, bad widths, ...
    _need(spec.binary or not c.two_step, "two_step", c.two_step, "False for a real-valued model")
    _need(c.stop_after_epoch is None or c.stop_after_epoch < c.epochs, "stop_after_epoch",
          c.stop_after_epoch, f"None or an int in [1, epochs-1={c.epochs - 1}]")


def make_optimizer(model, h: dict, weight_decay: float):
    """SGD or Adam per preset; 'weights' wd_on decays only conv/linear weights."""
    if h["wd_on"] == "weights":
        decay = [p for p in model.parameters() if p.ndim > 1]
        rest = [p for p in model.parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": rest, "weight_decay": 0.0}]
    else:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    if h["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=h["lr"], momentum=h["momentum"])
    return torch.optim.Adam(groups, lr=h["lr"])


def resolved_hparams(c: TrainConfig) -> dict:
    """The preset with the config's explicit overrides applied."""
    h = dict(PRESETS[c.optimizer])
    for f in ("lr", "batch_size", "weight_decay"):
        if getattr(c, f) is not None:
            h[f] = getattr(c, f)
    return h


def config_json(c: TrainConfig) -> str:
    """Sorted-key JSON of the config."""
    return json.dumps(dataclasses.asdict(c), sort_keys=True)


def _cli_type(hint):
    """argparse converter for a field type: 'none' -> None, dict fields parse JSON."""
    args = [a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)]
    base = args[0]

    def conv(s: str):
        """Parse one flag value."""
        if s.lower() == "none" and len(args) < len(typing.get_args(hint) or (hint,)):
            return None
        return json.loads(s) if base is dict else base(s)
    conv.__name__ = base.__name__
    return conv


# One help line per field for ``python -m bnnlib.train --help``: unit and allowed values (the
# default is appended by the parser). Every field must have one (tests/test_cli.py).
FIELD_HELP = {
    "model": "registered backbone name (python -m bnnlib.complexity --help lists them); ignored with --spec",
    "spec": "JSON of bnnlib.spec.spec_to_dict(): an explicit architecture; none: use --model",
    "binary": "BNN (--binary) or full precision (--no-binary); unset: the spec's own (registered nets are BNNs)",
    "width_mult": "width multiplier of every stage, a number > 0",
    "depth_div": "divide blocks per stage by this, a number > 0 (must divide the depths)",
    "model_kwargs": "JSON of spec field overrides, e.g. '{\"input_binarizer\": \"sign\"}'",
    "dataset": f"one of {DATASETS + ('imagenet',)}",
    "data_root": "data folder; none: $BNNLIB_DATA, then the user cache",
    "train_subset": "training images used (stratified, seeded), an int > 0; none: all",
    "val_size": "validation images carved from train (stratified), an int >= 0; 0: no validation",
    "split_seed": "seed of the validation split, subset and synthetic data, an int >= 0",
    "synthetic_train": "images in the synthetic training set, an int > 0 (dataset synthetic)",
    "synthetic_test": "images in the synthetic test set, an int > 0 (dataset synthetic)",
    "epochs": "training epochs, an int > 0",
    "batch_size": "images per step, an int > 0; none: the optimizer preset's",
    "lr": "peak learning rate of the schedule, a number > 0; none: the optimizer preset's",
    "optimizer": f"recipe preset, one of {tuple(PRESETS)}",
    "weight_decay": "weight decay, a number >= 0; none: the optimizer preset's",
    "augment": "random crop (pad 4 px at 32 px) and horizontal flip",
    "resolution": f"input side in px, one of {RESOLUTIONS} (16/8: average-pooled once on load)",
    "label_smoothing": "cross-entropy label smoothing, a number in [0, 1)",
    "lr_schedule": f"per-step decay of the lr to zero, one of {LR_SCHEDULES}",
    "warmup_epochs": "linear lr warm-up from 0, in epochs (may be fractional), in [0, epochs)",
    "seed": "seed of initialisation, data order and augmentation, an int >= 0",
    "device": "'auto', 'cpu', 'cuda' or 'cuda:N'",
    "threads": "torch CPU threads, an int > 0; none: torch's default",
    "amp": f"mixed precision, one of {AMP_MODES}",
    "channels_last": "channels-last memory format",
    "compile": "torch.compile the model",
    "compile_mode": f"torch.compile mode, one of {COMPILE_MODES}",
    "deterministic": "cuDNN deterministic, no TF32, deterministic algorithms",
    "eval_batch_size": "images per evaluation batch, an int > 0; none: 100 on CPU, 1000 on CUDA",
    "eval_test": f"when to score the test set, one of {EVAL_TEST_MODES}",
    "two_step": "step 1 real weights and binary activations, step 2 all binary (BNN only)",
    "teacher_model": "registered real-valued teacher for distillation; none: no distillation",
    "teacher_weights": "path of the teacher's state_dict (with --teacher-model)",
    "distill_weight": "w in loss = (1-w) CE + w T^2 KL(teacher || student), a number in [0, 1]",
    "distill_temperature": "distillation temperature T, a number > 0",
    "init_weights": "path of a state_dict to start from; none: random initialisation",
    "save_weights": "write --out/weights.pt at the end",
    "tag": "free text, part of the config hash (groups runs)",
    "progress": "progress bars; unset: only on a terminal outside CI",
    "stop_after_epoch": "testing aid: checkpoint after this epoch, then stop, an int in [1, epochs-1]",
    "image_size": "ImageNet crop side in px, an int >= 8",
    "lighting": "ImageNet PCA lighting noise std, a number >= 0",
    "workers": "ImageNet DataLoader worker processes per rank, an int >= 0",
    "sync_bn": "data-parallel: SyncBatchNorm across ranks (CUDA only)",
    "ddp_check_every": "data-parallel: compare weights across ranks every N steps, an int >= 0; 0: each epoch",
}
TRAIN_EXAMPLE = ("python -m bnnlib.train --model resnet20 --dataset synthetic --epochs 2 "
                 "--train-subset 2000 --out runs/demo")


def parse_args(argv=None) -> tuple[TrainConfig, str, bool]:
    """(config, out_dir, resume) from command-line flags: one ``--field-name`` per field."""
    import argparse

    from .cli import Parser
    p = Parser(prog="python -m bnnlib.train", example=TRAIN_EXAMPLE,
               description="Train one run and write its JSON record into --out. "
                           "Flags taking none accept the word 'none'.")
    p.add_argument("--out", required=True, help="run folder (record.json, checkpoint.pt, weights.pt)")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag, help_ = "--" + f.name.replace("_", "-"), FIELD_HELP.get(f.name, "(no help yet)")
        if bool in (typing.get_args(hints[f.name]) or (hints[f.name],)):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                           help=help_)
        else:
            p.add_argument(flag, dest=f.name, type=_cli_type(hints[f.name]), default=f.default,
                           help=help_, metavar=f.name.upper())
    ns = vars(p.parse_args(argv))
    out, resume = ns.pop("out"), ns.pop("resume")
    return TrainConfig(**ns), out, resume
