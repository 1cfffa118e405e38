"""ResNet and U-Net generators of pytorch-CycleGAN-and-pix2pix, and a feature tap on the ResNet's layers (CUT).

Module hierarchy and attribute names mirror the reference exactly, so its state dicts load
with identical keys. Activations are not in-place (the reference's are), which keeps
autograd and torch.compile safe; the one place where in-place changed the result (the U-Net
skip) is reproduced explicitly.
"""

from __future__ import annotations

import functools
from itertools import islice
from typing import Sequence

import torch
from torch import nn

from .layers import INIT_TYPES, init_weights, norm_layer, uses_bias
from .pretrained_unet import PretrainedUnet

PADDINGS = ("reflect", "replicate", "zero")


def _pad(padding: str) -> tuple[list[nn.Module], int]:
    """Explicit pad module(s) plus the conv's own padding for a 3x3 conv."""
    if padding == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding == "zero":
        return [], 1
    raise ValueError(f"unknown padding {padding!r}; valid: {', '.join(PADDINGS)}")


class ResnetBlock(nn.Module):
    """Two 3x3 convs with a residual connection; ``conv_block`` holds the residual branch."""

    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False, padding: str = "reflect"):
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        pad, p = _pad(padding)
        layers = [*pad, nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        pad, p = _pad(padding)
        layers += [*pad, nn.Conv2d(dim, dim, 3, padding=p, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Johnson et al. style encoder / residual blocks / decoder (CycleGAN's default).

    Two stride-2 downsamplings, so input sides must be multiples of ``size_multiple`` (4)
    for the output to have the input's size.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        n_blocks: int = 9,
        padding: str = "reflect",
    ):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        _pad(padding)  # validate early, even when n_blocks == 0
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        n_down = 2
        self.size_multiple = 2**n_down
        self.min_side = 2 * self.size_multiple  # the residual blocks reflect-pad by 1: 2 px at 1/4 scale

        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU()]
        for i in range(n_down):
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), make_norm(2 * c), nn.ReLU()]
        c = ngf * 2**n_down
        layers += [ResnetBlock(c, norm, dropout, padding) for _ in range(n_blocks)]
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(c // 2),
                nn.ReLU(),
            ]
        # The output conv always has a bias: no norm follows it.
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down, ``submodule`` (the deeper levels), up, then concatenate
    the level's input as a skip (except at the outermost level).

    Layer order inside ``model`` is the reference's, so state-dict indices match:
      outermost: [downconv, submodule, uprelu, upconv, tanh]
      innermost: [downrelu, downconv, uprelu, upconv, upnorm]
      middle:    [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm, (dropout)]
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        if outermost and innermost:
            raise ValueError("a block cannot be both outermost and innermost")
        if (submodule is None) != innermost:
            raise ValueError("exactly the innermost block has no submodule")
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)

        def upconv(in_nc: int, with_bias: bool) -> nn.ConvTranspose2d:
            return nn.ConvTranspose2d(in_nc, outer_nc, 4, stride=2, padding=1, bias=with_bias)

        if outermost:
            layers = [downconv, submodule, nn.ReLU(), upconv(2 * inner_nc, True), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2), downconv, nn.ReLU(), upconv(inner_nc, bias), make_norm(outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2), downconv, make_norm(inner_nc), submodule]
            layers += [nn.ReLU(), upconv(2 * inner_nc, bias), make_norm(outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The reference's first layer is an in-place LeakyReLU, so its skip carries
        # LeakyReLU(x), not x. Reproduce that without mutating x. (Every parent applies a
        # ReLU to this output, which hides the difference in the generator's output and
        # gradients, but the block itself stays identical to the reference.)
        h = self.model[0](x)
        y = h
        for layer in islice(self.model, 1, None):
            y = layer(y)
        return torch.cat([h, y], dim=1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net: ``num_downs`` stride-2 levels, so input sides must be multiples of
    ``size_multiple`` = 2**num_downs (256 for unet_256), down to a 1x1 bottleneck.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        norm_layer(norm)  # validate before building anything
        self.size_multiple = 2**num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            out_channels, ngf, input_nc=in_channels, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def encoder_features(generator: ResnetGenerator, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
    """The outputs of ``generator.model[i]`` for each i in ``layers`` (increasing indices into the Sequential), for
    losses on the encoder's features (CUT's PatchNCE). The Sequential runs only up to the last listed layer."""
    if not isinstance(generator, ResnetGenerator):
        raise TypeError(f"feature taps need a ResnetGenerator, got {type(generator).__name__}")
    layers = list(layers)
    if not layers or layers != sorted(set(layers)) or layers[0] < 0 or layers[-1] >= len(generator.model):
        raise ValueError(f"layers must be increasing indices below {len(generator.model)}, got {layers}")
    features = []
    for i, layer in enumerate(islice(generator.model, layers[-1] + 1)):
        x = layer(x)
        if i in layers:
            features.append(x)
    return features


# Encoder weights from an installed package (pretrained_unet.py); an export rebuilds them with pretrained=False.
PRETRAINED_GENERATORS = {
    "unet_lite1": functools.partial(PretrainedUnet, encoder="efficientnet_lite1"),
    "unet_lite2": functools.partial(PretrainedUnet, encoder="efficientnet_lite2"),
}
GENERATORS = {
    "resnet_9blocks": functools.partial(ResnetGenerator, n_blocks=9),
    "resnet_6blocks": functools.partial(ResnetGenerator, n_blocks=6),
    "unet_256": functools.partial(UnetGenerator, num_downs=8),
    "unet_128": functools.partial(UnetGenerator, num_downs=7),
    **PRETRAINED_GENERATORS,
}


def build_generator(
    name: str,
    in_channels: int = 3,
    out_channels: int = 3,
    init_type: str = "normal",
    init_gain: float = 0.02,
    **kw,
) -> nn.Module:
    """Construct a registered generator (kwargs such as ngf, norm, dropout pass through) and
    initialise its weights; a pretrained encoder keeps its weights, only the decoder is initialised."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; valid: {', '.join(GENERATORS)}")
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown init type {init_type!r}; valid: {', '.join(INIT_TYPES)}")
    net = GENERATORS[name](in_channels, out_channels, **kw)
    init_weights(net.decoder if isinstance(net, PretrainedUnet) else net, init_type, init_gain)
    return net
