"""CPU trainer options, measured as ratios against eager in the same run (issue 12).

For BNN and FP ResNet-20 at 32x32 and 16x16 (the cpu regime), one training step of batch 128
(normalise, forward, cross-entropy, backward, SGD) is timed in each mode:

- ``eager``: contiguous NCHW, no compilation (the baseline of every ratio);
- ``channels_last``: the same in channels-last memory format;
- ``compile``: ``torch.compile`` (default mode) on channels-last; its one-time compile cost is
  reported separately and is worth paying only for runs of more than a few epochs.

Rounds are interleaved (every mode once per round, order rotated) so load changes on a shared
machine hit all modes alike; per mode the minimum and median over rounds are reported, as
process CPU time per step with one thread (what an idle core needs) and as wall time. Every
row is extrapolated to a 45,000-image epoch (351 steps) and says so.

    OMP_NUM_THREADS=1 python benchmarks/cpu_trainer.py [--rounds 5] [--steps 3] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from bnnlib import records
from bnnlib.data import normalize
from bnnlib.train import build_model
from bnnlib.train_config import TrainConfig

STEPS_PER_EPOCH = 45_000 // 128
MODES = ("eager", "channels_last", "compile")


def _cpu_flags() -> list[str]:
    """The SIMD flags that decide which kernels run (avx2, avx512*, amx*)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split(":", 1)[1].split()
                              if f.startswith(("avx", "amx", "fma", "f16c")))
    except OSError:
        pass
    return []


def _setup(binary: bool, res: int, mode: str):
    """(step function, compile seconds) for one configuration."""
    cfg = TrainConfig(model="resnet20", binary=binary, dataset="synthetic", resolution=res)
    cl = mode != "eager"
    model = build_model(cfg).to(memory_format=torch.channels_last if cl else torch.contiguous_format)
    torch.compiler.reset()
    fwd = torch.compile(model) if mode == "compile" else model
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (128, 3, res, res), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)

    def step():
        loss = F.cross_entropy(fwd(normalize(x, channels_last=cl)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t0 = time.perf_counter()
    step()  # first step: compilation for 'compile', allocator warm-up otherwise
    return step, time.perf_counter() - t0


def run(rounds: int, steps: int, sizes, precisions) -> list[dict]:
    """Interleaved timings of every (precision, size, mode)."""
    rows = []
    for binary in precisions:
        for res in sizes:
            fns = {m: _setup(binary, res, m) for m in MODES}
            cpu = {m: [] for m in MODES}
            wall = {m: [] for m in MODES}
            for r in range(rounds):
                for m in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
                    c0, w0 = time.process_time(), time.perf_counter()
                    for _ in range(steps):
                        fns[m][0]()
                    cpu[m].append((time.process_time() - c0) / steps)
                    wall[m].append((time.perf_counter() - w0) / steps)
            base = min(cpu["eager"])
            for m in MODES:
                rows.append({"net": "BNN" if binary else "FP", "resolution": res, "mode": m,
                             "cpu_ms_min": 1e3 * min(cpu[m]), "cpu_ms_median": 1e3 * statistics.median(cpu[m]),
                             "wall_ms_median": 1e3 * statistics.median(wall[m]),
                             "speedup_vs_eager_cpu_min": base / min(cpu[m]),
                             "epoch_s_at_cpu_min": min(cpu[m]) * STEPS_PER_EPOCH,
                             "first_step_s": fns[m][1]})
    return rows


def main(argv=None) -> int:
    """CLI; writes the JSON report and prints a Markdown table."""
    p = argparse.ArgumentParser(prog="python benchmarks/cpu_trainer.py", description=__doc__.split("\n\n")[0],
                                epilog="example: OMP_NUM_THREADS=1 python benchmarks/cpu_trainer.py --rounds 5")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per mode (default 5)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per round (default 3)")
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32], help="input sides in px (default 16 32)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default="benchmarks/results/cpu_trainer.json", help="JSON report path")
    a = p.parse_args(argv)
    if a.rounds < 1 or a.steps < 1:
        print(f"error: rounds/steps: got {a.rounds}/{a.steps}; allowed: ints >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()
    rows = run(a.rounds, a.steps, a.sizes, (True, False))
    rep = {"rows": rows, "threads": a.threads, "rounds": a.rounds, "steps": a.steps, "batch": 128,
           "epoch_images": 45_000, "cpu": records.device_info("cpu")["cpu"], "cpu_flags": _cpu_flags(),
           "loadavg_before": load0, "loadavg_after": os.getloadavg(), "versions": records.versions(),
           "git_commit": records.git_commit()["commit"],
           "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    records.write_json_atomic(a.out, rep)
    print(f"CPU: {rep['cpu']} ({', '.join(rep['cpu_flags'])}); threads {a.threads}; load {load0}")
    print("| net | px | mode | CPU ms/step min | median | wall ms median | x eager | s/45k-epoch | first step s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['resolution']} | {r['mode']} | {r['cpu_ms_min']:.0f} | "
              f"{r['cpu_ms_median']:.0f} | {r['wall_ms_median']:.0f} | {r['speedup_vs_eager_cpu_min']:.2f} | "
              f"{r['epoch_s_at_cpu_min']:.0f} | {r['first_step_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
