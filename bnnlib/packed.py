"""Packed training: K same-shape networks trained together in one step, as grouped layers.

Small nets cannot fill a GPU one at a time (ResNet-20 is launch-bound). Packing K of them makes
every kernel K times wider. Net k owns channel block k of every tensor:

- convs become grouped convs (groups x K), linears become a batched matmul per net;
- BN, PReLU/RPReLU, RSign thresholds are per channel, so concatenating them keeps nets apart;
- option-A pad shortcuts pad each net's block separately;
- the loss is the sum of the K per-net mean losses, so each net's gradient is exactly its own,
  and SGD/Adam/weight decay act elementwise.

Each net keeps its own seed (initialisation), data order, augmentation stream and record, so
a packed run equals training each net alone up to floating-point rounding (grouped vs dense
kernels). ``tests/test_packed.py`` checks this. Not supported in packed mode: two-step
training, distillation (they raise ``ValueError``). ``eval_test='end'`` scores the test set
every epoch in packed mode, so the best-validation epoch's test score is at hand without
keeping K sets of best weights (the record's history then has a test score at every epoch).
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import records, runtime
from .data import augment, augment_pad, normalize, resolve_dataset
from .binarizers import RSign
from .layers import BinaryLinear, LearnableBias, RPReLU
from .models.common import PadShortcut
from .train import (StopTraining, _peak_memory, _quiet, build_model, schedule_lr,
                    eval_batch_size, log_epoch, resolve_device, write_record)
from .train_config import TrainConfig, make_optimizer, resolved_hparams

__all__ = ["pack_models", "unpack_state", "pack_key", "train_packed", "run_packed",
           "PackedLinear", "PackedPadShortcut"]

# Fields that may differ inside one pack (plus the operational ones of records.HASH_EXCLUDED).
PER_NET_FIELDS = {"seed", "tag"}
_PER_CHANNEL = (nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.PReLU, RPReLU, LearnableBias, RSign)


class PackedLinear(nn.Module):
    """K linears (same shape) applied to K feature blocks: (B, K*in) -> (B, K*out)."""

    def __init__(self, linears: list[BinaryLinear]):
        super().__init__()
        l0 = linears[0]
        self.k, self.in_features, self.out_features = len(linears), l0.in_features, l0.out_features
        self.input_binarizer = _cat_module([l.input_binarizer for l in linears])
        self.weight_binarizer = _cat_module([l.weight_binarizer for l in linears])
        self.weight = nn.Parameter(torch.cat([l.weight.detach() for l in linears]))
        self.bias = (nn.Parameter(torch.cat([l.bias.detach() for l in linears]))
                     if l0.bias is not None else None)

    def forward(self, x):
        b = x.shape[0]
        xb = self.input_binarizer(x).view(b, self.k, self.in_features).transpose(0, 1)
        wb = self.weight_binarizer(self.weight).view(self.k, self.out_features, self.in_features)
        y = torch.bmm(xb, wb.transpose(1, 2))  # (K, B, out)
        if self.bias is not None:
            y = y + self.bias.view(self.k, 1, self.out_features)
        return y.transpose(0, 1).reshape(b, self.k * self.out_features)


class PackedPadShortcut(nn.Module):
    """Option-A shortcut applied to each net's channel block."""

    def __init__(self, pad: PadShortcut, k: int):
        super().__init__()
        self.stride, self.front, self.back, self.k = pad.stride, pad.front, pad.back, k

    def forward(self, x):
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        b, c, h, w = x.shape
        x = F.pad(x.reshape(b, self.k, c // self.k, h, w), (0, 0, 0, 0, self.front, self.back))
        return x.reshape(b, -1, h, w)


def _cat_module(mods: list[nn.Module]) -> nn.Module:
    """Copy of mods[0] whose own tensors are the dim-0 concatenation over ``mods``."""
    out = copy.deepcopy(mods[0])
    for n, p in mods[0].named_parameters(recurse=False):
        setattr(out, n, nn.Parameter(torch.cat([getattr(m, n).detach() for m in mods])))
    for n, b in mods[0].named_buffers(recurse=False):
        if b is not None and b.ndim > 0:
            out._buffers[n] = torch.cat([m._buffers[n] for m in mods])
    for n, child in mods[0].named_children():
        setattr(out, n, _pack_tree([getattr(m, n) for m in mods]))
    return out


def _pack_tree(mods: list[nn.Module]) -> nn.Module:
    """Packed version of the K modules ``mods`` (same structure), recursively."""
    m0, k = mods[0], len(mods)
    if isinstance(m0, BinaryLinear):
        return PackedLinear(mods)
    if isinstance(m0, PadShortcut):
        return PackedPadShortcut(m0, k)
    own = list(m0.parameters(recurse=False)) + [b for b in m0.buffers(recurse=False) if b.ndim > 0]
    if own and not isinstance(m0, _PER_CHANNEL):
        raise ValueError(f"module: got {type(m0).__name__} with parameters; allowed in packed "
                         f"mode: {[c.__name__ for c in _PER_CHANNEL]} and BinaryLinear")
    out = _cat_module(mods)
    if isinstance(m0, nn.Conv2d):
        out.groups, out.in_channels, out.out_channels = m0.groups * k, m0.in_channels * k, m0.out_channels * k
    return out


def pack_models(models: list[nn.Module]) -> nn.Module:
    """One module computing K same-shape models side by side: input (B, K*3, H, W) ->
    logits (B, K*classes); net k reads channel block k."""
    shapes = {tuple((n, tuple(p.shape)) for n, p in m.state_dict().items()) for m in models}
    if len(shapes) != 1:
        raise ValueError(f"models: got {len(shapes)} different shapes; allowed: same-shape models")
    with torch.no_grad():
        return _pack_tree(list(models))


def unpack_state(state: dict, k: int) -> list[dict]:
    """Split a packed state_dict into the K nets' state_dicts (dim-0 blocks)."""
    out = [{} for _ in range(k)]
    for name, t in state.items():
        parts = t.chunk(k, 0) if t.ndim > 0 else [t] * k
        for i in range(k):
            out[i][name] = parts[i].detach().cpu().clone()
    return out


def pack_key(cfg: TrainConfig) -> str:
    """Configs with equal keys differ only per net (seed, tag) or operationally: packable."""
    d = {k: v for k, v in records.config_dict(cfg).items()
         if k not in PER_NET_FIELDS and k not in records.HASH_EXCLUDED}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _check_packable(configs: list[TrainConfig]) -> None:
    """Raise ValueError unless the configs can share one packed model."""
    if len({pack_key(c) for c in configs}) != 1:
        raise ValueError("configs: got configs that differ beyond seed/tag; allowed: one pack key")
    c = configs[0]
    for f, bad in (("two_step", True),):
        if getattr(c, f) == bad:
            raise ValueError(f"{f}: got {bad!r}; allowed in packed mode: not {bad!r}")
    if c.teacher_model is not None:
        raise ValueError(f"teacher_model: got {c.teacher_model!r}; allowed in packed mode: None")


@torch.no_grad()  # not inference_mode: it breaks a CUDA-graph-captured (compiled) module
def _evaluate(net, x, y, k, cfg) -> list[float | None]:
    """Per-net top-1 accuracy (%) over all of x."""
    if len(y) == 0:
        return [None] * k
    correct = torch.zeros(k, dtype=torch.long, device=y.device)
    net.eval()
    bs = eval_batch_size(cfg, y.device)
    for s in range(0, len(y), bs):
        xb = normalize(x[s:s + bs], channels_last=cfg.channels_last).repeat(1, k, 1, 1)
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16"):
            out = net(xb)
        correct += (out.view(len(xb), k, -1).argmax(2) == y[s:s + len(xb), None]).sum(0)
    return [100.0 * c / len(y) for c in correct.tolist()]


def _epoch(sts, cfgs, ctx) -> None:
    """One packed epoch: every net draws its own order and augmentation from its generator."""
    from tqdm.auto import tqdm
    net, opt, gens, d, bs, k = ctx["net"], ctx["opt"], ctx["gens"], ctx["data"], ctx["bs"], ctx["k"]
    n, c0 = len(d.y_train), cfgs[0]
    steps = n // bs
    perms = [torch.randperm(n, generator=g, device=g.device) for g in gens]
    dev = d.y_train.device
    loss_sum = torch.zeros(k, device=dev)
    correct = torch.zeros(k, dtype=torch.long, device=dev)
    # first non-finite step per net, kept on the device: no host sync inside the loop
    bad = torch.tensor([-1 if s["diverged"] is None else s["diverged"]["step"] for s in sts], device=dev)
    step0 = sts[0]["step"]
    net.train()
    for i in tqdm(range(steps), disable=ctx["quiet"], leave=False, desc=f"packed epoch {sts[0]['epoch'] + 1}"):
        lr = schedule_lr(ctx["lr"], step0 + i, ctx["total_steps"], c0.lr_schedule, ctx["warmup"])
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ys = [], []
        for p, g in zip(perms, gens):
            idx = p[i * bs:(i + 1) * bs]
            xb = augment(d.x_train[idx], g, pad=augment_pad(c0.resolution)) if c0.augment else d.x_train[idx]
            xs.append(normalize(xb, channels_last=c0.channels_last))
            ys.append(d.y_train[idx])
        x, y = torch.cat(xs, 1), torch.stack(ys, 1)  # (B, K*3, H, W), (B, K)
        if c0.compile and x.device.type == "cuda":  # new step for CUDA-graph outputs
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=c0.amp == "bf16"):
            logits = net(x)
        logits = logits.float().view(bs, k, -1)
        losses = F.cross_entropy(logits.permute(0, 2, 1), y, reduction="none",
                                 label_smoothing=c0.label_smoothing).mean(0)  # (K,)
        bad = torch.where((bad < 0) & ~torch.isfinite(losses.detach()), step0 + i, bad)
        alive = bad < 0  # a diverged net leaves the loss; its NaNs stay in its own channel block
        opt.zero_grad(set_to_none=True)
        torch.where(alive, losses, 0.0).sum().backward()
        opt.step()
        loss_sum += torch.where(alive, losses.detach(), 0.0)
        correct += (logits.argmax(2) == y).sum(0)
    for j, b in enumerate(bad.tolist()):
        sts[j]["step"] = step0 + steps
        if b >= 0 and sts[j]["diverged"] is None:
            sts[j]["diverged"] = {"epoch": sts[j]["epoch"] + 1, "step": b}
    for j, s in enumerate(sts):
        s["last_lr"], s["train_loss"] = lr, float(loss_sum[j]) / steps
        s["train_acc"] = 100.0 * int(correct[j]) / (steps * bs)


def train_packed(configs: list[TrainConfig], out_dirs: list, checkpoint: str | None = None) -> list[dict]:
    """Train K packable configs in one packed model; write one record per config.

    ``checkpoint``: file for the per-epoch pack checkpoint; an existing one is resumed.
    """
    configs = [c if isinstance(c, TrainConfig) else TrainConfig.from_dict(c) for c in configs]
    _check_packable(configs)
    c0, k = configs[0], len(configs)
    if c0.threads is not None:
        torch.set_num_threads(c0.threads)
    device = resolve_device(c0.device)
    runtime.apply_determinism(c0.deterministic)
    git = records.git_commit()
    t0 = time.perf_counter()
    ctx = _setup(configs, device)
    t_data = time.perf_counter() - t0
    ckpt = Path(checkpoint) if checkpoint else None
    sts = [{"epoch": 0, "step": 0, "history": [], "best": None, "diverged": None} for _ in configs]
    if ckpt is not None and ckpt.is_file():
        sts = _restore(ckpt, ctx)
    step_start = sts[0]["step"]
    t_train, t_eval = _loop(sts, configs, ctx, ckpt)
    n_steps = sts[0]["step"] - step_start
    timings = {"total_s": time.perf_counter() - t0, "data_s": t_data, "train_s": t_train,
               "eval_s": t_eval, "steps": sts[0]["step"], "step_time_s": t_train / max(n_steps, 1),
               "images_per_s": n_steps * ctx["bs"] * k / t_train if t_train else None,
               "resumed": step_start > 0,
               "packed": {"k": k, "note": "times and images/s are for all K nets together"},
               **_peak_memory(device)}
    recs = []
    parts = unpack_state(ctx["plain"].state_dict(), k)
    for c, s, sd, m, o in zip(configs, sts, parts, ctx["models"], out_dirs):
        Path(o).mkdir(parents=True, exist_ok=True)
        recs.append(write_record(c, Path(o), s, ctx["data"].info, sd, m.spec, device, timings, git))
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    return recs


def _setup(configs: list[TrainConfig], device) -> dict:
    """Shared data on the device, the K seeded models packed into one, optimizer, generators."""
    c0 = configs[0]
    d = resolve_dataset(c0.dataset, c0.data_root, c0.val_size, c0.train_subset, c0.split_seed,
                        synthetic_train=c0.synthetic_train, synthetic_test=c0.synthetic_test,
                        resolution=c0.resolution).to(device)
    h = resolved_hparams(c0)
    steps = len(d.y_train) // h["batch_size"]
    if steps == 0:
        raise ValueError(f"batch_size: got {h['batch_size']}; allowed: at most the "
                         f"{len(d.y_train)} training images")
    models = [build_model(c) for c in configs]
    fmt = torch.channels_last if c0.channels_last else torch.preserve_format
    net = pack_models(models).to(device, memory_format=fmt)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if c0.compile:  # a fresh dynamo per pack: earlier models of this process must not count
        runtime.reset_compiler()
    return {"plain": net, "net": torch.compile(net, mode=c0.compile_mode) if c0.compile else net,
            "models": models, "opt": make_optimizer(net, h, h["weight_decay"]), "data": d,
            "gens": [torch.Generator(device=device).manual_seed(c.seed) for c in configs],
            "bs": h["batch_size"], "k": len(configs), "quiet": _quiet(c0), "lr": h["lr"],
            "total_steps": c0.epochs * steps, "warmup": round(c0.warmup_epochs * steps)}


def _restore(ckpt: Path, ctx: dict) -> list[dict]:
    """Load the pack checkpoint into ``ctx``; return the per-net states."""
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    ctx["plain"].load_state_dict(ck["net"])
    ctx["opt"].load_state_dict(ck["optimizer"])
    for g, s in zip(ctx["gens"], ck["gens"]):
        g.set_state(s)
    return ck["states"]


def _loop(sts, configs, ctx, ckpt) -> tuple[float, float]:
    """Remaining epochs: train, score every net on val and test, checkpoint; (train_s, eval_s)."""
    c0, d, k, net = configs[0], ctx["data"], ctx["k"], ctx["net"]
    t_train = t_eval = 0.0
    while sts[0]["epoch"] < c0.epochs and any(s["diverged"] is None for s in sts):
        t1 = time.perf_counter()
        _epoch(sts, configs, ctx)
        t2 = time.perf_counter()
        t_train += t2 - t1
        vals = _evaluate(net, d.x_val, d.y_val, k, c0)
        tests = _evaluate(net, d.x_test, d.y_test, k, c0)
        t_eval += time.perf_counter() - t2
        for s, c, v, t in zip(sts, configs, vals, tests):
            if s["diverged"] is None:  # test scored every epoch: no best weights to keep
                log_epoch(s, c.replace(eval_test="every_epoch") if c.eval_test == "end" else c,
                          v, t, t2 - t1, None)
            s["epoch"] += 1
        if ckpt is not None and sts[0]["epoch"] < c0.epochs:
            records.save_atomic({"net": ctx["plain"].state_dict(), "optimizer": ctx["opt"].state_dict(),
                                 "states": sts, "gens": [g.get_state() for g in ctx["gens"]]}, ckpt)
        if c0.stop_after_epoch == sts[0]["epoch"]:
            raise StopTraining(f"packed run stopped after epoch {sts[0]['epoch']} (stop_after_epoch)")
    return t_train, t_eval


def run_packed(configs: list[TrainConfig], out_dirs: list, pack_size: int = 16,
               checkpoint_dir: str | None = None) -> list[dict]:
    """Group packable configs (same pack key) into packs of at most ``pack_size``, train each
    pack; a pack that raises gets a 'failed' record for each of its configs."""
    if isinstance(pack_size, bool) or not isinstance(pack_size, int) or pack_size < 1:
        raise ValueError(f"pack_size: got {pack_size!r}; allowed: an int >= 1")
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(pack_key(c), []).append(i)
    out = [None] * len(configs)
    for idx in groups.values():
        for s in range(0, len(idx), pack_size):
            part = idx[s:s + pack_size]
            cs, ds = [configs[i] for i in part], [out_dirs[i] for i in part]
            tag = hashlib.sha256("".join(records.config_hash(c) for c in cs).encode()).hexdigest()[:16]
            ck_dir = Path(checkpoint_dir) if checkpoint_dir else Path(ds[0]).parent / "_packed"
            try:
                recs = train_packed(cs, ds, checkpoint=str(ck_dir / f"{tag}.pt"))
            except Exception as exc:  # isolation: a failing pack must not stop the others
                recs = [records.failure_record(c, exc) for c in cs]
                for r, dd in zip(recs, ds):
                    records.write_json_atomic(Path(dd) / "record.json", r)
            for i, r in zip(part, recs):
                out[i] = r
    return out
