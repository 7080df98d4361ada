"""Inference-speed study: do DWR backbones run faster on real XNOR-popcount kernels?

The paper's speed argument is that fewer activations mean faster inference (Sec. 4.3, after
Dollar et al. 2021). This study measures it: for every backbone (ResNet-20, VGG-Small,
VGG-11, ResNet-18 on CIFAR at 32x32, Bi-Real-18 at 224x224) it builds the original, the
naive reshape N[sqrt(s) w, d/s] (``bnnlib.reshape.naive_reshape``, s from
``bnnlib.models.zoo.DWR_PAIRS``; none for VGG-Small, whose s is 1) and the authors' DWR
backbone (the registered ``*_dwr`` model), exports each BNN to OpenVINO with every binary
conv on the bit-packed ``BinaryConvolution`` kernel (``bnnlib.deploy``), and times, at batch
1 and a fixed thread count: the BNN on OpenVINO, its FP twin on OpenVINO f32, and the FP twin
on PyTorch.

Protocol (a shared, noisy machine). The original, naive and DWR nets of one backbone and
the three engines are timed in one interleaved loop: ``rounds`` rounds, each running every
(net, engine) for ``iters`` timed inferences, the order rotating from round to round, so a
slow phase of the machine hits every net alike and DWR-vs-original compares round by
round. Untrained weights (latency does not depend on their values). The load average is
read before and after. A second compile with performance counters gives the per-layer
breakdown. One JSON record per (backbone, net, thread setting):
``results/<preset>/inference_speed/<backbone>__<kind>__t<threads>.json``.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from bnnlib import records as R
from bnnlib.complexity import count
from bnnlib.models import build, get_spec
from bnnlib.models.zoo import DWR_PAIRS
from bnnlib.reshape import naive_reshape
from bnnlib.spec import spec_hash, spec_to_dict

__all__ = ["BACKBONES", "KINDS", "ENGINES", "STUDY", "variant_specs", "thread_label",
           "resolve_threads", "measure_backbone", "run", "load", "record_path", "reprofile"]

STUDY = "inference_speed"
BACKBONES = ("resnet20", "vgg_small", "vgg11", "resnet18", "resnet18_imagenet")
KINDS = ("original", "naive", "dwr")
ENGINES = ("bnn_ov", "fp_ov", "fp_torch")
REPO = Path(__file__).resolve().parents[2]


def _check(backbones, kinds, threads) -> None:
    for b in backbones:
        if b not in BACKBONES:
            raise ValueError(f"backbones: got {b!r}; allowed: {list(BACKBONES)}")
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"kinds: got {k!r}; allowed: {list(KINDS)}")
    for t in threads:
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"threads: got {t!r}; allowed: ints >= 0 (0 = all logical CPUs)")


def variant_specs(backbone: str, kinds=KINDS) -> dict:
    """{kind: BNN spec}: original, naive reshape (when s > 1) and the authors' DWR backbone."""
    _check([backbone], kinds, [])
    dwr_name, s = DWR_PAIRS[backbone]
    orig = get_spec(backbone)
    out = {"original": orig, "naive": naive_reshape(orig, s) if s > 1 else None,
           "dwr": get_spec(dwr_name)}
    return {k: out[k] for k in kinds if out[k] is not None}


def model_name(backbone: str, kind: str) -> str:
    """Display name: the registered name, or naive(backbone, s=...)."""
    dwr_name, s = DWR_PAIRS[backbone]
    return {"original": backbone, "dwr": dwr_name, "naive": f"naive({backbone}, s={s:g})"}[kind]


def thread_label(t: int) -> str:
    """'1', '2', ... or 'all' for 0."""
    return "all" if t == 0 else str(t)


def resolve_threads(t: int) -> int:
    """0 -> the number of logical CPUs."""
    return (os.cpu_count() or 1) if t == 0 else t


def record_path(records_dir, backbone: str, kind: str, threads: int) -> Path:
    return Path(records_dir) / f"{backbone}__{kind}__t{thread_label(threads)}.json"


def _complexity(spec) -> dict:
    bnn = count(spec).totals
    fp = count(spec.replace(binary=False)).totals
    return {"ops": bnn["ops"], "flops": bnn["flops"], "bops": bnn["bops"], "acts": bnn["acts"],
            "params": bnn["params"], "size_bits": bnn["size_bits"], "fp_ops": fp["ops"],
            "fp_params": fp["params"]}


def _profile(ov_models, x, n_threads: int, runs: int) -> dict:
    """Performance-counter breakdown of the BNN and FP OpenVINO models (a separate compile)."""
    from bnnlib.deploy.check import compile_model, profile
    prof = {}
    for eng, ovm in zip(("bnn_ov", "fp_ov"), ov_models):
        p = profile(compile_model(ovm, n_threads, perf_count=True), x.numpy(), runs=runs)
        prof[eng] = {k: p[k] for k in ("by_category_us", "total_us", "by_category_min_us", "total_min_us",
                                       "runs", "nodes")}
    prof["loadavg"] = list(os.getloadavg())
    return prof


def reprofile(records_dir, runs: int = 30, seed: int = 0, log=print) -> int:
    """Redo the performance-counter breakdown of every record (timings untouched); returns
    the number of records updated."""
    from bnnlib.deploy.export import export
    from bnnlib.spec import spec_from_dict
    n = 0
    for f in sorted(Path(records_dir).glob("*.json")):
        r = R.read_json(f)
        if not isinstance(r, dict) or r.get("study") != STUDY:
            continue
        spec = spec_from_dict(r["spec"])
        torch.manual_seed(seed)
        bnn, fp = build(spec).eval(), build(spec.replace(binary=False)).eval()
        shape = tuple(r["input_shape"])
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        r["profile"] = _profile((export(bnn, shape)[0], export(fp, shape, name="fp")[0]), x,
                                r["threads_used"], runs)
        R.write_json_atomic(f, r)
        n += 1
        if log:
            log(f"reprofiled {f.name}")
    return n


def measure_backbone(backbone: str, kinds=KINDS, threads: int = 1, batch: int = 1, rounds: int = 10,
                     iters: int = 5, warmup: int = 3, profile_runs: int = 10, seed: int = 0,
                     preset: str | None = None) -> list[dict]:
    """Time every (net, engine) of one backbone in one interleaved loop; one record per net."""
    from bnnlib.deploy.bench import _ov_runner, _torch_runner, machine_info, summarize, time_variants
    from bnnlib.deploy.check import compile_model, kernel_names, verify_binary
    from bnnlib.deploy.export import export

    n_threads = resolve_threads(threads)
    specs = variant_specs(backbone, kinds)
    runners, meta = {}, {}
    for kind, spec in specs.items():
        torch.manual_seed(seed)
        bnn = build(spec).eval()
        fp = build(spec.replace(binary=False)).eval()
        shape = (batch, 3, spec.input_size, spec.input_size)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        ov_b, info = export(bnn, shape)
        ov_f, _ = export(fp, shape, name="fp")
        cb, cf = compile_model(ov_b, n_threads), compile_model(ov_f, n_threads)
        rows = verify_binary(cb, info)  # raises, naming the layer, if a binary conv fell back
        runners[f"{kind}/bnn_ov"] = _ov_runner(cb, x.numpy())
        runners[f"{kind}/fp_ov"] = _ov_runner(cf, x.numpy())
        runners[f"{kind}/fp_torch"] = _torch_runner(fp, x, n_threads)
        meta[kind] = {"spec": spec, "shape": shape, "rows": rows, "info": info, "x": x,
                      "kernels": {"bnn_ov": kernel_names(cb), "fp_ov": kernel_names(cf)},
                      "ov": (ov_b, ov_f)}
    load_before = list(os.getloadavg())
    t0 = time.perf_counter()
    timed = time_variants(runners, rounds=rounds, iters=iters, warmup=warmup)
    wall = time.perf_counter() - t0
    load_after = list(os.getloadavg())
    machine = machine_info()
    loop_id = f"{backbone}/t{thread_label(threads)}/{datetime.now(timezone.utc).isoformat(timespec='seconds')}"
    out = []
    for kind, m in meta.items():
        prof = _profile(m["ov"], m["x"], n_threads, profile_runs)
        lat = {}
        for eng in ENGINES:
            t = timed[f"{kind}/{eng}"]
            lat[eng] = {**summarize(t), "round_medians_ms": t["round_medians_ms"]}
        spec = m["spec"]
        rec = {"study": STUDY, "preset": preset, "backbone": backbone, "kind": kind,
               "model": model_name(backbone, kind), "spec": spec_to_dict(spec), "spec_hash": spec_hash(spec),
               "threads": threads, "threads_label": thread_label(threads), "threads_used": n_threads,
               "batch": batch, "input_shape": list(m["shape"]),
               "protocol": {"rounds": rounds, "iters": iters, "warmup": warmup, "order": "rotating",
                            "interleaved_with": [f"{k}/{e}" for k in meta for e in ENGINES],
                            "weights": f"random init (seed {seed})", "loop_wall_s": wall,
                            "loop_id": loop_id},
               "latency_ms": lat,
               "bnn_over_fp_ov": lat["bnn_ov"]["median_ms"] / lat["fp_ov"]["median_ms"],
               "bnn_over_fp_torch": lat["bnn_ov"]["median_ms"] / lat["fp_torch"]["median_ms"],
               "complexity": _complexity(spec), "profile": prof, "kernels": m["kernels"],
               "binary_layers": len(m["rows"]),
               "channel_padded": [r["layer"] for r in m["rows"] if r["channel_pad"]],
               "fusion_guarded": list(m["info"].fusion_guarded),
               "machine": machine, "loadavg_before": load_before, "loadavg_after": load_after,
               "versions": R.versions(), "git": R.git_commit(REPO),
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        out.append(rec)
    return out


def load(records_dir) -> list[dict]:
    """Every record of this study under ``records_dir`` (sorted by file name)."""
    d = Path(records_dir)
    recs = []
    for f in sorted(d.glob("*.json")) if d.is_dir() else ():
        r = R.read_json(f)
        if isinstance(r, dict) and r.get("study") == STUDY:
            recs.append(r)
    return recs


def run(backbones=BACKBONES, kinds=KINDS, threads=(1, 0), batch: int = 1, rounds: int = 10,
        iters: int = 5, warmup: int = 3, profile_runs: int = 10, records_dir=None, preset: str = "quick",
        remeasure: bool = False, log=print) -> list[dict]:
    """Measure what is missing (or everything with ``remeasure``) and return all records of
    the requested (backbone, kind, threads) cells. A cell whose record exists is re-read,
    so a fresh clone re-plots the committed numbers instead of timing a different machine."""
    _check(backbones, kinds, threads)
    records_dir = Path(records_dir or REPO / "results" / preset / STUDY)
    out = []
    for t in threads:
        for b in backbones:
            have = [k for k in variant_specs(b, kinds) if record_path(records_dir, b, k, t).is_file()]
            todo = list(variant_specs(b, kinds))
            if remeasure or len(have) < len(todo):  # all nets of a backbone share one loop
                if log:
                    log(f"[{b}, threads={thread_label(t)}] timing {todo} ...")
                recs = measure_backbone(b, todo, t, batch, rounds, iters, warmup, profile_runs,
                                        preset=preset)
                for r in recs:
                    R.write_json_atomic(record_path(records_dir, b, r["kind"], t), r)
            for k in variant_specs(b, kinds):
                out.append(R.read_json(record_path(records_dir, b, k, t)))
    return out
