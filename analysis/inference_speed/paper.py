"""Published numbers this study compares with, as data (with where they come from).

Larq Compute Engine (LCE) is the field's BNN engine for 64-bit ARM; on x86 it has only
reference kernels, so it cannot be timed here. Its README (larq/compute-engine, benchmarks
of March 20th, 2020, TFLite benchmark tool, random weights and inputs, single thread)
reports Bi-RealNet at 47.7 ms on a Pixel 1 and BiRealNet-Stem at 43.2 ms (dabnn: 61.3 ms
for Bi-RealNet on the same phone). Issue 13 quotes 41.6 ms for LCE's Bi-Real-18 on a
Pixel 1; that figure is not in the README versions we could read, so the table carries
the README's numbers and names the issue's figure as unverified.
"""
from __future__ import annotations

__all__ = ["PUBLISHED", "HARDWARE"]

PUBLISHED = [
    {"engine": "LCE", "model": "Bi-RealNet (Bi-Real-18)", "device": "Pixel 1", "threads": 1,
     "latency_ms": 47.7, "source": "larq/compute-engine README (benchmarks of 2020-03-20)"},
    {"engine": "LCE", "model": "BiRealNet-Stem", "device": "Pixel 1", "threads": 1,
     "latency_ms": 43.2, "source": "larq/compute-engine README (benchmarks of 2020-03-20)"},
    {"engine": "dabnn", "model": "Bi-RealNet (Bi-Real-18)", "device": "Pixel 1", "threads": 1,
     "latency_ms": 61.3, "source": "dabnn, as quoted in the larq/compute-engine README"},
    {"engine": "LCE", "model": "Bi-Real-18", "device": "Pixel 1", "threads": None,
     "latency_ms": 41.6, "source": "issue 13 (attributed to the LCE README; not found there, unverified)"},
]

HARDWARE = {
    "Pixel 1": "Qualcomm Snapdragon 821 (2016): 64-bit ARMv8 Kryo cores at up to 2.15 GHz, "
               "128-bit NEON with a per-byte popcount (CNT), phone power and thermal limits",
}
