"""OpenVINO export: every binary conv runs as a bit-packed BinaryConvolution, logits match
PyTorch, refusals are clear, the CLI's JSON carries its keys. Skipped without openvino."""
import json

import numpy as np
import pytest
import torch

ov = pytest.importorskip("openvino")

from bnnlib.deploy import (BinaryKernelError, calibrate_bn, compare, compile_model, export,  # noqa: E402
                           sample_images, sign_threshold, verify_binary)
from bnnlib.deploy.__main__ import main  # noqa: E402
from bnnlib.deploy.export import BinaryLayer  # noqa: E402
from bnnlib.layers import BinaryConv2d  # noqa: E402
from bnnlib.models import build, get_spec, list_models  # noqa: E402
from bnnlib.spec import ResNetSpec  # noqa: E402

# Small inputs keep the suite fast: the smallest size each family's pooling allows.
_SMALL = {"vgg11": 32, "vgg11_dwr": 32, "resnet18_imagenet": 32, "resnet18_imagenet_dwr": 32}


def _small(name_or_spec):
    spec = get_spec(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec
    size = _SMALL.get(name_or_spec, 16) if isinstance(name_or_spec, str) else spec.input_size
    return spec.replace(input_size=size)


def _calibrated(spec, seed=0):
    torch.manual_seed(seed)
    m = build(spec)
    x, _ = sample_images(16, spec.input_size, seed=seed + 1)
    return calibrate_bn(m, x)


def _check_exact(spec, n=2):
    model = _calibrated(spec)
    x, _ = sample_images(n, spec.input_size, seed=7)
    res = compare(model, x)
    rows = res["kernels"]
    n_binary = sum(1 for m in model.modules() if isinstance(m, BinaryConv2d) and m.is_binary)
    assert len(rows) == n_binary > 0
    for r in rows:  # every binary conv is a BinaryConvolution on a JIT kernel, fed packed bits
        assert r["runtime_type"] == "BinaryConvolution", r
        assert r["exec_type"].startswith("jit_") and r["exec_type"].endswith("_u1"), r
    assert res["ok"], {k: res[k] for k in ("max_abs_diff", "rel_diff", "sign_flips", "first_flip")}
    assert res["flip_fraction"] <= 1e-3 and res["f64"]["flip_fraction"] <= 1e-3
    return res


@pytest.mark.parametrize("name", list_models())
def test_registered_bnn_runs_on_binary_kernels_and_matches_pytorch(name):
    res = _check_exact(_small(name))
    # the real layers stayed real: at least the stem conv and the classifier
    assert any(r.startswith("stem") for r in res["real_layers"])
    assert any(r.startswith("head.fc") for r in res["real_layers"])


def test_pruned_dwr_net_with_odd_widths():
    """Widths as the clustering pruner returned them for ResNet-20 widened by s=3 at the
    ResNet-20 OPs budget (odd 55: an odd channel pad with its spatial correction)."""
    spec = ResNetSpec(stages=(((30, 30),), ((55, 55),), ((108, 108),)), strides=(1, 2, 2),
                      stem_width=16, block="bireal", shortcut="pad", align_width=64, input_size=16)
    res = _check_exact(spec)
    assert res["channel_padded"]


def test_residual_binarization_fusion_is_prevented():
    """A residual output read only by the next binary conv (widths multiples of 8, binary
    align conv after the last block): OpenVINO would fuse add + binarization and binarize
    the residual; the exporter pads that input so the fusion cannot happen."""
    spec = get_spec("resnet20_dwr").replace(stages=(((16, 16),), ((80, 80),), ((136, 136),)), input_size=16)
    model = _calibrated(spec)
    _, info = export(model, (1, 3, 16, 16))
    assert info.fusion_guarded == ["head.align.0.0"]
    _check_exact(spec)


@pytest.mark.parametrize("pad_value", [0.0, -1.0, 1.0])
def test_pad_value_is_exported_exactly(pad_value):
    torch.manual_seed(0)
    conv = BinaryConv2d(13, 16, 3, stride=2, padding=1, pad_value=pad_value).eval()
    x = torch.randn(2, 13, 9, 9)
    x[:, :, 0, 0] = 0.0  # sign(0) = +1
    ov_model, info = export(conv, tuple(x.shape))
    got = compile_model(ov_model)(x.numpy())[0]
    with torch.no_grad():
        want = conv(x).numpy()
    np.testing.assert_array_equal(got, want)  # integer sums: exact
    assert info.binary[0].pad_value == pad_value and info.binary[0].channel_pad == 3


def test_sign_threshold_is_sign_with_zero_positive():
    beta = np.array([0.0, 0.5, -0.25, 1e-30], np.float32)
    t = sign_threshold(beta)
    for b, tt in zip(beta, t):
        xs = np.array([b, np.nextafter(b, np.float32(-1)), np.nextafter(b, np.float32(1)), -0.0], np.float32)
        if abs(b) < 1e-20:
            xs = xs[[0, 2, 3]]  # subnormal neighbours: documented exception
        np.testing.assert_array_equal(xs > tt, (xs - b) >= 0)


def test_refuses_binary_linear_naming_the_layer():
    spec = get_spec("resnet20", binary_head=True, input_size=16)
    model = build(spec).eval()
    with pytest.raises(ValueError, match=r"head\.fc\.0: binary Linear"):
        export(model, (1, 3, 16, 16))


def test_refuses_grouped_binary_conv_and_training_mode():
    conv = BinaryConv2d(16, 16, 3, padding=1, groups=2).eval()
    with pytest.raises(ValueError, match="grouped binary convolution"):
        export(conv, (1, 16, 8, 8))
    with pytest.raises(ValueError, match="training mode"):
        export(build(_small("resnet20")), (1, 3, 16, 16))


def test_fallback_is_reported_with_the_layer_name():
    model = _calibrated(_small("resnet20"))
    ov_model, info = export(model, (1, 3, 16, 16))
    compiled = compile_model(ov_model)
    verify_binary(compiled, info)  # the real export passes
    info.binary.append(BinaryLayer("stem.0.0", 3, 16, 3, 1, 0.0))  # a real conv claimed binary
    with pytest.raises(BinaryKernelError, match=r"stem\.0\.0: runs as Convolution"):
        verify_binary(compiled, info)


def test_cli_check_json_keys(capsys):
    assert main(["check", "resnet20_dwr", "--input-size", "16", "--images", "2", "--calib", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("model", "input_shape", "images", "binary_layers", "binary_convolution_layers", "kernels",
                "exec_types", "real_layers", "max_abs_diff", "rel_diff", "sign_flips", "flip_fraction",
                "f64", "exact", "ok"):
        assert key in out, key
    assert out["binary_layers"] == out["binary_convolution_layers"] and len(out["binary_layers"]) == 7
    assert set(out["kernels"].values()) <= set(out["exec_types"]["BinaryConvolution"])


def test_cli_bench_json_keys(capsys):
    assert main(["bench", "resnet20", "--input-size", "16", "--rounds", "2", "--iters", "1",
                 "--warmup", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("model", "machine", "input_shape", "threads", "variants", "kernels", "loadavg_before",
                "loadavg_after", "bnn_over_fp_ov", "bnn_over_fp_torch"):
        assert key in out, key
    assert set(out["variants"]) == {"bnn_ov", "fp_ov", "fp_torch"}
    for v in out["variants"].values():
        assert 0 < v["min_ms"] <= v["median_ms"] and v["n"] == 2
    assert out["kernels"]["bnn_ov"]["BinaryConvolution"]
    for key in ("cpu_model", "isa_flags", "loadavg", "openvino"):
        assert key in out["machine"]


@pytest.mark.parametrize("argv, needle", [
    (["check", "resnet21"], "MODEL: got 'resnet21'"),
    (["bench", "resnet20", "--threads", "0"], "--threads: got 0"),
    (["check"], "MODEL: got nothing"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, needle, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse-level errors exit through Parser.error
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and needle in err and "\n" not in err
