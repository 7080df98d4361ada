"""GPU acceptance check (issue 11): one command on a GPU machine, at most about 8 minutes.

    python benchmarks/gpu_check.py                 # on the GPU machine, from the repo root
    python benchmarks/gpu_check.py --dry-run       # CPU: the same steps at toy size (wiring check)

Steps (each with its own time limit; a failing step is reported and the others go on):
1. ``env``: GPU, driver, torch/CUDA/cuDNN versions, backend flags.
2. ``data``: CIFAR-10 from ``$BNNLIB_DATA``; else rebuilt from the 18 MB JPEG pack in
   ``../shared/data/cifar10-jpeg`` (copied into the git-ignored ``.gpu_check/``, ~15 s), so
   the repo works when carried alone next to that pack; else synthetic data (said so).
3. ``cuda_tests``: ``pytest -m cuda`` (bit-identical deterministic resume, compile reset, ...).
4. ``throughput``: ``benchmarks/train_throughput.py`` on CUDA, FP and BNN ResNet-20: eager fp32,
   eager bf16, compiled + CUDA graphs + bf16, a plain reference loop, 16 packed nets.
5. ``smoke``: a 2-epoch run of each study's paper preset (a few of its runs, through the
   same sweep executors the study uses), measured seconds per epoch next to ``analysis.plan``'s
   estimate for the same configs.
6. ``resume``: CUDA kill-and-resume bit-identity of a ResNet-20 BNN (deterministic=True).

Writes ``benchmarks/results/gpu_check_<gpu>_<utc>.json`` and ``.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = REPO / ".gpu_check"  # git-ignored: rebuilt data, scratch records
JPEG_PACK = REPO.parent / "shared" / "data" / "cifar10-jpeg"
STEPS = ("env", "data", "cuda_tests", "throughput", "smoke", "resume")


def _run(cmd: list[str], timeout: float, env=None) -> dict:
    """A subprocess with a time limit: rc, seconds and the last lines of its output."""
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})})
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else str(e.stdout or "")
    return {"cmd": " ".join(cmd), "rc": rc, "seconds": round(time.perf_counter() - t, 1),
            "tail": "\n".join(out.strip().splitlines()[-15:])}


def step_env(a) -> dict:
    import torch

    from bnnlib import records
    dev = "cuda" if torch.cuda.is_available() and not a.dry_run else "cpu"
    smi = shutil.which("nvidia-smi")
    return {"device": records.device_info(dev), "versions": records.versions(),
            "git": records.git_commit(), "cuda_available": torch.cuda.is_available(),
            "nvidia_smi": _run([smi, "--query-gpu=name,driver_version,memory.total",
                                "--format=csv,noheader"], 20)["tail"] if smi else None}


def step_data(a) -> dict:
    """Point BNNLIB_DATA at CIFAR-10 (existing, or rebuilt from the JPEG pack)."""
    have = lambda root: root and (Path(root) / "cifar-10-batches-py" / "data_batch_1").is_file()
    if have(os.environ.get("BNNLIB_DATA")):
        return {"dataset": "cifar10", "root": os.environ["BNNLIB_DATA"], "how": "BNNLIB_DATA"}
    root = WORK / "data"
    if have(root):
        os.environ["BNNLIB_DATA"] = str(root)
        return {"dataset": "cifar10", "root": str(root), "how": "rebuilt earlier from the JPEG pack"}
    if not (JPEG_PACK / "to_batches.py").is_file():
        return {"dataset": "synthetic", "root": None, "how": f"no BNNLIB_DATA and no pack at {JPEG_PACK}"}
    if a.dry_run:
        return {"dataset": "synthetic", "root": None, "how": f"dry run: would rebuild from {JPEG_PACK}"}
    pack = WORK / "cifar10-jpeg"
    shutil.copytree(JPEG_PACK, pack, dirs_exist_ok=True)
    r = _run([sys.executable, str(pack / "to_batches.py"), str(root)], 300)
    if have(root):
        os.environ["BNNLIB_DATA"] = str(root)
        return {"dataset": "cifar10", "root": str(root), "how": "rebuilt from the JPEG pack", "rebuild": r}
    return {"dataset": "synthetic", "root": None, "how": "rebuilding from the JPEG pack failed", "rebuild": r}


def step_cuda_tests(a) -> dict:
    return _run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py"], 240 if not a.dry_run else 120)


def step_throughput(a) -> dict:
    out = WORK / "throughput.json"
    args = (["--device", "cpu", "--steps", "1", "--warmup", "1", "--models", "resnet20", "--packed-k", "2"]
            if a.dry_run else ["--device", "cuda", "--steps", "20", "--warmup", "5", "--models",
                               "resnet20", "--packed-k", "16"])
    r = _run([sys.executable, "benchmarks/train_throughput.py", *args, "--out", str(out)], 240)
    if out.is_file():
        data = json.loads(out.read_text())
        r.update(rows=data["rows"], ratios=data["ratios"])
    return r


def _epoch_s(rec: dict) -> float | None:
    eps = (rec.get("metrics") or {}).get("epochs") or []
    return round(min(e["time_s"] for e in eps), 2) if eps else None  # epoch 1 includes compiling


def _smoke_gain_surface(a, root: Path, dataset: str) -> list[dict]:
    from analysis import cost, sweep
    from analysis.gain_surface import study as gs
    from analysis.notebooks import resolve
    p = {**resolve("gain_surface", "paper"), "dataset": dataset}
    cfgs = gs.study_configs(p)
    pick = [cfgs[0], max(cfgs, key=lambda c: cost.epoch_seconds(c))]
    pick = [c.replace(epochs=2, **_toy(a)) for c in pick]
    recs = sweep.run_sweep(pick, root / "gain_surface")
    return [_smoke_row("gain_surface", c, r) for c, r in zip(pick, recs)]


def _smoke_dwr(a, root: Path, dataset: str) -> list[dict]:
    from analysis.dwr import study as DS
    from analysis.notebooks import resolve
    from bnnlib.train_config import TrainConfig
    p = resolve("dwr_tables", "paper")
    P = {k: v for k, v in p.items() if k in DS.PRESET_KEYS}
    P.update(eval_test="end", progress=False, dataset=dataset, epochs=2, pretrain_epochs=1,
             seeds=[0], **_toy(a))
    if a.dry_run:
        P["calib_images"] = 24  # the toy validation split has 64 images
    jobs = [j for j in DS.jobs("table4", P) if j["key"] in ("original", "dwr_3")]
    DS.run_jobs(jobs, P, root / "dwr")
    runs = [json.loads(q.read_text()) for q in sorted((root / "dwr" / "runs").glob("*/record.json"))]
    return [_smoke_row("dwr", TrainConfig.from_dict(r["config"]), r) for r in runs]


def _smoke_error_accumulation(a, root: Path, dataset: str) -> list[dict]:
    from analysis.error_accumulation import study as EA
    import torch
    c = EA.make_config(backbone="resnet", blocks=3, width=16, binarizer="approx_sign", seed=0,
                       trained_epochs=2, dataset=dataset, batch_size=128, batches=4,
                       train_subset=200 if a.dry_run else None)
    dev = "cuda" if torch.cuda.is_available() and not a.dry_run else "cpu"
    t = time.perf_counter()
    rec = EA.run_study([c], root / "error_accumulation", device=dev, log=None)[0]
    from analysis import cost
    return [{"study": "error_accumulation", "status": rec.get("status"), "run": "resnet n=3 w=16 2 epochs",
             "wall_s": round(time.perf_counter() - t, 1), "epoch_s": _epoch_s(rec.get("training") or {}),
             "plan_epoch_s": round(cost.epoch_seconds(EA.train_config(c)), 2)}]


def _toy(a) -> dict:
    return {"train_subset": 256, "val_size": 64, "device": "cpu", "threads": 1,
            "eval_batch_size": 100} if a.dry_run else {}


def _smoke_row(study: str, cfg, rec: dict) -> dict:
    from analysis import cost
    return {"study": study, "status": rec.get("status"), "run": cfg.tag or cfg.model,
            "binary": rec.get("config", {}).get("binary"), "epoch_s": _epoch_s(rec),
            "plan_epoch_s": round(cost.epoch_seconds(cfg), 2), "error": rec.get("error")}


def step_smoke(a) -> dict:
    """A 2-epoch run of each study's paper preset (a few runs each)."""
    dataset = "cifar10" if os.environ.get("BNNLIB_DATA") else "synthetic"
    root = Path(tempfile.mkdtemp(prefix="smoke_", dir=WORK))
    rows, errors = [], {}
    for name, fn in (("gain_surface", _smoke_gain_surface), ("dwr", _smoke_dwr),
                     ("error_accumulation", _smoke_error_accumulation)):
        t = time.perf_counter()
        try:
            rows += fn(a, root, dataset)
        except Exception as e:  # report and go on with the next study
            errors[name] = f"{type(e).__name__}: {e}"
        errors.setdefault(f"{name}_s", round(time.perf_counter() - t, 1))
    return {"dataset": dataset, "rows": rows, "errors": {k: v for k, v in errors.items() if not k.endswith("_s")},
            "seconds": {k[:-2]: v for k, v in errors.items() if k.endswith("_s")}}


def step_resume(a) -> dict:
    """Kill after epoch 1 and resume: the weights must equal an uninterrupted run's."""
    import torch

    from bnnlib.train import StopTraining, TrainConfig, train
    dev = "cuda" if torch.cuda.is_available() and not a.dry_run else "cpu"
    ds = "cifar10" if os.environ.get("BNNLIB_DATA") else "synthetic"
    toy = {"train_subset": 128, "val_size": 32, "batch_size": 64, "threads": 1, "width_mult": 0.25,
           "synthetic_train": 512, "synthetic_test": 64} if a.dry_run else \
        {"train_subset": 5000, "val_size": 1000}
    c = TrainConfig(model="resnet20", dataset=ds, epochs=2, device=dev, deterministic=True,
                    eval_test="end", **toy)
    root = Path(tempfile.mkdtemp(prefix="resume_", dir=WORK))
    ref = train(c, root / "ref")
    try:
        train(c.replace(stop_after_epoch=1), root / "r")
    except StopTraining:
        pass
    res = train(c, root / "r", resume=True)
    return {"device": dev, "identical": res["weights_sha256"] == ref["weights_sha256"],
            "weights_sha256": [ref["weights_sha256"], res["weights_sha256"]],
            "backends": ref["device"]["backends"]}


def markdown(rep: dict) -> str:
    """The report as Markdown."""
    env = rep["steps"].get("env", {}).get("result", {})
    dev = env.get("device", {})
    lines = [f"# GPU check {rep['created_utc']}", "",
             f"- device: {dev.get('name')} ({dev.get('type')}); torch {env.get('versions', {}).get('torch')}, "
             f"CUDA {dev.get('cuda')}, cuDNN {dev.get('backends', {}).get('cudnn_version')}; dry run: {rep['dry_run']}",
             f"- commit: {env.get('git', {}).get('commit')} (dirty: {env.get('git', {}).get('dirty')})",
             f"- total: {rep['total_s']:.0f} s", ""]
    for name, st in rep["steps"].items():
        r = st.get("result") or {}
        lines.append(f"## {name}: {st['status']} ({st['seconds']:.0f} s)")
        if st.get("error"):
            lines.append(f"    {st['error']}")
        if name == "data":
            lines.append(f"{r.get('dataset')}: {r.get('how')} (JPEG-rebuilt CIFAR-10: accuracies are on that copy)")
        if name in ("cuda_tests",) and r:
            lines += ["```", r.get("tail", ""), "```"]
        if name == "throughput":
            lines += ["| net | loop | mode | dtype | ms/step | img/s | s/epoch |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {'BNN' if x['binary'] else 'FP'} {x['model']} | {x['loop']} | {x['mode']} | {x['dtype']} "
                      f"| {x['step_ms']:.1f} | {x['images_per_s']:.0f} | {x['epoch_s']:.2f} |" for x in r.get("rows", [])]
            lines += [f"- {x}" for x in r.get("ratios", [])]
        if name == "smoke":
            lines += ["| study | run | status | measured s/epoch (best of 2) | plan's estimate s/epoch |",
                      "|---|---|---|---|---|"]
            lines += [f"| {x['study']} | {x['run']} | {x['status']} | {x['epoch_s']} | {x['plan_epoch_s']} |"
                      for x in r.get("rows", [])]
            lines += [f"- {k}: {v}" for k, v in r.get("errors", {}).items()]
        if name == "resume":
            lines.append(f"bit-identical after kill + resume on {r.get('device')}: {r.get('identical')}")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: checks the wiring only")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {STEPS}")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    a = ap.parse_args(argv)
    steps = [s for s in a.steps.split(",") if s]
    bad = [s for s in steps if s not in STEPS]
    if bad:
        print(f"error: steps: got {bad}; allowed: {list(STEPS)}", file=sys.stderr)
        return 2
    WORK.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    rep = {"created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dry_run": a.dry_run,
           "steps": {}}
    for s in steps:
        t = time.perf_counter()
        print(f"[gpu_check] {s} ...", file=sys.stderr, flush=True)
        try:
            res = globals()[f"step_{s}"](a)
            ok = res.get("rc", 0) == 0 and res.get("identical", True) is not False and not res.get("errors")
            rep["steps"][s] = {"status": "ok" if ok else "FAILED", "result": res}
        except Exception as e:  # one failing step must not hide the others
            rep["steps"][s] = {"status": "FAILED", "error": f"{type(e).__name__}: {e}", "result": None}
        rep["steps"][s]["seconds"] = round(time.perf_counter() - t, 1)
    rep["total_s"] = round(time.perf_counter() - t0, 1)
    name = (rep["steps"].get("env", {}).get("result") or {}).get("device", {}).get("name", "unknown")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] + ("_dryrun" if a.dry_run else "")
    stamp = rep["created_utc"].replace(":", "").replace("-", "")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    from bnnlib import records
    records.write_json_atomic(out / f"gpu_check_{slug}_{stamp}.json", rep)
    (out / f"gpu_check_{slug}_{stamp}.md").write_text(markdown(rep) + "\n")
    print(markdown(rep))
    print(f"report: {out / f'gpu_check_{slug}_{stamp}.md'}", file=sys.stderr)
    return 0 if all(v["status"] == "ok" for v in rep["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
