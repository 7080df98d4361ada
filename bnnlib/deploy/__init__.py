"""Deployment: bnnlib BNNs on OpenVINO's bit-packed binary convolution kernels.

OpenVINO's CPU plugin runs a ``BinaryConvolution`` (opset1; XNOR + popcount on packed bits,
JIT kernels for SSE4.1, AVX2 and AVX-512, using VPOPCNTDQ where the CPU has it) fed by a
2-level ``FakeQuantize`` that packs the activation signs into bits. ``export`` writes every
binary conv of a bnnlib model in that form, with its padding value, its weight scale and
BatchNorm folded after it, and keeps every real layer (stem, 1x1 shortcut adapters, real
align conv, head) an ordinary f32 op. ``check.verify_binary`` reads the graph the plugin
actually runs and names any binary conv that fell back; ``check.compare`` measures the
logits against PyTorch (and the sign flips at every binary conv input); ``bench`` times the
BNN against its FP twin.

Needs the optional ``deploy`` extra (``pip install -e '.[deploy]'``). Larq Compute Engine
is the field's ARM engine (Bi-Real-18: 41.6 ms on a Pixel 1); on x86 it only has reference
kernels, so it is not used here.

CLI: ``python -m bnnlib.deploy check MODEL`` and ``python -m bnnlib.deploy bench MODEL``.
"""
from .export import BinaryLayer, ExportInfo, export, sign_threshold  # noqa: F401
from .check import (BinaryKernelError, calibrate_bn, compare, compile_model, profile,  # noqa: F401
                    runtime_layers, sample_images, verify_binary)
from .bench import bench, machine_info  # noqa: F401

__all__ = ["export", "ExportInfo", "BinaryLayer", "sign_threshold", "BinaryKernelError",
           "compile_model", "verify_binary", "runtime_layers", "compare", "calibrate_bn",
           "sample_images", "profile", "bench", "machine_info"]
