"""python -m bnnlib.deploy {check,bench} MODEL ...: export to OpenVINO, verify, time.

check: export the BNN, compile it, show which layers run as BinaryConvolution and on which
       kernel, and compare its logits with PyTorch on real images (BN calibrated first).
bench: latency of the BNN on the binary kernels, of its FP twin on OpenVINO f32 and on
       PyTorch (interleaved rounds; min and median; machine and kernels recorded).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from ..cli import Parser, fail
from ..models import build, get_spec, list_models

_EXAMPLE_CHECK = "python -m bnnlib.deploy check resnet20_dwr --json"
_EXAMPLE_BENCH = "python -m bnnlib.deploy bench resnet18_imagenet --threads 1 --batch 1 --rounds 10"


def _spec(a):
    """The spec named by MODEL, or read from --spec (a spec dict or a record holding 'spec')."""
    from ..spec import spec_from_dict
    if a.spec:
        try:
            with open(a.spec) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"--spec: got {a.spec!r}; allowed: a readable JSON file ({e})") from None
        d = d.get("spec", d) if isinstance(d, dict) else d
        if not isinstance(d, dict):
            raise ValueError(f"--spec: got {type(d).__name__}; allowed: a spec object or a record with 'spec'")
        spec = spec_from_dict(d)
    else:
        if a.model not in list_models():
            raise ValueError(f"MODEL: got {a.model!r}; allowed: one of {list_models()} (or --spec FILE)")
        spec = get_spec(a.model)
    if not spec.binary:
        raise ValueError("MODEL: got a full-precision spec (binary=False); allowed: a BNN spec")
    if a.input_size is not None:
        spec = spec.replace(input_size=a.input_size)
    return spec


def _model(spec, seed, weights=None):
    torch.manual_seed(seed)
    m = build(spec)
    if weights:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as e:
            raise ValueError(f"--weights: got {weights!r}; allowed: a torch state_dict file ({e})") from None
        state = state.get("model", state) if isinstance(state, dict) else state
        m.load_state_dict(state)
    return m.eval()


def _check(a) -> int:
    from .check import calibrate_bn, compare, sample_images
    spec = _spec(a)
    s = spec.input_size
    model = _model(spec, a.seed, a.weights)
    if not a.weights:
        calib, _ = sample_images(a.calib, s, seed=a.seed + 1)
        calibrate_bn(model, calib)
    x, label = sample_images(a.images, s, seed=a.seed)
    res = compare(model, x, threads=a.threads)
    rows = res["kernels"]
    out = {"model": a.spec or a.model, "input_shape": list(x.shape), "images": label,
           "weights": a.weights or "random init, BN calibrated on images",
           "binary_layers": [r["layer"] for r in rows],
           "binary_convolution_layers": [r["layer"] for r in rows if r["runtime_type"] == "BinaryConvolution"],
           "kernels": {r["layer"]: r["exec_type"] for r in rows},
           "exec_types": res["exec_types"],
           "real_layers": res["real_layers"],
           "channel_padded": res["channel_padded"],
           "max_abs_diff": res["max_abs_diff"], "rel_diff": res["rel_diff"],
           "sign_flips": res["sign_flips"], "flip_fraction": res["flip_fraction"],
           "argmax_agree": res["argmax_agree"], "tie_fraction": res["tie_fraction"],
           "first_flip": res["first_flip"],
           "f64": {k: v for k, v in res["f64"].items() if k != "flips_per_layer"},
           "torch_f32_vs_f64_flips": res["torch_f32_vs_f64_flips"],
           "exact": res["exact"], "ok": res["ok"]}
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{out['model']}  input {tuple(x.shape)}  images: {label}")
        print(f"binary convs: {len(out['binary_layers'])}, as BinaryConvolution: "
              f"{len(out['binary_convolution_layers'])}, real layers: {len(out['real_layers'])}")
        for r in rows:
            pad = f"  (input channels {r['in_channels']} padded +{r['channel_pad']})" if r["channel_pad"] else ""
            print(f"  {r['layer']:32s} {r['runtime_type']:18s} {r['exec_type']}{pad}")
        print("kernels: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in out["exec_types"].items()))
        print(f"logits vs PyTorch f32: max |diff| {res['max_abs_diff']:.3g} (rel {res['rel_diff']:.3g}), "
              f"sign flips {res['sign_flips']}/{res['sign_values']}; vs f64: max |diff| "
              f"{res['f64']['max_abs_diff']:.3g}, flips {res['f64']['sign_flips']}")
        print(f"verdict: {'exact' if res['exact'] else 'ok (rounding-level flip)' if res['ok'] else 'MISMATCH'}")
    return 0 if res["ok"] else 1


def _bench(a) -> int:
    from .bench import bench, machine_info
    spec = _spec(a)
    model = _model(spec, a.seed, a.weights)
    fp = _model(spec.replace(binary=False), a.seed)
    shape = (a.batch, 3, spec.input_size, spec.input_size)
    res = bench(model, fp, shape, threads=a.threads, rounds=a.rounds, iters=a.iters, warmup=a.warmup)
    res = {"model": a.spec or a.model, "machine": machine_info(), **res}
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        m = res["machine"]
        print(f"{res['model']}  input {tuple(shape)}  threads {a.threads}  on {m['cpu_model']} "
              f"({', '.join(m['isa_flags'])}); load {res['loadavg_before'][0]:.2f} -> "
              f"{res['loadavg_after'][0]:.2f}")
        for v, r in res["variants"].items():
            print(f"  {v:9s} min {r['min_ms']:8.3f} ms  median {r['median_ms']:8.3f} ms  "
                  f"IQR {r['p25_ms']:.3f}-{r['p75_ms']:.3f}  round medians {r['round_median_min_ms']:.3f}-"
                  f"{r['round_median_max_ms']:.3f}  (n={r['n']})")
        if "bnn_over_fp_ov" in res:
            print(f"BNN / FP (OpenVINO f32) median latency: {res['bnn_over_fp_ov']:.3f}")
        print("kernels: " + "; ".join(f"{v}: " + ", ".join(f"{k}={'/'.join(e)}" for k, e in ks.items())
                                      for v, ks in res["kernels"].items()))
    return 0


def _pos_int(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"got {text}; allowed: a positive int")
    return v


def _parser() -> Parser:
    p = Parser(prog="python -m bnnlib.deploy", description=__doc__, example=_EXAMPLE_CHECK)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{check,bench}")
    common = dict(formatter_class=p.formatter_class)
    c = sub.add_parser("check", help="export, verify the binary kernels, compare logits with PyTorch",
                       example=_EXAMPLE_CHECK, **common)
    b = sub.add_parser("bench", help="latency: BNN on binary kernels vs FP on OpenVINO f32 and PyTorch",
                       example=_EXAMPLE_BENCH, **common)
    for q in (c, b):
        q.add_argument("model", nargs="?", default=None, metavar="MODEL",
                       help=f"registered BNN name, one of {', '.join(list_models())} "
                            "(none: --spec gives the model)")
        q.add_argument("--spec", metavar="FILE", help="JSON spec (bnnlib.spec.spec_to_dict) or a record "
                       "with a 'spec' key, e.g. a pruned net's PruneResult.to_dict() (none: use MODEL)")
        q.add_argument("--input-size", type=_pos_int, default=None, metavar="PX",
                       help="input height = width in pixels (none: the spec's input_size, 32 or 224)")
        q.add_argument("--threads", type=_pos_int, default=1, metavar="T",
                       help="inference threads for OpenVINO and PyTorch, a positive int")
        q.add_argument("--seed", type=int, default=0, help="seed of the random init and the images, an int")
        q.add_argument("--weights", metavar="PATH", help="torch state_dict to load "
                       "(none: random init, BN calibrated on images)")
        q.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    c.add_argument("--images", type=_pos_int, default=4, metavar="N",
                   help="images compared (CIFAR-10 test when found, else synthetic), a positive int")
    c.add_argument("--calib", type=_pos_int, default=32, metavar="N",
                   help="images for BN calibration of a random-init model, a positive int")
    b.add_argument("--batch", type=_pos_int, default=1, metavar="B", help="batch size, a positive int")
    b.add_argument("--rounds", type=_pos_int, default=10, metavar="R",
                   help="interleaved rounds (variant order rotates each round), a positive int")
    b.add_argument("--iters", type=_pos_int, default=10, metavar="I",
                   help="timed inferences per variant per round, a positive int")
    b.add_argument("--warmup", type=_pos_int, default=3, metavar="W",
                   help="untimed inferences per variant first, a positive int")
    return p


def main(argv=None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    if not a.model and not a.spec:
        return fail("MODEL: got nothing; allowed: a registered BNN name or --spec FILE")
    if a.model and a.spec:
        return fail(f"MODEL: got {a.model!r} together with --spec; allowed: one of the two")
    try:
        return _check(a) if a.cmd == "check" else _bench(a)
    except (ValueError, ImportError) as e:
        return fail(e)


if __name__ == "__main__":
    sys.exit(main())
