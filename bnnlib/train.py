"""Trainer: one config in, one JSON record out (``train(config, out_dir) -> record``).

The whole dataset is a uint8 tensor on the training device; each step gathers a batch,
augments it with one batched gather (``bnnlib.data.augment``) and normalises it, so there is
no DataLoader and no per-sample Python. Every epoch ends with an atomic checkpoint holding
model, optimizer, step, history and every RNG state; ``resume=True`` continues from it and,
on CPU with the same thread count, ends bit-identical to an uninterrupted run.

CLI: ``python -m bnnlib.train --model resnet20 --binary --epochs 2 --dataset synthetic --out DIR``.
"""
from __future__ import annotations

import math
import os
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import records, runtime
from .data import augment, augment_pad, normalize, resolve_dataset
from .train_config import PRESETS, TrainConfig, make_optimizer, resolved_hparams
from . import distributed as ddp
from .sources import TensorSource, make_source

__all__ = ["TrainConfig", "PRESETS", "train", "StopTraining", "build_model", "evaluate",
           "resolve_device", "cosine_lr", "schedule_lr", "write_record", "log_epoch", "main"]

RECORD_VERSION = 1


class StopTraining(Exception):
    """Raised after the checkpoint of ``config.stop_after_epoch`` (simulates a killed run)."""


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: got {name!r}; allowed here: 'cpu' or 'auto' (no CUDA device)")
    return torch.device(name)


def build_model(cfg: TrainConfig) -> nn.Module:
    """The config's model, initialised from ``cfg.seed`` (and ``init_weights`` when set)."""
    from .models import build
    torch.manual_seed(cfg.seed)
    model = build(cfg.build_spec())
    if cfg.init_weights:
        model.load_state_dict(torch.load(cfg.init_weights, map_location="cpu", weights_only=True))
    return model


def _phases(cfg: TrainConfig, wd: float) -> list[dict]:
    """Training phases: one, or two-step (real weights first, then binary, wd 0 as ReActNet)."""
    if not cfg.two_step:
        return [{"start": 0, "end": cfg.epochs, "real_weights": False, "wd": wd}]
    mid = max(1, cfg.epochs // 2)
    return [{"start": 0, "end": mid, "real_weights": True, "wd": wd},
            {"start": mid, "end": cfg.epochs, "real_weights": False, "wd": 0.0}]


def _set_real_weights(model: nn.Module, real: bool, saved: dict) -> None:
    """Swap binary weight binarizers for identity (step 1 of two-step training) or back."""
    from .binarizers import Identity
    for name, m in model.named_modules():
        if hasattr(m, "weight_binarizer"):
            if real and name not in saved and getattr(m.weight_binarizer, "binary", False):
                saved[name], m.weight_binarizer = m.weight_binarizer, Identity()
            elif not real and name in saved:
                m.weight_binarizer = saved.pop(name)


def cosine_lr(peak: float, t: int, total: int) -> float:
    """Cosine annealing from ``peak`` at step 0 to zero at step ``total``."""
    return peak * 0.5 * (1.0 + math.cos(math.pi * t / total))


def schedule_lr(peak: float, t: int, total: int, schedule: str = "cosine", warmup: int = 0) -> float:
    """Learning rate at step ``t`` of ``total``: linear warm-up over ``warmup`` steps from 0,
    then ``schedule`` ('cosine' or 'linear') from ``peak`` down to zero at ``total``."""
    if t < warmup:
        return peak * (t + 1) / warmup
    t, total = t - warmup, max(total - warmup, 1)
    if schedule == "linear":
        return peak * max(0.0, 1.0 - t / total)
    return cosine_lr(peak, t, total)


def _quiet(cfg: TrainConfig) -> bool:
    """Progress bars off under CI, off when stderr is not a terminal, or when asked."""
    if cfg.progress is not None:
        return not cfg.progress
    return bool(os.environ.get("CI")) or not sys.stderr.isatty()


def _autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast context when ``cfg.amp == 'bf16'``, else a no-op one."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")


@torch.no_grad()  # not inference_mode: its tensors break a CUDA-graph-captured (compiled) module
def evaluate(fwd, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, device) -> float | None:
    """Top-1 accuracy (%) over ALL of x (no dropped batch); None when x is empty."""
    if len(y) == 0:
        return None
    fwd.eval()
    device = torch.device(device)
    bs = eval_batch_size(cfg, device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for s in range(0, len(y), bs):
        xb = normalize(x[s:s + bs], channels_last=cfg.channels_last)
        with _autocast(cfg, device):
            out = fwd(xb)
        correct += (out.argmax(1) == y[s:s + bs]).sum()
    return 100.0 * int(correct) / len(y)


def eval_batch_size(cfg: TrainConfig, device) -> int:
    """Inference batch: small on CPU, where 100-image batches stay in cache (2x faster than 1000)."""
    return cfg.eval_batch_size or (1000 if torch.device(device).type == "cuda" else 100)


@torch.no_grad()
def evaluate_split(ctx: dict, cfg: TrainConfig, split: str) -> float | None:
    """Top-1 accuracy (%) on 'val' or 'test' of ``ctx['source']``: each rank scores its
    unpadded shard and (correct, count) are summed over ranks, so every image counts once."""
    src, dev, env = ctx["source"], ctx["device"], ctx["dist"]
    n = src.eval_count(split)
    if n == 0:
        return None
    fwd = ctx["eval_fwd"]
    fwd.eval()
    tot = torch.zeros(2, dtype=torch.long, device=dev)
    for xb, yb in src.eval_batches(split, eval_batch_size(cfg, dev)):
        with _autocast(cfg, dev):
            out = fwd(xb)
        tot[0] += (out.argmax(1) == yb).sum()
        tot[1] += len(yb)
    ddp.all_sum(tot, env)
    if int(tot[1]) != n:
        raise RuntimeError(f"evaluation scored {int(tot[1])} of the {n} {split} images")
    return 100.0 * int(tot[0]) / n


def _load_teacher(cfg: TrainConfig, device) -> nn.Module | None:
    """The frozen real-valued teacher for distillation, or None."""
    if cfg.teacher_model is None:
        return None
    from .models import create_model
    t = create_model(cfg.teacher_model, binary=False)
    t.load_state_dict(torch.load(cfg.teacher_weights, map_location="cpu", weights_only=True))
    return t.to(device).eval().requires_grad_(False)


def _loss(logits, y, teacher_logits, cfg: TrainConfig):
    """Cross-entropy, or its mix with the teacher's temperature-scaled KL divergence."""
    ce = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
    if teacher_logits is None:
        return ce
    t = cfg.distill_temperature
    kl = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher_logits / t, 1),
                  reduction="batchmean", log_target=True) * t * t
    return (1 - cfg.distill_weight) * ce + cfg.distill_weight * kl


def _train_epoch(st: dict, cfg: TrainConfig, ctx: dict) -> None:
    """One epoch in place on ``st``; sets st['diverged'] on the first non-finite loss."""
    from tqdm.auto import tqdm
    fwd, opt, gen = ctx["fwd"], ctx["opt"], ctx["gen"]
    dev, bs, ph = ctx["device"], ctx["bs"], ctx["phase"]
    src = ctx.get("source") or TensorSource(ctx["data"], bs, cfg, pad=ctx.get("pad"))
    env = ctx.get("dist") or ddp.DistEnv()
    steps = src.steps_per_epoch  # the incomplete last batch is dropped in training only (reshuffled each epoch)
    batches = src.train_batches(st["epoch"], gen)  # this rank's share of each global batch
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), dtype=torch.long, device=dev)
    fwd.train()  # the compiled wrapper too, so its flag matches the module it wraps
    check = 1 if dev.type == "cpu" else 25  # loss checks sync the GPU: batch them there
    pending = []
    for i in tqdm(range(steps), disable=ctx["quiet"], leave=False, desc=f"epoch {st['epoch'] + 1}"):
        lr = schedule_lr(ph["lr"], st["step"] - ph["step0"], ph["steps"], cfg.lr_schedule, ph["warmup"])
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb = next(batches)
        if ctx.get("cudagraphs"):  # a new step: earlier graph outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        with _autocast(cfg, dev):
            logits = fwd(xb)
            t_logits = None
            if ctx["teacher"] is not None:
                with torch.no_grad():
                    t_logits = ctx["teacher"](xb).float()
        loss = _loss(logits.float(), yb, t_logits, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        st["step"] += 1
        if env.enabled and cfg.ddp_check_every and st["step"] % cfg.ddp_check_every == 0:
            ddp.check_in_sync(ctx["model"], env)  # raises unless every rank holds rank 0's weights
            ctx["sync_checks"] += 1
        loss_sum += loss.detach()
        correct += (logits.argmax(1) == yb).sum()
        pending.append(loss.detach())
        if len(pending) >= check or i == steps - 1:
            ok = ddp.all_ok(torch.isfinite(torch.stack(pending)), env).tolist()  # all ranks agree
            if not all(ok):
                st["diverged"] = {"epoch": st["epoch"] + 1, "step": st["step"] - len(ok) + ok.index(False)}
                return
            pending = []
    if env.enabled:  # per-rank sums -> mean loss over ranks, correct over every rank's images
        loss_sum = ddp.all_sum(loss_sum.clone(), env) / env.world_size
        correct = ddp.all_sum(correct.clone(), env)
    st["last_lr"] = lr
    st["train_loss"] = float(loss_sum) / max(steps, 1)
    st["train_acc"] = 100.0 * int(correct) / max(steps * bs, 1)


def _peak_memory(device) -> dict:
    """Peak GPU memory on CUDA, peak resident set size on CPU."""
    if device.type == "cuda":
        return {"peak_gpu_memory_bytes": torch.cuda.max_memory_allocated(device)}
    return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _complexity(spec) -> dict | None:
    """``bnnlib.complexity.count(spec).totals`` (None without the counter)."""
    try:
        from .complexity import count
    except ImportError:  # complexity counter not available in this checkout
        return None
    return dict(count(spec).totals)


def _summary(st: dict) -> dict:
    """Final / best-on-validation metrics from the epoch history."""
    hist = st["history"]
    m = {"acc_unit": "percent", "epochs": hist, "final_test_acc": None, "final_val_acc": None,
         "best_val_acc": None, "best_epoch": None, "test_acc_at_best_val": None}
    if not hist:
        return m
    last = hist[-1]
    if st.get("diverged") is None:
        m["final_test_acc"], m["final_val_acc"] = last["test_acc"], last["val_acc"]
    best = st.get("best")
    if best is not None:
        m.update(best_val_acc=best["val_acc"], best_epoch=best["epoch"],
                 test_acc_at_best_val=best["test_acc"])
    return m


def train(config: TrainConfig | dict, out_dir: str | os.PathLike, resume: bool = False) -> dict:
    """Train one run; write ``out_dir/record.json`` (and weights.pt when asked); return the record.

    ``resume``: continue from ``out_dir/checkpoint.pt`` (same config hash), or return the
    record already there when the run is done. ``diverged_at.step`` is the 0-based global
    step whose loss was not finite.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chash, ckpt_path = records.config_hash(cfg), out / "checkpoint.pt"
    if resume and (out / "record.json").is_file():
        old = records.read_json(out / "record.json")
        if old.get("config_hash") == chash and old.get("status") in ("finished", "diverged"):
            return old
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    env, rank_device = ddp.init(cfg.device)  # torchrun / SLURM environment, else one process
    device = rank_device or resolve_device(cfg.device)
    runtime.apply_determinism(cfg.deterministic)
    git = records.git_commit()  # the code that runs is the code at start
    t0 = time.perf_counter()
    ctx = _setup(cfg, device, env)
    t_data = time.perf_counter() - t0
    st = {"epoch": 0, "step": 0, "history": [], "best": None, "diverged": None, "best_state": None}
    opt_state = _restore(ckpt_path, chash, ctx, st) if resume and ckpt_path.is_file() else None
    step_start = st["step"]  # timings cover this process only
    try:
        t_train, t_eval = _run_phases(cfg, st, ctx, opt_state, ckpt_path, chash)
    except RuntimeError as exc:  # deterministic=True on an op PyTorch cannot run deterministically
        raise (runtime.determinism_error(exc) or exc) from exc
    if cfg.eval_test == "end" and not st["diverged"]:
        _fill_test_at_end(st, cfg, ctx)
    n_steps = st["step"] - step_start
    timings = {"total_s": time.perf_counter() - t0, "data_s": t_data, "train_s": t_train,
               "eval_s": t_eval, "steps": st["step"], "step_time_s": t_train / max(n_steps, 1),
               "images_per_s": n_steps * ctx["bs"] / t_train if t_train else None,
               "resumed": step_start > 0, **_peak_memory(device)}
    ranks = ddp.rank_stats(env, n_steps * ctx["bs"] / env.world_size / t_train if t_train else None)
    extra = {"distributed": ddp.record_info(env, ranks, cfg.sync_bn, ctx["sync_checks"])}
    model, rec = ctx["model"], None
    if env.is_main:  # one writer; the other ranks return None
        sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        rec = write_record(cfg, out, st, ctx["source"].info, sd, model.spec, device, timings, git,
                           extra=extra)
        ckpt_path.unlink(missing_ok=True)
    ddp.barrier(env)  # the group stays up (closed at exit): a DWR chain trains runs in turn
    return rec


def _setup(cfg: TrainConfig, device: torch.device, env: ddp.DistEnv | None = None) -> dict:
    """Data source for this rank, model (DDP-wrapped when data-parallel), optional compiled
    forward, generator, teacher."""
    env = env or ddp.DistEnv()
    h = resolved_hparams(cfg)
    source = make_source(cfg, h["batch_size"], device, env)
    fmt = torch.channels_last if cfg.channels_last else torch.preserve_format
    model = build_model(cfg).to(device, memory_format=fmt)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if cfg.compile:  # a fresh dynamo per run: earlier models of this process must not count
        runtime.reset_compiler()
    net = ddp.wrap_model(model, env, device, cfg.sync_bn)
    fwd = torch.compile(net, mode=cfg.compile_mode) if cfg.compile else net
    # evaluation runs on the plain module: shards differ in length, so no collectives inside
    eval_fwd = fwd if not env.enabled else torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
    return {"model": model, "data": getattr(source, "data", None), "source": source, "dist": env,
            "device": device, "h": h, "bs": h["batch_size"], "fwd": fwd, "eval_fwd": eval_fwd,
            "sync_checks": 0,
            "gen": torch.Generator(device=device).manual_seed(cfg.seed), "quiet": _quiet(cfg),
            "teacher": _load_teacher(cfg, device), "cudagraphs": cfg.compile and device.type == "cuda",
            "pad": augment_pad(cfg.resolution)}


def _restore(ckpt_path: Path, chash: str, ctx: dict, st: dict) -> tuple:
    """Load model, state and RNGs from the checkpoint; return (phase, optimizer state)."""
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if ck["config_hash"] != chash:
        raise ValueError(f"resume: checkpoint {ckpt_path} is for config {ck['config_hash']}, not {chash}")
    ctx["model"].load_state_dict(ck["model"])
    st.update(ck["state"])
    records.set_rng_state(ck["rng"], ctx["gen"])
    return ck["phase"], ck["optimizer"]


def _run_phases(cfg, st, ctx, opt_state, ckpt_path, chash) -> tuple[float, float]:
    """All remaining epochs, phase by phase, checkpointing each epoch; (train_s, eval_s)."""
    model, h, saved_bin = ctx["model"], ctx["h"], {}
    steps_per_epoch = ctx["source"].steps_per_epoch
    t_train = t_eval = 0.0
    for pi, ph in enumerate(_phases(cfg, h["weight_decay"])):
        if st["epoch"] >= ph["end"] or st["diverged"]:
            continue
        _set_real_weights(model, ph["real_weights"], saved_bin)
        ctx["opt"] = opt = make_optimizer(model, h, ph["wd"])
        if opt_state is not None and opt_state[0] == pi:  # a new phase starts a fresh optimizer
            opt.load_state_dict(opt_state[1])
        ctx["phase"] = {"lr": h["lr"], "step0": ph["start"] * steps_per_epoch,
                        "steps": (ph["end"] - ph["start"]) * steps_per_epoch,
                        "warmup": round(cfg.warmup_epochs * steps_per_epoch)}
        while st["epoch"] < ph["end"] and not st["diverged"]:
            t1 = time.perf_counter()
            _train_epoch(st, cfg, ctx)
            t_train += time.perf_counter() - t1
            if st["diverged"]:
                break
            t2 = time.perf_counter()
            _end_epoch(st, cfg, ctx, t2 - t1)
            t_eval += time.perf_counter() - t2
            st["epoch"] += 1
            if ctx["dist"].is_main:  # one writer; every rank resumes from this file
                records.save_atomic({"config_hash": chash, "model": model.state_dict(), "phase": pi,
                                     "optimizer": opt.state_dict(), "state": st,
                                     "rng": records.rng_state(ctx["gen"])}, ckpt_path)
            ddp.barrier(ctx["dist"])  # no rank stops before the checkpoint is on disk
            if cfg.stop_after_epoch == st["epoch"]:
                raise StopTraining(f"stopped after epoch {st['epoch']} (stop_after_epoch)")
    _set_real_weights(model, False, saved_bin)
    return t_train, t_eval


def write_record(cfg: TrainConfig, out: Path, st: dict, data_info: dict, sd: dict, spec,
                 device, timings: dict, git: dict | None = None, extra: dict | None = None) -> dict:
    """Assemble the run record (and weights.pt when asked), write it atomically, return it."""
    from .spec import spec_to_dict
    if cfg.save_weights:
        records.save_atomic(sd, out / "weights.pt")
    git = git or records.git_commit()
    rec = {"record_version": RECORD_VERSION, "status": "diverged" if st["diverged"] else "finished",
           "diverged_at": st["diverged"], "config": records.config_dict(cfg),
           "config_hash": records.config_hash(cfg), "seed": cfg.seed, "dataset": data_info,
           "hparams": resolved_hparams(cfg), "metrics": _summary(st), "complexity": _complexity(spec),
           "model_spec": spec_to_dict(spec), "timings": timings, "versions": records.versions(),
           "git_commit": git["commit"], "git_dirty": git["dirty"], "device": records.device_info(device),
           "weights_sha256": records.weights_sha256(sd),
           "weights_file": "weights.pt" if cfg.save_weights else None,
           "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **(extra or {})}
    rec = records.jsonable(rec)  # return exactly what is on disk (lists, not tuples)
    records.write_json_atomic(out / "record.json", rec)
    return rec


def _end_epoch(st: dict, cfg: TrainConfig, ctx: dict, epoch_s: float) -> None:
    """Validation (+ test) accuracy, then the epoch's history entry."""
    env = ctx["dist"]
    ddp.broadcast_buffers(ctx["model"], env)  # rank 0's BN running statistics on every rank
    ddp.check_in_sync(ctx["model"], env, buffers=True)
    ctx["sync_checks"] += env.enabled
    val = evaluate_split(ctx, cfg, "val")
    last = st["epoch"] + 1 == cfg.epochs
    test = evaluate_split(ctx, cfg, "test") if cfg.eval_test == "every_epoch" or last else None
    log_epoch(st, cfg, val, test, epoch_s, ctx["model"].state_dict)


def log_epoch(st: dict, cfg: TrainConfig, val, test, epoch_s: float, state_fn) -> None:
    """Append the epoch to ``st['history']``; keep the best epoch, chosen on validation only."""
    e = {"epoch": st["epoch"] + 1, "train_loss": st["train_loss"], "train_acc": st["train_acc"],
         "val_acc": val, "test_acc": test, "lr": st["last_lr"], "time_s": epoch_s}
    st["history"].append(e)
    # without a validation set the best epoch is simply the last one
    if st["best"] is None or val is None or val > st["best"]["val_acc"]:
        st["best"] = dict(e)
        if cfg.eval_test == "end":
            st["best_state"] = {k: v.detach().cpu().clone() for k, v in state_fn().items()}


def _fill_test_at_end(st: dict, cfg: TrainConfig, ctx: dict) -> None:
    """eval_test='end': score the test set with the best-val weights (final already scored)."""
    best = st["best"]
    if best is None or best["test_acc"] is not None:
        return
    model = ctx["model"]
    final = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(st["best_state"])
    best["test_acc"] = evaluate_split(ctx, cfg, "test")
    st["history"][best["epoch"] - 1]["test_acc"] = best["test_acc"]
    model.load_state_dict(final)


def main(argv=None) -> int:
    """CLI: train one run, write its record into --out; exit 0 finished, 3 diverged."""
    from .train_config import parse_args
    try:
        cfg, out, resume = parse_args(argv)
        rec = train(cfg, out, resume=resume)
    except ValueError as e:  # bad flags, data or world size: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if rec is None:  # a data-parallel rank other than 0: rank 0 reports
        return 0
    m = rec["metrics"]
    print(f"{rec['status']}: final test {m['final_test_acc']} %, best val {m['best_val_acc']} % "
          f"(epoch {m['best_epoch']}, test there {m['test_acc_at_best_val']} %), "
          f"{rec['timings']['images_per_s']:.0f} img/s; dataset: {rec['dataset']['note']}; "
          f"record: {Path(out) / 'record.json'}")
    return 0 if rec["status"] == "finished" else 3


if __name__ == "__main__":
    sys.exit(main())
