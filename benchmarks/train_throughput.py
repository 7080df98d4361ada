"""Training throughput: images/s and seconds per CIFAR-10 epoch (50,000 images).

Measures the trainer's own epoch loop (``bnnlib.train._train_epoch``: uint8 data on the device,
batched crop+flip, normalise, forward, backward, SGD) for FP and BNN ResNet-20 and its DWR
reshape, and, in the same run and on the same machine, a plain reference loop: a DataLoader
over a TensorDataset, per-sample crop/flip in Python on the CPU, eager fp32. Both run on random
uint8 images (the pixel values do not change the speed). Each row times ``--steps`` steps after
``--warmup`` steps and extrapolates to a 50,000-image epoch; it says so in the output.

    python benchmarks/train_throughput.py [--threads 2] [--steps 8] [--device cpu|cuda|all]

Writes a JSON file of all rows (``--out``) and prints a markdown table plus the ratios
BNN/FP step time and ours/reference step time.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from bnnlib import records
from bnnlib.data import Splits, normalize
from bnnlib.models import create_model
from bnnlib.train import TrainConfig, make_optimizer, _train_epoch, build_model
from bnnlib.train_config import resolved_hparams

EPOCH_IMAGES = 50_000


def _fake_data(n: int, device) -> Splits:
    """``n`` random uint8 training images on ``device`` (no val/test)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    e = torch.zeros(0, dtype=torch.long)
    return Splits(x, y, x[:0], e, x[:0], e, {}).to(device)


def _sync(device):
    """Wait for queued CUDA work so timers see it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ours(cfg: TrainConfig, steps: int, warmup: int, device) -> float:
    """Seconds per step of the trainer's own epoch loop."""
    bs = resolved_hparams(cfg)["batch_size"]
    model = build_model(cfg).to(device, memory_format=torch.channels_last if cfg.channels_last
                                else torch.preserve_format)
    fwd = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
    opt = make_optimizer(model, resolved_hparams(cfg), 1e-4)
    gen = torch.Generator(device=device).manual_seed(0)
    ctx = {"model": model, "fwd": fwd, "opt": opt, "gen": gen, "device": device, "bs": bs,
           "quiet": True, "teacher": None,
           "phase": {"lr": 0.1, "step0": 0, "steps": 10 * (steps + warmup), "warmup": 0}}
    st = {"epoch": 0, "step": 0, "diverged": None}
    ctx["data"] = _fake_data(warmup * bs, device)
    _train_epoch(st, cfg, ctx)
    ctx["data"] = _fake_data(steps * bs, device)
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    _train_epoch(st, cfg, ctx)  # ends with a host read of the loss sum: includes all work
    return (time.perf_counter() - t) / steps, (time.process_time() - c) / steps


def time_packed(cfg: TrainConfig, k: int, steps: int, warmup: int, device) -> tuple:
    """Seconds per step of ``k`` nets packed into one (bnnlib.packed), all k nets together."""
    from bnnlib import packed
    bs = resolved_hparams(cfg)["batch_size"]
    cfgs = [cfg.replace(seed=s) for s in range(k)]
    net = packed.pack_models([build_model(c) for c in cfgs]).to(device)
    fwd = torch.compile(net, mode=cfg.compile_mode) if cfg.compile else net
    ctx = {"net": fwd, "opt": make_optimizer(net, resolved_hparams(cfg), 1e-4), "k": k, "bs": bs,
           "gens": [torch.Generator(device=device).manual_seed(s) for s in range(k)],
           "quiet": True, "lr": 0.1, "total_steps": 10 * (steps + warmup)}
    sts = [{"epoch": 0, "step": 0, "diverged": None} for _ in range(k)]
    ctx["data"] = _fake_data(warmup * bs, device)
    packed._epoch(sts, cfgs, ctx)
    ctx["data"] = _fake_data(steps * bs, device)
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    packed._epoch(sts, cfgs, ctx)  # ends with host reads of the per-net sums
    return (time.perf_counter() - t) / steps, (time.process_time() - c) / steps


def _crop_flip_per_sample(batch):
    """The usual plain-PyTorch augmentation: a Python loop over the images of a batch."""
    xs, ys = zip(*batch)
    out = []
    for x in xs:
        x = F.pad(x, (4, 4, 4, 4))
        i, j = torch.randint(0, 9, (2,)).tolist()
        x = x[:, i:i + 32, j:j + 32]
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        out.append(x)
    return torch.stack(out), torch.stack(ys)


def time_reference(cfg: TrainConfig, steps: int, warmup: int, device) -> float:
    """Seconds per step of a plain loop: DataLoader + per-sample CPU augmentation, eager fp32."""
    from torch.utils.data import DataLoader, TensorDataset
    bs = resolved_hparams(cfg)["batch_size"]
    torch.manual_seed(0)
    model = create_model(spec=cfg.build_spec()).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    d = _fake_data((steps + warmup) * bs, "cpu")
    loader = DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=bs, shuffle=True,
                        drop_last=True, collate_fn=_crop_flip_per_sample)
    model.train()
    t = None
    for i, (x, y) in enumerate(loader):
        if i == warmup:
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
        x, y = normalize(x.to(device)), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # what a logging loop does each step
    _sync(device)
    return (time.perf_counter() - t) / steps, (time.process_time() - c) / steps


def _row(device, model, binary, loop, mode, dtype, bs, threads, times, steps):
    """One JSON row: wall and CPU step time, images/s, extrapolated epoch time."""
    sec, cpu = times
    k = int(loop[6:]) if loop.startswith("packed") else 1  # a packed step trains k batches
    return {"nets": k, "cpu_step_ms": 1000 * cpu, "cpu_images_per_s": k * bs / cpu, "device": str(device), "device_name": records.device_info(device)["name"],
            "model": model, "binary": binary, "loop": loop, "mode": mode, "dtype": dtype,
            "batch_size": bs, "threads": threads, "step_ms": 1000 * sec,
            "images_per_s": k * bs / sec, "epoch_s": EPOCH_IMAGES / bs * sec, "measured_steps": steps}


def variants(device, packed_k: int) -> list[tuple[str, bool, str, str]]:
    """(loop, compile, mode-name, dtype) combinations worth timing on this device."""
    if device.type == "cuda":
        v = [("ours", False, "eager", "fp32"), ("ours", False, "eager", "bf16"),
             ("ours", True, "compiled", "bf16"), ("reference", False, "eager", "fp32")]
        k = packed_k if packed_k is not None else 16
        return v + ([(f"packed{k}", True, "compiled", "bf16")] if k > 1 else [])
    v = [("ours", False, "eager", "fp32"), ("reference", False, "eager", "fp32")]
    return v + ([(f"packed{packed_k}", False, "eager", "fp32")] if packed_k and packed_k > 1 else [])


def run(args) -> list[dict]:
    """Time every (device, model, FP/BNN, variant) row."""
    rows = []
    devs = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for dname in devs:
        if dname == "cuda" and not torch.cuda.is_available():
            print("no CUDA device: GPU rows skipped", file=sys.stderr)
            continue
        dev = torch.device(dname)
        for model in args.models:
            for binary in (False, True):
                for loop, comp, mode, dtype in variants(dev, args.packed_k):
                    if loop != "ours" and model not in args.reference_models:
                        continue
                    cfg = TrainConfig(model=model, binary=binary, dataset="synthetic",
                                      batch_size=args.batch_size, device=dname, compile=comp,
                                      compile_mode="reduce-overhead" if comp else "default",
                                      amp="bf16" if dtype == "bf16" else "none")
                    if loop.startswith("packed"):
                        sec = time_packed(cfg, int(loop[6:]), args.steps, args.warmup, dev)
                    else:
                        fn = time_ours if loop == "ours" else time_reference
                        sec = fn(cfg, args.steps, args.warmup, dev)
                    rows.append(_row(dev, model, binary, loop, mode, dtype, args.batch_size,
                                     torch.get_num_threads(), sec, args.steps))
                    print(_fmt_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _fmt_row(r) -> str:
    """A row as a markdown table line."""
    return (f"| {r['device_name'][:24]} | {r['model']} | {'BNN' if r['binary'] else 'FP'} | "
            f"{r['loop']} | {r['mode']} | {r['dtype']} | {r['threads']} | {r['step_ms']:.0f} | "
            f"{r['images_per_s']:.0f} | {r['epoch_s']:.1f} | {r['cpu_step_ms']:.0f} | "
            f"{r['cpu_images_per_s']:.0f} |")


def ratios(rows) -> list[str]:
    """BNN/FP and ours/reference step-time ratios, pairing rows measured in this run
    (CPU rows compare process CPU time, GPU rows wall-clock time)."""
    key = lambda r: (r["device"], r["model"], r["binary"], r["loop"], r["mode"], r["dtype"])
    by = {key(r): r["cpu_step_ms" if r["device"] == "cpu" else "step_ms"] for r in rows}
    out = []
    for (dev, model, binary, loop, mode, dtype), ms in by.items():
        fp = by.get((dev, model, False, loop, mode, dtype))
        if binary and fp:
            out.append(f"{dev} {model} {loop} {mode} {dtype}: BNN/FP step time = {ms / fp:.2f}")
        if loop.startswith("packed"):
            one = by.get((dev, model, binary, "ours", "compiled" if mode == "compiled" else "eager", dtype))
            if one:
                k = int(loop[6:])
                out.append(f"{dev} {model} {'BNN' if binary else 'FP'} {mode} {dtype}: packed "
                           f"{k} nets = {k * one / ms:.1f}x the runs per hour of one at a time")
        ref = by.get((dev, model, binary, "reference", "eager", "fp32"))
        if loop == "ours" and ref:
            out.append(f"{dev} {model} {'BNN' if binary else 'FP'} {mode} {dtype}: "
                       f"ours/reference step time = {ms / ref:.2f}")
    return out


def main(argv=None) -> int:
    """CLI: time every row, print the table and ratios, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=6, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--models", nargs="+", default=["resnet20", "resnet20_dwr"])
    p.add_argument("--reference-models", nargs="+", default=["resnet20"],
                   help="models that also get the reference-loop and packed rows")
    p.add_argument("--packed-k", type=int, default=None,
                   help="nets per packed row (default: 16 on CUDA, none on CPU)")
    p.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args)
    print(f"Each row: {args.steps} timed steps after {args.warmup} warm-up steps, batch "
          f"{args.batch_size}, extrapolated to a {EPOCH_IMAGES}-image epoch; threads = "
          f"{torch.get_num_threads()}. packedK rows train K nets per step: their images/s "
          f"count all K nets, their s/epoch is one epoch of all K nets.")
    print("Wall-clock columns first; then process CPU time per step and the images/s it implies "
          "(with 1 thread this is what an idle core would give, so it is robust to a shared "
          "machine; with more threads it sums over threads).")
    print("| device | model | net | loop | mode | dtype | threads | ms/step | img/s | s/epoch "
          "| CPU ms/step | img/s per CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(_fmt_row(r))
    for line in ratios(rows):
        print("- " + line)
    records.write_json_atomic(args.out, {"rows": rows, "ratios": ratios(rows), "args": vars(args),
                                         "versions": records.versions(),
                                         "git_commit": records.git_commit()["commit"],
                                         "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
