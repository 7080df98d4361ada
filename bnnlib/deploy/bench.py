"""Latency of a BNN on OpenVINO's binary kernels against its FP twin (OpenVINO f32, PyTorch).

Protocol (a shared, noisy machine): one static input, a fixed thread count, warm-up, then
``rounds`` rounds; in each round every variant runs ``iters`` timed inferences, and the
order of the variants rotates from round to round, so slow phases of the machine hit every
variant alike. Reported per variant: min and median over all timed inferences, the
inter-quartile range, and the median of each round (its spread across rounds is the
honest error bar). The load average is read before and after; CPU model, ISA flags and the
kernel names that ran are recorded with the numbers.
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch
from torch import nn

from .check import compile_model, kernel_names, verify_binary
from .export import export, require_openvino

__all__ = ["VARIANTS", "machine_info", "kernel_names", "time_variants", "bench", "summarize"]

VARIANTS = ("bnn_ov", "fp_ov", "fp_torch")
_FLAGS = ("popcnt", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
          "avx512_vpopcntdq", "avx512_bitalg", "avx_vnni", "amx_tile", "amx_bf16")


def machine_info() -> dict:
    """CPU model, the ISA flags that matter for binary kernels, cores, load, versions."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model is None:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    ov, _ = require_openvino()
    try:
        ov_name = ov.Core().get_property("CPU", "FULL_DEVICE_NAME")
    except Exception:  # pragma: no cover
        ov_name = None
    return {"cpu_model": model, "ov_device_name": ov_name, "isa_flags": sorted(f for f in _FLAGS if f in flags),
            "logical_cpus": os.cpu_count(), "loadavg": list(os.getloadavg()),
            "openvino": ov.get_version(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def _ov_runner(compiled, x: np.ndarray):
    ov, _ = require_openvino()
    req = compiled.create_infer_request()
    req.set_input_tensor(ov.Tensor(np.ascontiguousarray(x)))
    return req.infer


def _torch_runner(model: nn.Module, x: torch.Tensor, threads: int):
    def run():
        prev = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                model(x)
        finally:
            torch.set_num_threads(prev)
    return run


def time_variants(runners: dict, rounds: int = 10, iters: int = 10, warmup: int = 3) -> dict:
    """Interleaved timing of zero-argument callables; per variant all samples (ms) and the
    median of each round."""
    for name, v in (("rounds", rounds), ("iters", iters), ("warmup", warmup)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "warmup" else 1):
            raise ValueError(f"{name}: got {v!r}; allowed: a positive int")
    names = list(runners)
    for n in names:
        for _ in range(warmup):
            runners[n]()
    samples = {n: [] for n in names}
    per_round = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            fn, got = runners[n], []
            for _ in range(iters):
                t0 = time.perf_counter()
                fn()
                got.append((time.perf_counter() - t0) * 1e3)
            samples[n] += got
            per_round[n].append(float(np.median(got)))
    return {n: {"samples_ms": samples[n], "round_medians_ms": per_round[n]} for n in names}


def summarize(t: dict) -> dict:
    """min, median, quartiles of the samples; min/max of the round medians."""
    s = np.asarray(t["samples_ms"])
    rm = np.asarray(t["round_medians_ms"])
    q1, med, q3 = np.percentile(s, [25, 50, 75])
    return {"min_ms": float(s.min()), "median_ms": float(med), "p25_ms": float(q1), "p75_ms": float(q3),
            "round_median_min_ms": float(rm.min()), "round_median_max_ms": float(rm.max()), "n": int(s.size)}


def bench(model: nn.Module, fp_model: nn.Module | None, input_shape, threads: int = 1,
          rounds: int = 10, iters: int = 10, warmup: int = 3, variants=VARIANTS, seed: int = 0,
          keep_samples: bool = False) -> dict:
    """Latency of ``model`` (BNN, OpenVINO binary kernels) and of ``fp_model`` (OpenVINO f32 and
    PyTorch) at ``input_shape`` with ``threads`` threads. Checks first that every binary conv
    runs on a BinaryConvolution JIT kernel (``BinaryKernelError`` otherwise)."""
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        raise ValueError(f"variants: got {list(variants)}; allowed: a non-empty subset of {VARIANTS}")
    if fp_model is None and any(v.startswith("fp") for v in variants):
        raise ValueError("fp_model: got None; the fp_* variants need the full-precision model")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*input_shape, generator=gen)
    runners, kernels, binary_rows = {}, {}, None
    load_before = list(os.getloadavg())
    if "bnn_ov" in variants:
        ov_model, info = export(model.eval(), input_shape)
        cb = compile_model(ov_model, threads)
        binary_rows = verify_binary(cb, info)
        kernels["bnn_ov"] = kernel_names(cb)
        runners["bnn_ov"] = _ov_runner(cb, x.numpy())
    if "fp_ov" in variants:
        ov_fp, _ = export(fp_model.eval(), input_shape, name="fp")
        cf = compile_model(ov_fp, threads)
        kernels["fp_ov"] = kernel_names(cf)
        runners["fp_ov"] = _ov_runner(cf, x.numpy())
    if "fp_torch" in variants:
        runners["fp_torch"] = _torch_runner(fp_model.eval(), x, threads)
    timed = time_variants(runners, rounds, iters, warmup)
    out = {"input_shape": list(input_shape), "threads": threads, "rounds": rounds, "iters": iters,
           "warmup": warmup, "variants": {}, "kernels": kernels,
           "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()),
           "binary_layers": len(binary_rows or []),
           "channel_padded": [r["layer"] for r in binary_rows or [] if r["channel_pad"]]}
    for v, t in timed.items():
        out["variants"][v] = summarize(t)
        out["variants"][v]["round_medians_ms"] = t["round_medians_ms"]
        if keep_samples:
            out["variants"][v]["samples_ms"] = t["samples_ms"]
    med = {v: out["variants"][v]["median_ms"] for v in out["variants"]}
    if "bnn_ov" in med and "fp_ov" in med:
        out["bnn_over_fp_ov"] = med["bnn_ov"] / med["fp_ov"]
    if "bnn_ov" in med and "fp_torch" in med:
        out["bnn_over_fp_torch"] = med["bnn_ov"] / med["fp_torch"]
    return out
