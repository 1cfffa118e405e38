"""Perceptual distance between image pairs: an offline LPIPS-style default, and LPIPS proper from local weights.

Default ("efficientnet_lite0-uncalibrated"): the form of LPIPS (Zhang et al. 2018, eq. 1) on the five feature stages
of the ImageNet EfficientNet-Lite0 at the images' own resolution: each feature vector unit-normalised over channels,
squared difference summed over channels, averaged over positions, then averaged over the five stages. Uncalibrated:
LPIPS learns a per-channel weight w_l on human judgements; here every w_l is 1, so values are comparable across
models on one dataset but are not LPIPS values.

LPIPS proper (`lpips_backbone=FILE`): the official v0.1 linear heads, which torchmetrics ships inside its package,
on an AlexNet or VGG-16 backbone read from a local torchvision ImageNet weights file (alexnet-owt-7be5be79.pth or
vgg16-397923af.pth); the backbone kind is told by the file's first convolution.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from translate.backbones.encoders import Normalize, build_encoder, freeze, read_state_dict

_BACKBONE_BY_FIRST_CONV = {(64, 3, 11, 11): "alex", (64, 3, 3, 3): "vgg"}


class FeatureDistance(nn.Module):
    """LPIPS-style distance with unit weights on a pretrained encoder's feature stages; see the module docstring."""

    def __init__(self, encoder: str = "efficientnet_lite0"):
        super().__init__()
        self.net = freeze(build_encoder(encoder, pretrained=True, features_only=True))
        self.normalize = Normalize(self.net)
        self.description = f"{encoder}-uncalibrated (LPIPS form, unit weights, {len(self.net.feature_info)} stages)"

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,) distances of images in [0, 1]."""
        fx = self.net(self.normalize(x))
        fy = self.net(self.normalize(y))
        per_stage = [(_unit(a) - _unit(b)).square().sum(1).mean((1, 2)) for a, b in zip(fx, fy)]
        return torch.stack(per_stage).mean(0)


def _unit(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return features / (features.square().sum(1, keepdim=True).sqrt() + eps)


class Lpips(nn.Module):
    """LPIPS v0.1 (official linear heads from torchmetrics) on a backbone from a local torchvision weights file."""

    def __init__(self, backbone_file: str | os.PathLike):
        super().__init__()
        from torchmetrics.functional.image.lpips import _LPIPS

        state = read_state_dict(backbone_file)
        first = state.get("features.0.weight")
        kind = _BACKBONE_BY_FIRST_CONV.get(tuple(first.shape)) if first is not None else None
        if kind is None:
            raise ValueError(f"{backbone_file} is not a torchvision AlexNet or VGG-16 state dict "
                             f"(no features.0.weight of shape (64, 3, 11, 11) or (64, 3, 3, 3))")
        self.net = _LPIPS(pretrained=True, net=kind, pnet_rand=True)  # random backbone: nothing is downloaded
        slices = self.net.net
        target = slices.state_dict()
        mapped = {}
        for key in target:  # sliceK.<index>.<param> holds torchvision's features.<index>.<param>
            source = "features." + key.split(".", 1)[1]
            if source not in state or state[source].shape != target[key].shape:
                raise ValueError(f"{backbone_file}: {source} missing or of the wrong shape for LPIPS-{kind}")
            mapped[key] = state[source]
        slices.load_state_dict(mapped)
        freeze(self.net)
        self.description = f"lpips-{kind} (v0.1 linear heads from torchmetrics, backbone {backbone_file})"

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,) distances of images in [0, 1]."""
        return self.net(x, y, normalize=True).flatten()


def build_perceptual(lpips_backbone: str | os.PathLike | None = None) -> nn.Module:
    return Lpips(lpips_backbone) if lpips_backbone else FeatureDistance()
