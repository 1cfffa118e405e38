"""Generator and discriminator backbones, layer-for-layer compatible with
pytorch-CycleGAN-and-pix2pix checkpoints."""

from .digit_nets import DTNGenerator, EncoderClassifier, build_feature_encoder
from .discriminators import (
    DISCRIMINATORS,
    ClassDiscriminator,
    DomainClassifier,
    NLayerDiscriminator,
    PixelDiscriminator,
    build_discriminator,
)
from .encoders import ENCODERS, build_encoder, encoder_normalization, freeze
from .generators import (
    GENERATORS,
    PRETRAINED_GENERATORS,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    UnetSkipConnectionBlock,
    build_generator,
)
from .layers import GradientReversal, MinibatchStd, init_weights, norm_layer, uses_bias
from .pretrained_unet import PretrainedUnet
from .projected import ProjectedDiscriminator

__all__ = [
    "DISCRIMINATORS",
    "ENCODERS",
    "GENERATORS",
    "ClassDiscriminator",
    "DTNGenerator",
    "DomainClassifier",
    "EncoderClassifier",
    "GradientReversal",
    "MinibatchStd",
    "NLayerDiscriminator",
    "PRETRAINED_GENERATORS",
    "PixelDiscriminator",
    "PretrainedUnet",
    "ProjectedDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "build_discriminator",
    "build_encoder",
    "build_feature_encoder",
    "build_generator",
    "encoder_normalization",
    "freeze",
    "init_weights",
    "norm_layer",
    "uses_bias",
]
