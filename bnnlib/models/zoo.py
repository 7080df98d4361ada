"""Registered backbones: originals and the DWR backbones of the authors' public code."""
from __future__ import annotations

from ..spec import ResNetSpec, VGGSpec
from . import register

_R = ResNetSpec.uniform


# ---- CIFAR ResNet-20: Bi-Real style (shortcut around every binary conv), option-A shortcuts.
@register
def resnet20():
    """ResNet-20 'with the additional shortcut' (the paper's ablation backbone)."""
    return _R((3, 3, 3), (16, 32, 64), stem_width=16, block="bireal", shortcut="pad")


@register
def resnet20_dwr():
    """Authors' DWR ResNet-20 (s=3): 1 block/stage, 16/78/134, binary align 134->64, BN1d head."""
    return _R((1, 1, 1), (16, 78, 134), stem_width=16, block="basic", shortcut="pad",
              align_width=64, head_bn=True)


@register
def resnet20_react():
    """ResNet-20 with ReActNet's RSign and RPReLU and scaled weights."""
    return _R((3, 3, 3), (16, 32, 64), stem_width=16, block="bireal", shortcut="pad",
              input_binarizer="rsign", weight_binarizer="scaled_sign", act="rprelu")


@register
def resnet20_dwr_react():
    """Authors' DWR ResNet-20 + ReActNet: 30/86/154, align 154->64, RSign + RPReLU."""
    return _R((1, 1, 1), (30, 86, 154), stem_width=16, block="basic", shortcut="pad",
              align_width=64, head_bn=True, input_binarizer="rsign",
              weight_binarizer="scaled_sign", act="rprelu")


# ---- CIFAR ResNet-18 (He et al. basic blocks, real 1x1 conv + BN downsampling).
@register
def resnet18():
    return _R((2, 2, 2, 2), (64, 128, 256, 512), stem_width=64, block="basic", shortcut="conv")


@register
def resnet18_dwr():
    """Authors' DWR ResNet-18 (s=2): 1 block/stage, 120/222/290/458, BN1d head."""
    return _R((1, 1, 1, 1), (120, 222, 290, 458), stem_width=64, block="basic", shortcut="conv",
              head_bn=True)


# ---- VGG-Small (Zhang et al. 2018, LQ-Nets) and VGG-11.
@register
def vgg_small():
    return VGGSpec(stem_width=128, stages=((128,), (256, 256), (512, 512)))


@register
def vgg_small_dwr():
    """Authors' DWR VGG-Small ('Original+1', Table 7): 106, 252/256, 512/512, align 512."""
    return VGGSpec(stem_width=128, stages=((106,), (252, 256), (512, 512)), align_width=512)


@register
def vgg11():
    return VGGSpec(stem_width=64, stem_pool=True, stages=((128,), (256, 256), (512, 512), (512, 512)),
                   fc=(4096, 4096))


@register
def vgg11_dwr():
    """Authors' DWR VGG-11 (s=2): M, 144, M, 390, M, 842, M, 418, 512, M."""
    return VGGSpec(stem_width=64, stem_pool=True, stages=((144,), (390,), (842,), (418, 512)),
                   fc=(4096, 4096))


# ---- ImageNet Bi-Real-18: one binary conv per block, avg-pool + real 1x1 downsampling.
def _bireal18(depths, widths):
    return _R(depths, widths, convs_per_block=1, stem="imagenet", stem_width=64, block="bireal",
              shortcut="avgpool_conv", act="identity", num_classes=1000, input_size=224,
              weight_binarizer="scaled_sign")


@register
def resnet18_imagenet():
    """Bi-Real Net ResNet-18 (four one-conv blocks per stage)."""
    return _bireal18((4, 4, 4, 4), (64, 128, 256, 512))


@register
def resnet18_imagenet_dwr():
    """Authors' DWR Bi-Real-18: two blocks per stage, 96/168/378/866."""
    return _bireal18((2, 2, 2, 2), (96, 168, 378, 866))


# Which registered backbone is the DWR version of which original (s used by the authors).
DWR_PAIRS = {
    "resnet20": ("resnet20_dwr", 3.0),
    "resnet18": ("resnet18_dwr", 2.0),
    "vgg_small": ("vgg_small_dwr", 1.0),
    "vgg11": ("vgg11_dwr", 2.0),
    "resnet18_imagenet": ("resnet18_imagenet_dwr", 2.0),
}
