"""Discriminators: the reference's PatchGAN and pixel critics, the projected discriminator (projected.py), plus the
small classifiers used by the Domain Transfer Network (DTN) and DANN.

``NLayerDiscriminator`` and ``PixelDiscriminator`` mirror pytorch-CycleGAN-and-pix2pix's
module hierarchy, so reference state dicts load with identical keys (unless the optional
spectral norm / minibatch-std extras are switched on, which change the keys by design).
All outputs are logits; the loss applies the sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from .layers import INIT_TYPES, GradientReversal, MinibatchStd, init_weights, norm_layer, uses_bias
from .projected import ProjectedDiscriminator


def _maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    return _sn(module) if enabled else module


class NLayerDiscriminator(nn.Module):
    """PatchGAN: classifies overlapping patches (70x70 at n_layers=3) as real or fake, which
    penalises local texture errors with far fewer parameters than a full-image critic.

    ``spectral_norm`` wraps every conv; ``minibatch_std`` inserts a MinibatchStd layer before
    the last conv (which then takes one more input channel).
    """

    def __init__(
        self,
        in_channels: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
        minibatch_std: bool = False,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        make_norm, bias = norm_layer(norm), uses_bias(norm)

        def conv(cin: int, cout: int, stride: int, with_bias: bool) -> nn.Module:
            return _maybe_sn(nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=with_bias), spectral_norm)

        layers = [conv(in_channels, ndf, 2, True), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [conv(ndf * prev, ndf * mult, 2, bias), make_norm(ndf * mult), nn.LeakyReLU(0.2)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [conv(ndf * prev, ndf * mult, 1, bias), make_norm(ndf * mult), nn.LeakyReLU(0.2)]
        if minibatch_std:
            layers.append(MinibatchStd())
        layers.append(conv(ndf * mult + int(minibatch_std), 1, 1, True))
        self.model = nn.Sequential(*layers)
        # n_layers stride-2 convs halve the side, the two stride-1 4x4 convs take 1 px each: 3 * 2**n_layers is the
        # smallest side that leaves a normalised map of 2 x 2 and a 1 x 1 output (the config's size check reads it).
        self.min_side = 3 * 2**n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges each pixel independently, i.e. only colour statistics."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: str = "batch", spectral_norm: bool = False):
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)

        def conv(cin: int, cout: int, with_bias: bool) -> nn.Module:
            return _maybe_sn(nn.Conv2d(cin, cout, 1, bias=with_bias), spectral_norm)

        self.net = nn.Sequential(
            conv(in_channels, ndf, True),
            nn.LeakyReLU(0.2),
            conv(ndf, 2 * ndf, bias),
            make_norm(2 * ndf),
            nn.LeakyReLU(0.2),
            conv(2 * ndf, 1, bias),  # the reference ties this bias to the norm too
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ClassDiscriminator(nn.Module):
    """k-way image classifier for the Domain Transfer Network, whose discriminator tells
    apart G(source), G(target) and real target images (num_classes=3).

    DCGAN-like stack of ``n_layers`` stride-2 4x4 convs, global average pooling, then a
    linear layer giving ``num_classes`` logits of shape (N, num_classes).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        make_norm, bias = norm_layer(norm), uses_bias(norm)

        def conv(cin: int, cout: int, with_bias: bool) -> nn.Module:
            return _maybe_sn(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=with_bias), spectral_norm)

        layers = [conv(in_channels, ndf, True), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [conv(ndf * prev, ndf * mult, bias), make_norm(ndf * mult), nn.LeakyReLU(0.2)]
        layers += [
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            _maybe_sn(nn.Linear(ndf * mult, num_classes), spectral_norm),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DomainClassifier(nn.Module):
    """DANN domain classifier on feature vectors, behind a gradient reversal layer.

    ``layers`` x (Linear, ReLU, Dropout(0.5)) then Linear -> one logit, shape (N, 1). Inputs
    with more than two dims are flattened. The training loop anneals ``self.grl.lambd``.
    """

    def __init__(self, in_features: int, hidden: int = 1024, layers: int = 2):
        super().__init__()
        if layers < 0:
            raise ValueError(f"layers must be >= 0, got {layers}")
        self.grl = GradientReversal()
        mlp: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            mlp += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(0.5)]
            width = hidden
        mlp.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.grl(x).flatten(1))


DISCRIMINATORS = {
    "patch": NLayerDiscriminator,
    "pixel": PixelDiscriminator,
    "class_d": ClassDiscriminator,
    "domain": DomainClassifier,
    "projected": ProjectedDiscriminator,
}


def build_discriminator(
    name: str,
    in_channels: int,
    init_type: str = "normal",
    init_gain: float = 0.02,
    **kw,
) -> nn.Module:
    """Construct a registered discriminator and initialise its weights.

    For "domain", ``in_channels`` is the feature dimension (in_features). For "projected" the init reaches only
    the trainable heads (spectrally normalised, so it sets directions, not scales); the fixed random projection
    keeps its own seeded draw.
    """
    if name not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {name!r}; valid: {', '.join(DISCRIMINATORS)}")
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown init type {init_type!r}; valid: {', '.join(INIT_TYPES)}")
    net = DISCRIMINATORS[name](in_channels, **kw)
    return init_weights(net, init_type, init_gain)
