"""Compile an exported model on the OpenVINO CPU plugin, verify its kernels, measure exactness.

- ``compile_model``: static shape, f32 inference precision (never bf16/f16 behind our back),
  one stream, a fixed thread count, latency hint.
- ``verify_binary``: reads ``compiled.get_runtime_model()`` (the graph the plugin runs after
  its own fusions): every exported binary conv must run as a ``BinaryConvolution`` node with
  a JIT kernel (exec type e.g. ``jit_avx2_u1``, ``jit_avx512_u1``) fed by a FakeQuantize that
  packs bits (u1 output); anything else raises ``BinaryKernelError`` naming the layer.
- ``compare``: logits of the PyTorch eval-mode model and of the compiled model on the same
  images; max absolute and relative difference, and the sign flips at every binary conv input
  (a second compile with the pre-sign tensors as extra outputs, compared element by element
  with PyTorch's; values at exactly 0 follow sign(0) = +1 in both, so a flip needs a value
  within float rounding of the threshold).
- ``profile``: per-node times from the performance counters, grouped into the categories of
  ``CATEGORIES``.
"""
from __future__ import annotations

import copy
import time
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from .export import ExportInfo, export, require_openvino

__all__ = ["BinaryKernelError", "compile_model", "runtime_layers", "kernel_names", "verify_binary",
           "compare", "profile", "CATEGORIES", "category", "ov_config", "calibrate_bn", "TOL_REL",
           "TOL_MARGIN", "sample_images"]

CATEGORIES = ("binary_conv", "real_conv", "binarize_pack", "reorder", "bn_act_shortcut", "pool",
              "fc", "other")


# Logits agree when max |diff| <= TOL_REL * max |logit| (float32 reordering: ~1e-6 measured).
TOL_REL = 1e-4
# A sign flip is a rounding event when the value is this close to the threshold (relative).
TOL_MARGIN = 1e-5


class BinaryKernelError(RuntimeError):
    """A binary conv did not run on a bit-packed BinaryConvolution kernel."""


def ov_config(threads: int, perf_count: bool = False) -> dict:
    """Plugin properties used for every compile (recorded with each measurement)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: got {threads!r}; allowed: a positive int")
    return {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": bool(perf_count)}


def compile_model(ov_model, threads: int = 1, perf_count: bool = False, core=None):
    """Compiled model on CPU with ``ov_config(threads, perf_count)``."""
    ov, _ = require_openvino()
    core = core or ov.Core()
    return core.compile_model(ov_model, "CPU", ov_config(threads, perf_count))


def _s(v) -> str:
    try:
        return v.astype(str)
    except Exception:  # pragma: no cover - older bindings return plain strings
        return str(v)


def runtime_layers(compiled) -> list[dict]:
    """The executed graph: one dict per node (name, type, exec_type, precision, originals)."""
    out = []
    for n in compiled.get_runtime_model().get_ordered_ops():
        rt = {k: _s(v) for k, v in n.get_rt_info().items()}
        orig = [o for o in rt.get("originalLayersNames", "").split(",") if o]
        out.append({"name": n.get_friendly_name(), "type": rt.get("layerType", ""),
                    "exec_type": rt.get("primitiveType", ""), "precision": rt.get("runtimePrecision", ""),
                    "output_precisions": rt.get("outputPrecisions", ""), "originals": orig})
    return out


def kernel_names(compiled) -> dict:
    """Exec types by runtime node type (e.g. BinaryConvolution -> ['jit_avx2_u1'])."""
    out: dict[str, set] = {}
    for lay in runtime_layers(compiled):
        if lay["type"] in ("BinaryConvolution", "Convolution", "FakeQuantize", "FullyConnected", "Reorder"):
            out.setdefault(lay["type"], set()).add(lay["exec_type"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def _owner(layers, name):
    for lay in layers:
        if lay["name"] == name or name in lay["originals"]:
            return lay
    return None


def verify_binary(compiled, info: ExportInfo) -> list[dict]:
    """One row per binary conv (layer, runtime type, exec type, packing node); raises
    ``BinaryKernelError`` naming the first layer that fell back."""
    layers = runtime_layers(compiled)
    rows, bad = [], []
    for b in info.binary:
        node = _owner(layers, b.name)
        fq = _owner(layers, f"{b.name}.sign")
        row = {"layer": b.name, "runtime_type": node["type"] if node else None,
               "exec_type": node["exec_type"] if node else None,
               "pack_type": fq["type"] if fq else None,
               "pack_output": fq["output_precisions"] if fq else None,
               "in_channels": b.in_channels, "out_channels": b.out_channels,
               "channel_pad": b.channel_pad}
        rows.append(row)
        if node is None:
            bad.append(f"{b.name}: no node in the compiled graph")
        elif node["type"] != "BinaryConvolution":
            bad.append(f"{b.name}: runs as {node['type']} ({node['exec_type']}), not BinaryConvolution")
        elif "ref" in node["exec_type"].lower() or not node["exec_type"].lower().startswith("jit"):
            bad.append(f"{b.name}: BinaryConvolution on a non-JIT kernel ({node['exec_type']})")
        elif fq is not None and fq["type"] == "FakeQuantize" and "u1" not in fq["output_precisions"]:
            bad.append(f"{b.name}: its FakeQuantize outputs {fq['output_precisions']}, not packed bits (u1)")
    for lay in runtime_layers(compiled):
        orig = lay["originals"]
        if lay["type"] == "BinaryConvolution" and any(o.endswith(".add") for o in orig) \
                and any(o.endswith(".sign") for o in orig):
            bad.append(f"{lay['name']}: residual add and binarization fused into one BinaryConvolution "
                       "(OpenVINO binarizes the residual input there; see export._Builder.risky_inputs)")
    for name in info.real_convs:
        node = _owner(layers, name)
        if node is not None and node["type"] == "BinaryConvolution":
            bad.append(f"{name}: a real layer became BinaryConvolution")
    if bad:
        raise BinaryKernelError("binary layers fell back or changed: " + "; ".join(bad))
    return rows


def _torch_run(model: nn.Module, x: torch.Tensor, names) -> tuple[np.ndarray, dict]:
    """Logits and the inputs of the named binary convs' input binarizers (eval mode)."""
    mods = dict(model.named_modules())
    got, hooks = {}, []
    for n in names:
        def hook(_m, inp, key=n):
            got[key] = inp[0].detach().clone()
        hooks.append(mods[n].register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out.numpy(), {k: v.numpy() for k, v in got.items()}


def _betas(model, info) -> dict:
    from ..binarizers import RSign
    mods = dict(model.named_modules())
    out = {}
    for b in info.binary:
        ib = mods[b.name].input_binarizer
        out[b.name] = (ib.beta.detach().numpy().reshape(1, -1, 1, 1) if isinstance(ib, RSign)
                       else np.zeros((1, 1, 1, 1), np.float32))
    return out


def _agreement(got, ref, pre_ov, pre_ref, betas) -> dict:
    diff = np.abs(got - ref)
    flips = total = 0
    per, first = {}, None
    for name, o in pre_ov.items():  # forward order
        t = pre_ref[name]
        beta = betas[name]
        d = t - beta.astype(t.dtype)
        mask = (o >= beta.astype(np.float32)) != (d >= 0)
        f = int(mask.sum())
        flips += f
        total += t.size
        if f:
            per[name] = f
            if first is None:  # later flips may be its cascade; this one is judged alone
                first = {"layer": name, "flips": f,
                         "max_margin": float(np.abs(d[mask]).max() / max(1e-30, np.abs(d).max()))}
    return {"max_abs_diff": float(diff.max()), "rel_diff": float(diff.max() / max(1e-12, np.abs(ref).max())),
            "argmax_agree": float((got.argmax(1) == ref.argmax(1)).mean()), "sign_flips": flips,
            "sign_values": total, "flip_fraction": flips / max(1, total), "flips_per_layer": per,
            "first_flip": first}


def _float64_reference(model: nn.Module) -> nn.Module:
    """float64 copy whose binarized weights equal the float32 ones (alpha_o in float32).

    A scaled weight alpha_o * s recomputed in float64 has a 53-bit alpha, and a sum of
    +-alpha terms then rounds (1e-17 instead of 0). With the float32 alpha, every partial sum
    is an integer times a 24-bit number, exact in float64; re-binarizing alpha * s gives
    alpha * s back (mean of equal magnitudes, sign unchanged)."""
    from ..layers import BinaryConv2d
    m64 = copy.deepcopy(model).eval()
    with torch.no_grad():
        for mod in m64.modules():
            if isinstance(mod, BinaryConv2d) and mod.is_binary:
                mod.weight.data = mod.weight_binarizer(mod.weight).detach().clone()
    return m64.double()


def compare(model: nn.Module, images: torch.Tensor, threads: int = 1, flips: bool = True,
            verify: bool = True) -> dict:
    """Exactness of the export on ``images`` (N, C, H, W float, already normalised).

    Headline numbers compare with the float32 PyTorch model in eval mode; ``f64`` repeats
    them against a float64 copy (binarized weights taken from float32, so a binary conv's
    integer sum times alpha is exact and a true 0 stays 0, with sign(0) = +1 as in the
    popcount kernel). Sign flips are counted at every binary conv input. Where do flips come
    from? A value within float rounding of the threshold. With scaled weights, float32
    PyTorch adds +-alpha terms, so a conv sum that is exactly 0 comes out as +-1e-8 and its
    sign is a coin flip; with BatchNorm at its untrained defaults (shift 0) such exact zeros
    are common (``tie_fraction``) and a flip cascades through the net. ``calibrate_bn``
    (running statistics from images, as after training) makes the shifts non-zero and exact
    ties rare; the tests and the CLI compare calibrated models.

    Verdict: ``exact`` when, against one of the two references, no sign flips and logits
    within ``TOL_REL``. Otherwise the first layer (in forward order) with flips against
    float64 is judged alone, since every later flip may be its cascade (one flipped sign
    changes a conv sum by 2 and, in an untrained net, flips more signs downstream):
    ``ok`` when all its flipped values lie within ``TOL_MARGIN`` (relative to the layer's
    largest |value|) of the threshold, i.e. within float rounding. For scale,
    ``torch_f32_vs_f64_flips`` counts the flips between PyTorch's own float32 and float64."""
    ov, ops = require_openvino()
    if model.training:
        raise ValueError("model: in training mode; call model.eval() first")
    shape = tuple(images.shape)
    ov_model, info = export(model, shape)
    compiled = compile_model(ov_model, threads)
    rows = verify_binary(compiled, info) if verify else None  # raises if a binary conv fell back
    x = images.to(torch.float32)
    got = compiled(x.numpy())[0]
    names = [b.name for b in info.binary]
    ref32, pre32 = _torch_run(model, x, names)
    m64 = _float64_reference(model)
    ref64, pre64 = _torch_run(m64, x.double(), names)
    res = {"n_images": int(shape[0]), "input_shape": list(shape), "max_abs_logit": float(np.abs(ref64).max()),
           "binary_layers": len(info.binary), "channel_padded": info.channel_padded, "kernels": rows,
           "exec_types": kernel_names(compiled), "real_layers": info.real_convs + info.real_linear}
    pre_ov = {}
    if flips and info.binary:
        extra = [ops.result(info.pre_sign[n], name=f"pre.{n}") for n in names]
        dbg = ov.Model([ov_model.get_results()[0], *extra], ov_model.get_parameters(), "debug")
        outs = compile_model(dbg, threads)(x.numpy())
        pre_ov = {n: np.asarray(outs[i])[:, :b.in_channels] for i, (n, b) in
                  enumerate(zip(names, info.binary), start=1)}
    betas = _betas(model, info)
    a32 = _agreement(got, ref32, pre_ov, pre32, betas)
    a64 = _agreement(got, ref64, pre_ov, pre64, betas)
    ties = sum(int(((pre64[n] - betas[n]) == 0).sum()) for n in names) if pre_ov else 0
    noise = _agreement(ref32, ref64, pre32, pre64, betas) if pre_ov else {"sign_flips": 0}
    res.update(a32)
    res["tie_fraction"] = ties / max(1, a64["sign_values"])
    res["f64"] = a64
    # PyTorch float32 against float64: how far the user's own model is from the exact one
    res["torch_f32_vs_f64_flips"] = noise["sign_flips"]
    res["exact"] = any(a["sign_flips"] == 0 and a["rel_diff"] <= TOL_REL for a in (a32, a64))
    ff = a64["first_flip"]
    res["ok"] = bool(res["exact"] or (ff is not None and ff["max_margin"] <= TOL_MARGIN))
    res["reference"] = "float32 PyTorch eval mode (f64: float64 copy, float32 weight scales)"
    return res


def calibrate_bn(model: nn.Module, images: torch.Tensor, batch_size: int = 64,
                 affine_seed: int | None = 0) -> nn.Module:
    """Give an untrained model a trained-like BatchNorm state, then eval mode; returns it.

    Running statistics become the statistics of ``images`` (one cumulative pass in train
    mode, no gradient). With ``affine_seed`` (default 0) the affine parameters are drawn too
    (gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1^2), seeded): at their defaults (1, 0) a binary
    conv's folded output a * (c - mean) is exactly 0 whenever the integer sum c equals a
    mean that happens to be an integer, a tie that any reordering of float operations
    resolves differently. Conv weights are untouched."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if affine_seed is not None:
        g = torch.Generator().manual_seed(int(affine_seed))
        with torch.no_grad():
            for m in bns:
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches
    model.train()
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                model(images[i:i + batch_size])
    finally:
        for m, mo in zip(bns, saved):
            m.momentum = mo
        model.eval()
    return model


def category(node_type: str, name: str = "") -> str:
    """Performance-counter category of a runtime node type."""
    t = node_type
    if t == "BinaryConvolution":
        return "binary_conv"
    if t in ("Convolution", "Deconvolution"):
        return "real_conv"
    if t == "FakeQuantize":
        return "binarize_pack"
    if t == "Reorder" or t == "Convert":
        return "reorder"
    if t in ("FullyConnected", "MatMul"):
        return "fc"
    if t in ("Pooling", "Reduce", "MaxPool", "AvgPool"):
        return "pool"
    if t in ("Eltwise", "Subgraph", "Pad", "StridedSlice", "Concatenation", "Reshape", "Math",
             "PRelu", "Clamp", "Split", "Transpose", "Gather"):
        return "bn_act_shortcut"
    return "other"


def profile(compiled, x: np.ndarray, runs: int = 20) -> dict:
    """Per-node time over ``runs`` inferences (needs PERF_COUNT): min and median per node, and
    their sums by category. On a loaded machine a preemption is charged to whichever node was
    running, so a node's median can jump by milliseconds from run to run; its min is the
    uncontended cost, and ``by_category_min_us`` the breakdown to compare nets with."""
    req = compiled.create_infer_request()
    req.infer(x)
    per_node = defaultdict(list)
    meta = {}
    for _ in range(runs):
        req.infer(x)
        for p in req.get_profiling_info():
            if str(p.status).endswith("NOT_RUN"):
                continue
            us = p.real_time.total_seconds() * 1e6
            per_node[p.node_name].append(us)
            meta[p.node_name] = (p.node_type, p.exec_type)
    nodes = []
    for n, v in per_node.items():
        nt, et = meta[n]
        nodes.append({"node": n, "type": nt, "exec_type": et, "category": category(nt, n),
                      "median_us": float(np.median(v)), "min_us": float(np.min(v))})
    cats = {c: 0.0 for c in CATEGORIES}
    mins = {c: 0.0 for c in CATEGORIES}
    for r in nodes:
        cats[r["category"]] += r["median_us"]
        mins[r["category"]] += r["min_us"]
    return {"by_category_us": cats, "total_us": float(sum(cats.values())), "by_category_min_us": mins,
            "total_min_us": float(sum(mins.values())), "nodes": nodes, "runs": runs}


def timer() -> float:
    """Monotonic seconds (perf_counter)."""
    return time.perf_counter()


def sample_images(n: int, size: int = 32, seed: int = 0, data_root=None) -> tuple[torch.Tensor, str]:
    """``n`` normalised images (n, 3, size, size) and a label of where they came from.

    CIFAR-10 test images when the batches are found (argument, $BNNLIB_DATA, cache; never
    downloaded here), else the seeded synthetic CIFAR-shaped set (``bnnlib.data.synthetic``).
    Sizes other than 32 are bilinear resizes of the 32x32 images (Bi-Real-18 at 224)."""
    from .. import data as D
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: got {n!r}; allowed: a positive int")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size: got {size!r}; allowed: a positive int")
    if D._batch_dir(D.default_root(data_root)) is not None:
        ds = D.load_cifar10(data_root, download=False)
        idx = torch.randperm(len(ds.x_test), generator=torch.Generator().manual_seed(seed))[:n]
        x, label = ds.x_test[idx], "cifar10 test"
    else:
        ds = D.synthetic(n_train=1, n_test=n, seed=seed)
        x, label = ds.x_test, "synthetic"
    x = D.normalize(x)
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        label += f" (resized 32->{size})"
    return x.contiguous(), label
