"""Speed of original vs DWR backbones, measured in one run, next to the paper's claims.

For each (original, DWR) pair: median training-step time (forward + backward + SGD step) on
a random batch and median inference latency (batch 1 and a larger batch), after warm-up, on
one device with a fixed thread count, the pair's models interleaved so drifting machine load
hits both alike. Complexity (OPs, activations) comes from ``bnnlib.complexity``. The paper
claims activations / sqrt(s) (Table 3) and ~12.5% faster ImageNet training (Sec. 5.3).
Note: our binary convs run as float convs (no XNOR kernels), so timings measure the cost
of the shapes (OPs, activations), not of 1-bit arithmetic.
"""
from __future__ import annotations

import math
import platform
import statistics
import time

import torch
from torch import nn

from bnnlib import records
from bnnlib.complexity import count
from bnnlib.models import create_model, get_spec
from bnnlib.models.zoo import DWR_PAIRS

from .paper import CLAIMS

__all__ = ["measure_speed", "speed_rows", "speed_markdown", "DEFAULT_PAIRS"]

DEFAULT_PAIRS = ("resnet20", "vgg_small", "vgg11", "resnet18")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return out


def _step_fn(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def _infer_fn(model, x):
    def run():
        with torch.no_grad():
            model(x)
    return run


def measure_speed(pairs=DEFAULT_PAIRS, batch_size: int = 32, infer_batch: int = 64,
                  steps: int = 5, warmup: int = 2, device: str = "cpu", threads: int | None = 1,
                  seed: int = 0) -> dict:
    """One record with timings of every original and its DWR backbone (registered widths)."""
    for name in pairs:
        if name not in DWR_PAIRS:
            raise ValueError(f"pairs: got {name!r}; allowed: {sorted(DWR_PAIRS)}")
    for k, v in (("batch_size", batch_size), ("infer_batch", infer_batch), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{k}: got {v!r}; allowed: a positive int")
    if threads is not None:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    models = {}
    for orig in pairs:
        for name in (orig, DWR_PAIRS[orig][0]):
            torch.manual_seed(seed)
            spec = get_spec(name)
            m = create_model(spec=spec).to(dev)
            x = torch.randn(batch_size, 3, spec.input_size, spec.input_size, generator=gen).to(dev)
            y = torch.randint(0, spec.num_classes, (batch_size,), generator=gen).to(dev)
            xi = torch.randn(infer_batch, 3, spec.input_size, spec.input_size, generator=gen).to(dev)
            models[name] = {"train": _step_fn(m.train(), x, y), "model": m,
                            "x1": xi[:1], "xb": xi, "spec": spec}
    res = {name: {"train_step_s": [], "latency_b1_s": [], "latency_batch_s": []} for name in models}
    for phase, reps in (("warmup", warmup), ("measure", steps)):
        for name, m in models.items():  # interleaved: load drift hits every model alike
            t_tr = _time(m["train"], dev, reps)
            m["model"].eval()
            t_b1 = _time(_infer_fn(m["model"], m["x1"]), dev, reps)
            t_bb = _time(_infer_fn(m["model"], m["xb"]), dev, reps)
            m["model"].train()
            if phase == "measure":
                res[name]["train_step_s"] += t_tr
                res[name]["latency_b1_s"] += t_b1
                res[name]["latency_batch_s"] += t_bb
    out = {}
    for name, r in res.items():
        tot = count(models[name]["spec"]).totals
        out[name] = {**{k: statistics.median(v) for k, v in r.items()},
                     "raw": r, "ops": tot["ops"], "acts": tot["acts"], "params": tot["params"]}
    return {"kind": "dwr_speed", "pairs": {o: list(DWR_PAIRS[o]) for o in pairs}, "models": out,
            "settings": {"batch_size": batch_size, "infer_batch": infer_batch, "steps": steps,
                         "warmup": warmup, "device": device, "threads": threads, "seed": seed},
            "device": records.device_info(dev), "versions": records.versions(),
            "platform": platform.platform(), "claims": CLAIMS}


def speed_rows(rec: dict) -> list[dict]:
    """One row per pair: DWR / original ratios of time, activations and OPs, and 1/sqrt(s)."""
    rows = []
    for orig, (dwr_name, s) in rec["pairs"].items():
        a, b = rec["models"][orig], rec["models"][dwr_name]
        row = {"original": orig, "dwr": dwr_name, "s": s, "paper_acts_ratio": 1 / math.sqrt(s)}
        for k in ("train_step_s", "latency_b1_s", "latency_batch_s", "acts", "ops"):
            row[f"{k}_original"], row[f"{k}_dwr"] = a[k], b[k]
            row[f"{k}_ratio"] = b[k] / a[k]
        row["train_speedup_pct"] = 100 * (1 - row["train_step_s_ratio"])
        rows.append(row)
    return rows


def speed_markdown(rec: dict) -> str:
    """Markdown table of ``speed_rows`` with the settings and the paper's claims."""
    st, dev = rec["settings"], rec["device"]
    lines = ["### Speed: original vs DWR backbone (registered widths)", "",
             f"Device: {dev.get('name', st['device'])}, threads {st['threads']}, train batch "
             f"{st['batch_size']}, inference batch {st['infer_batch']}, median of {st['steps']} "
             "reps after warm-up. Binary convs run as float convs (no 1-bit kernels).",
             f"Paper: {rec['claims']['acts_ratio']}; {rec['claims']['imagenet_train_speedup']}.", "",
             "| original | DWR | s | acts ratio | paper 1/sqrt(s) | OPs ratio | train step ms "
             "(orig / DWR) | step speed-up % | latency b=1 ms (orig / DWR) | latency batch ms "
             "(orig / DWR) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in speed_rows(rec):
        ms = lambda k: f"{1e3 * r[k + '_original']:.1f} / {1e3 * r[k + '_dwr']:.1f}"
        lines.append(f"| {r['original']} | {r['dwr']} | {r['s']:g} | {r['acts_ratio']:.3f} | "
                     f"{r['paper_acts_ratio']:.3f} | {r['ops_ratio']:.3f} | {ms('train_step_s')} | "
                     f"{r['train_speedup_pct']:.1f} | {ms('latency_b1_s')} | "
                     f"{ms('latency_batch_s')} |")
    return "\n".join(lines) + "\n"
