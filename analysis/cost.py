"""GPU cost of a study's runs, for ``plan``: runs, epochs and estimated GPU-hours.

Estimates, not measurements. Inputs, each printed with its source by ``describe()``:

- ``EPOCH_SECONDS``: seconds per 50,000-image CIFAR-10 training epoch of BNN ResNet-20 at
  batch 128 on one GPU, per speed mode. No GPU number was measured in this repository; the
  rows are the plain-PyTorch H100 figures quoted in issue 11, labelled "quoted, not measured
  here". ``benchmarks/gpu_check.py`` measures the same quantity (and per-study epochs) on a
  GPU machine: add a row with ``measured: true`` and its report file as the source.
- A scaling model (an assumption) from ResNet-20 to any other net: small CIFAR nets are
  launch-bound on a large GPU, so their step time grows with the number of layers; big nets
  are compute-bound at ``ASSUMED_MACS_PER_S``. Epoch time = max(launch part, compute part).
- Evaluation (validation every epoch, test every epoch or at the end) costs a third of a
  training step per image (forward only).
- Packing K same-shape nets into one step (``bnnlib.packed``): the launch part is shared,
  assumed to reach the issue's packing target (16 nets at 8x the runs per hour of one at a
  time), i.e. a pack of K costs max(1, K/8) launch parts plus K compute parts. Not measured.
"""
from __future__ import annotations

import math
from functools import lru_cache

__all__ = ["EPOCH_SECONDS", "ASSUMED_MACS_PER_S", "SPEED_MODES", "speed_mode", "epoch_seconds",
           "run_seconds", "estimate", "describe", "format_plan"]

EPOCH_IMAGES = 50_000
# One GPU, BNN ResNet-20, CIFAR-10 epoch of 50,000 images with augmentation, batch 128.
EPOCH_SECONDS = [
    {"gpu": "H100", "mode": "eager", "seconds": 7.6, "measured": False,
     "source": "quoted in issue 11 (plain PyTorch, eager fp32, H100); not measured here"},
    {"gpu": "H100", "mode": "compiled", "seconds": 2.8, "measured": False,
     "source": "quoted in issue 11 (plain PyTorch, torch.compile + CUDA graphs + bf16, H100); "
               "not measured here"},
]
SPEED_MODES = ("eager", "compiled")
# Sustained multiply-accumulates per second once a net is compute-bound (assumed, about 10-15 %
# of an H100's dense peak for fp32/TF32 eager and bf16 compiled convs of this size).
ASSUMED_MACS_PER_S = {"eager": 12.5e12, "compiled": 50e12}
PACK_TARGET = 1 / 8  # launch parts per packed net: 16 nets cost 2 (the 8x-at-16 target)
EVAL_COST = 1 / 3     # a forward pass is about a third of a training step
_REF_MODEL = "resnet20"


def speed_mode(cfg) -> str:
    """'compiled' when the config compiles with bf16 autocast (the quoted fast row), else 'eager'."""
    return "compiled" if cfg.compile and cfg.amp == "bf16" else "eager"


def _row(mode: str, gpu: str = "H100") -> dict:
    """The table row for ``mode`` (measured rows win over quoted ones)."""
    rows = [r for r in EPOCH_SECONDS if r["mode"] == mode and r["gpu"] == gpu]
    if not rows:
        raise ValueError(f"mode: got {mode!r}; allowed: {sorted({r['mode'] for r in EPOCH_SECONDS})}")
    return sorted(rows, key=lambda r: not r["measured"])[0]


@lru_cache(maxsize=4096)
def _shape_cost(spec_key: str) -> tuple[float, int]:
    """(MACs per image, leaf modules run) of a spec given as JSON, from one forward pass of a
    single image with hooks (fast; binary convs count as float MACs: a GPU runs a binary
    conv as a float conv of +-1 values). Leaf modules stand for kernel launches."""
    import json

    import torch

    from bnnlib.models import build
    from bnnlib.spec import spec_from_dict
    spec = spec_from_dict(json.loads(spec_key))
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = build(spec).eval()
    macs, leaves = [0.0], [0]

    def hook(m, inp, out):
        if not list(m.children()):
            leaves[0] += 1
        if isinstance(m, torch.nn.Conv2d):
            macs[0] += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear) or hasattr(m, "in_features") and hasattr(m, "out_features"):
            macs[0] += m.in_features * m.out_features
    hs = [m.register_forward_hook(hook) for m in model.modules()]
    size = getattr(spec, "input_size", 32) or 32
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device="meta"))
    for h in hs:
        h.remove()
    return macs[0], leaves[0]


def _cost_of(cfg) -> tuple[float, int]:
    """(MACs per image, layers) of a TrainConfig's net."""
    import json

    from bnnlib.spec import spec_to_dict
    return _shape_cost(json.dumps(spec_to_dict(cfg.build_spec()), sort_keys=True))


def _ref_cost() -> tuple[float, int]:
    from bnnlib.train_config import TrainConfig
    return _cost_of(TrainConfig(model=_REF_MODEL, dataset="synthetic"))


def epoch_seconds(cfg, mode: str | None = None, pack: int = 1) -> float:
    """Estimated seconds of one epoch (training + its evaluation) of ``cfg`` on one GPU; with
    ``pack`` K, of one epoch of K such nets packed together."""
    mode = mode or speed_mode(cfg)
    t_ref = _row(mode)["seconds"] / EPOCH_IMAGES  # per image, launch-bound ResNet-20
    macs, layers = _cost_of(cfg)
    ref_macs, ref_layers = _ref_cost()
    n_train = cfg.train_subset or (EPOCH_IMAGES - cfg.val_size)
    n_eval = cfg.val_size + (10_000 if cfg.eval_test == "every_epoch" else 10_000 / max(cfg.epochs, 1))
    images = n_train + EVAL_COST * n_eval
    launch = t_ref * layers / ref_layers * images
    compute = 3 * macs * images / ASSUMED_MACS_PER_S[mode]
    del ref_macs  # the reference is launch-bound: only its layer count enters
    return max(launch * max(1.0, pack * PACK_TARGET), pack * compute)


def run_seconds(cfg, mode: str | None = None, pack: int = 1) -> float:
    """Estimated seconds of the whole run (all epochs) of ``cfg`` (a pack of ``pack``)."""
    return cfg.epochs * epoch_seconds(cfg, mode, pack)


def estimate(configs, pack: int = 1, mode: str | None = None, gpus: int = 1,
             extra: list[tuple[str, float]] | None = None) -> dict:
    """{'runs', 'epochs', 'gpu_hours', 'wall_hours', 'modes', 'longest_run_hours'} of ``configs``;
    same-shape configs that differ only by seed/tag are packed ``pack`` at a time.
    ``extra``: (label, GPU-seconds) of work that is not a training run (pruning, measuring)."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus: got {gpus!r}; allowed: an int >= 1")
    from bnnlib.packed import pack_key
    groups: dict = {}
    for c in configs:
        groups.setdefault(pack_key(c), []).append(c)
    secs, longest, modes = 0.0, 0.0, set()
    for cs in groups.values():
        k = max(1, min(pack, len(cs)))
        n_packs = math.ceil(len(cs) / k)
        t = run_seconds(cs[0], mode, k)
        secs += n_packs * t
        longest = max(longest, t)
        modes.add(mode or speed_mode(cs[0]))
    secs += sum(s for _, s in extra or [])
    gpu_h = secs / 3600
    return {"runs": len(configs), "epochs": sum(c.epochs for c in configs), "gpu_hours": gpu_h,
            "wall_hours": max(gpu_h / gpus, longest / 3600), "longest_run_hours": longest / 3600,
            "modes": sorted(modes), "gpus": gpus, "pack": pack}


def describe() -> str:
    """The cost table and the assumptions, with their sources (printed by every ``plan``)."""
    lines = ["Cost table (seconds per 50,000-image CIFAR-10 epoch, BNN ResNet-20, batch 128, one GPU):"]
    for r in EPOCH_SECONDS:
        lines.append(f"  {r['gpu']} {r['mode']:9s} {r['seconds']:5.1f} s  "
                     f"[{'measured' if r['measured'] else 'quoted, not measured here'}] {r['source']}")
    lines.append("Assumed (not measured): other nets scale with their layer count (launch-bound) or "
                 f"their MACs at {ASSUMED_MACS_PER_S['eager']:.3g} (eager) / "
                 f"{ASSUMED_MACS_PER_S['compiled']:.3g} (compiled) MAC/s, whichever is slower; "
                 "evaluation images cost 1/3 of a training image; a pack of K nets costs "
                 "max(1, K/8) launch parts (the issue's 8x-at-16 target). GPU-hours are estimates.")
    return "\n".join(lines)


def format_plan(name: str, est: dict) -> str:
    """One summary line of a study's plan."""
    return (f"{name}: {est['runs']} runs, {est['epochs']} epochs, ~{est['gpu_hours']:.2f} GPU-hours "
            f"({'/'.join(est['modes']) or 'no training runs'}; packs of up to {est['pack']}), ~{est['wall_hours']:.1f} h on "
            f"{est['gpus']} GPU{'s' if est['gpus'] > 1 else ''} (longest run "
            f"{est['longest_run_hours']:.1f} h); estimated from the table below, not measured")
