"""Every registered backbone, FP and BNN: builds, runs forward/backward, binary where it should be."""
import pytest
import torch

from bnnlib import binarizers as B
from bnnlib.layers import BinaryConv2d, BinaryLinear
from bnnlib.models import create_model, get_spec, list_models
from bnnlib.spec import ResNetSpec

# ImageNet-sized nets run at a reduced resolution to keep the suite fast (shapes stay valid).
SMALL_INPUT = {"resnet18_imagenet": 64, "resnet18_imagenet_dwr": 64}


def _model(name, binary):
    torch.manual_seed(0)
    return create_model(name, binary=binary)


@pytest.mark.parametrize("binary", [True, False], ids=["bnn", "fp"])
@pytest.mark.parametrize("name", list_models())
def test_forward_backward_finite(name, binary):
    m = _model(name, binary)
    s = SMALL_INPUT.get(name, m.spec.input_size)
    x = torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(1))
    y = m(x)
    assert y.shape == (2, m.spec.num_classes)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


@pytest.mark.parametrize("name", list_models())
def test_binary_operands_hold_exactly_two_values(name):
    """Every binarized activation and weight entering a binary conv holds two values
    (per output channel for scaled weights)."""
    m = _model(name, True)
    seen = []

    def check_act(mod, inp, out):
        seen.append(("act", set(out.unique().tolist())))

    def check_w(mod, inp, out):
        per_channel = [set(r.abs().unique().tolist()) for r in out.flatten(1)]
        seen.append(("w", set(out.sign().unique().tolist()), max(len(c) for c in per_channel)))

    n_binary = 0
    for mod in m.modules():
        if isinstance(mod, (BinaryConv2d, BinaryLinear)) and mod.is_binary:
            n_binary += 1
            mod.input_binarizer.register_forward_hook(check_act)
            mod.weight_binarizer.register_forward_hook(check_w)
    s = SMALL_INPUT.get(name, m.spec.input_size)
    m(torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(2)))
    assert n_binary == m.spec.num_binary_convs + (m.spec.align_width is not None)
    for item in seen:
        if item[0] == "act":
            assert item[1] == {-1.0, 1.0}
        else:
            assert item[1] == {-1.0, 1.0} and item[2] == 1


@pytest.mark.parametrize("name", list_models())
def test_fp_variant_has_no_binary_layer_and_same_shapes(name):
    fp, bnn = _model(name, False), _model(name, True)
    assert not any(getattr(mod, "is_binary", False) for mod in fp.modules())
    # Same latent weights; only learnable binarizer thresholds (RSign) exist in the BNN alone.
    shapes = lambda m: [(n, p.shape) for n, p in m.named_parameters() if "binarizer" not in n]
    assert shapes(fp) == shapes(bnn)


@pytest.mark.parametrize("name", list_models())
def test_first_last_and_downsampling_layers_are_real_by_default(name):
    m = _model(name, True)
    convs = [mod for mod in m.modules() if isinstance(mod, (BinaryConv2d, BinaryLinear))]
    assert not convs[0].is_binary and not convs[-1].is_binary
    one_by_one = [c for c in convs if isinstance(c, BinaryConv2d) and c.kernel_size == (1, 1)]
    assert not any(c.is_binary for c in one_by_one)


def test_roles_can_be_made_binary():
    m = create_model("resnet18", binary_stem=True, binary_head=True, binary_shortcut=True)
    convs = [mod for mod in m.modules() if isinstance(mod, (BinaryConv2d, BinaryLinear))]
    assert all(c.is_binary for c in convs)


def test_width_mult_and_depth_div():
    m = create_model("resnet20", width_mult=2.0, depth_div=3.0)
    assert m.spec.depths == (1, 1, 1) and m.spec.widths == (32, 64, 128)


def test_explicit_spec_builds_any_depth_and_width():
    spec = ResNetSpec.uniform((1, 4, 2), (8, 24, 40))
    m = create_model(spec=spec, binary=False)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert m.spec.depths == (1, 4, 2)


def test_registered_dwr_architectures_match_authors_code():
    assert get_spec("resnet20_dwr").widths == (16, 78, 134) and get_spec("resnet20_dwr").align_width == 64
    assert get_spec("resnet18_dwr").widths == (120, 222, 290, 458)
    assert get_spec("vgg11_dwr").stages == ((144,), (390,), (842,), (418, 512))
    assert get_spec("vgg_small_dwr").stages == ((106,), (252, 256), (512, 512))
    assert get_spec("resnet18_imagenet_dwr").depths == (2, 2, 2, 2)
    assert get_spec("resnet18_imagenet_dwr").widths == (96, 168, 378, 866)


@pytest.mark.parametrize("kwargs,field", [
    ({"name": "resnet21"}, "name"),
    ({"name": "resnet20", "binary": "yes"}, "binary"),
    ({"name": "resnet20", "width_mult": -1.0}, "width_mult"),
    ({"name": "resnet20", "depth_div": 2.0}, "s"),
    ({"name": "resnet20", "act": "gelu"}, "act"),
    ({"name": "resnet20", "input_binarizer": "scaled_sign"}, "input_binarizer"),
    ({"name": "resnet20", "colour": 1}, "spec field"),
])
def test_bad_arguments_raise_value_error(kwargs, field):
    with pytest.raises(ValueError, match=field):
        create_model(**kwargs)
