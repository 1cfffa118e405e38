"""Generator and discriminator backbones, layer-for-layer compatible with
pytorch-CycleGAN-and-pix2pix checkpoints."""

from .discriminators import (
    DISCRIMINATORS,
    ClassDiscriminator,
    DomainClassifier,
    NLayerDiscriminator,
    PixelDiscriminator,
    build_discriminator,
)
from .generators import (
    GENERATORS,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    UnetSkipConnectionBlock,
    build_generator,
)
from .layers import GradientReversal, MinibatchStd, init_weights, norm_layer, uses_bias

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "ClassDiscriminator",
    "DomainClassifier",
    "GradientReversal",
    "MinibatchStd",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "build_discriminator",
    "build_generator",
    "init_weights",
    "norm_layer",
    "uses_bias",
]
