"""Feature extractors for FID/KID and the ImageNet classifier: frozen networks that take images in [0, 1].

`efficientnet_lite0` (the default, always available offline): pooled 1280-d penultimate features of the ImageNet
EfficientNet-Lite0 (translate.backbones.encoders), after a bilinear antialiased resize to 224x224. Its FID is on its
own scale: compare it across models and checkpoints, never with FID values published with Inception features.

`inception` (the features of published FID numbers): the TF-ported FID Inception-v3 (pool3, 2048-d) that
torch-fidelity implements, via torchmetrics, loaded from a local copy of its weights file
(pt_inception-2015-12-05-6726825d.pth, the file pytorch-fid and torch-fidelity download), resized to 299x299 with
torch-fidelity's TensorFlow-1-compatible bilinear interpolation as the original TTUR code does. Needs the package
torch-fidelity; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from translate.backbones.encoders import (
    ENCODERS,
    Normalize,
    build_encoder,
    encoder_normalization,
    freeze,
    read_state_dict,
)
from translate.evaluation.cache import file_sha256

FEATURES = ("efficientnet_lite0", "inception")
INCEPTION_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
RESIZE_ANTIALIAS = "bilinear with antialias (torch.nn.functional.interpolate), to a square, aspect ratio not kept"


class EncoderInput(nn.Module):
    """Resize to image_size x image_size, normalise as the encoder's weights expect, run the frozen encoder."""

    def __init__(self, net: nn.Module, image_size: int):
        super().__init__()
        self.net, self.image_size = freeze(net), image_size
        self.normalize = Normalize(net)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.image_size, self.image_size), mode="bilinear",
                          antialias=True, align_corners=False)
        return self.net(self.normalize(x))


def build_features(name: str = "efficientnet_lite0", weights: str | os.PathLike | None = None,
                   image_size: int | None = None) -> nn.Module:
    """A frozen (N, 3, H, W) in [0, 1] -> (N, D) extractor with `num_features` and a `description` dict for
    reports and cache keys; `weights` replaces the default weights (required for inception)."""
    if name == "inception":
        if image_size not in (None, 299):
            raise ValueError("inception features use the network's own input size 299; do not set an image size")
        return InceptionFeatures(weights)
    if name not in ENCODERS:
        raise ValueError(f"unknown features {name!r}; valid: {', '.join(FEATURES)}")
    size = image_size or 224
    net = EncoderInput(build_encoder(name, pretrained=weights or True), size)
    net.num_features = net.net.num_features
    net.description = {"features": name, "feature_dim": net.num_features, "weights": _weights_id(net.net),
                       "image_size": size, "resize": RESIZE_ANTIALIAS,
                       "normalization": dict(zip(("mean", "std"), encoder_normalization(net.net)))}
    return net


def build_classifier(name: str = "efficientnet_lite0", image_size: int = 224) -> nn.Module:
    """The encoder's ImageNet classifier with the same preprocessing: (N, 3, H, W) in [0, 1] -> (N, 1000) logits."""
    net = EncoderInput(build_encoder(name, pretrained=True, num_classes=ENCODERS[name].num_classes), image_size)
    net.description = {"classifier": name, "weights": _weights_id(net.net), "image_size": image_size,
                       "resize": RESIZE_ANTIALIAS}
    return net


class InceptionFeatures(nn.Module):
    """FID Inception-v3 pool3 features from a local weights file; see the module docstring."""

    def __init__(self, weights: str | os.PathLike | None):
        super().__init__()
        if weights is None:
            raise ValueError(f"inception features need the FID Inception weights file ({INCEPTION_WEIGHTS_NAME}, "
                             f"as used by pytorch-fid and torch-fidelity); pass its path with --weights FILE")
        path = Path(weights)
        read_state_dict(path)  # a missing file or one that needs code execution to unpickle fails here, clearly
        try:
            import torch_fidelity  # noqa: F401
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError as err:
            raise ValueError("inception features need the package torch-fidelity (pip install torch-fidelity)") \
                from err
        try:  # torch-fidelity re-reads the file; it was just proven loadable without executing code
            self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                          feature_extractor_weights_path=str(path), antialias=False)
        except RuntimeError as err:
            raise ValueError(f"weights file {path} is not the FID Inception-v3 ({INCEPTION_WEIGHTS_NAME}): "
                             f"{str(err).splitlines()[0]}") from err
        self.num_features = 2048
        self.description = {
            "features": "inception", "feature_dim": 2048, "weights": _file_id(path), "image_size": 299,
            "implementation": "torch-fidelity FeatureExtractorInceptionV3 (TF-ported FID Inception, pool3)",
            "resize": "TensorFlow-1-compatible bilinear (torch-fidelity), no antialias, to 299x299, "
                      "aspect ratio not kept",
            "normalization": "(x - 128) / 128 on 8-bit values"}

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images * 255).round().to(torch.uint8))


@torch.no_grad()
def extract(net: nn.Module, batches: Iterable[torch.Tensor], device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, D) float64 features on the CPU of image batches in [0, 1] (uint8 batches are scaled to [0, 1])."""
    out = []
    for batch in batches:
        batch = batch.to(device)
        batch = batch.float() / 255 if batch.dtype == torch.uint8 else batch
        out.append(net(batch).double().cpu())
    if not out:
        raise ValueError("no images to extract features from")
    return torch.cat(out)


def _weights_id(net: nn.Module) -> str:
    path = (getattr(net, "pretrained_cfg", None) or {}).get("file")
    return _file_id(Path(path)) if path else "random init"


def _file_id(path: Path) -> str:
    """Path and content hash: weights replaced in place, even with their size and mtime kept, change the cache key
    (see translate.evaluation.cache)."""
    return f"{path.resolve()} (sha256 {file_sha256(path)})"
