"""Networks of the digit experiments (DANN's LeNet-style encoder, DTN's deconvolution g) and the two composites
that also take a timm encoder: `EncoderClassifier` (encoder + linear head: the classifier, DANN's F + label
predictor) and `DTNGenerator` (G = g(f(x)), exported with arch "dtn", which `load_generator` and so
`translate convert` rebuild like any other generator).

Every net here takes images in [-1, 1]; a timm encoder is wrapped so its own normalisation is applied inside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import Normalize, build_encoder


class LeNetEncoder(nn.Module):
    """DANN's MNIST feature extractor (Ganin et al. 2016, sec. 5.2.2 / fig. 4): conv 5x5 32 -> max-pool 2 ->
    conv 5x5 48 -> max-pool 2, then (ours) a fully connected embedding layer, so retrieval and DTN's f get a
    compact vector. BatchNorm after each layer (norm="batch") or none. Input: image_size x image_size."""

    def __init__(self, in_channels: int = 3, embedding_dim: int = 128, image_size: int = 32, norm: str = "batch"):
        super().__init__()
        if norm not in ("batch", "none"):
            raise ValueError(f"LeNetEncoder norm must be 'batch' or 'none', got {norm!r}")
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNetEncoder needs images of at least 16 px, got {image_size}")
        bn2 = nn.BatchNorm2d if norm == "batch" else (lambda n: nn.Identity())
        bn1 = nn.BatchNorm1d if norm == "batch" else (lambda n: nn.Identity())
        self.embedding_dim, self.image_size = embedding_dim, image_size
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5), bn2(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 5), bn2(48), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(48 * side * side, embedding_dim), bn1(embedding_dim), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DTNEncoder(nn.Module):
    """DTN's f for digits (Taigman et al. 2017, sec. 5.1): four convolutions of 64, 128, 256 and 128 filters, each
    followed by BatchNorm; 3x3 stride 2 down to 4x4, then 4x4 valid to a 1x1 code; ReLU between, tanh on the code,
    so the f-constancy distance compares bounded vectors. 32 px input."""

    def __init__(self, in_channels: int = 3, embedding_dim: int = 128, image_size: int = 32, norm: str = "batch"):
        super().__init__()
        if image_size != 32:
            raise ValueError(f"DTNEncoder reads 32 px images, got image_size={image_size}")
        if norm not in ("batch", "none"):
            raise ValueError(f"DTNEncoder norm must be 'batch' or 'none', got {norm!r}")
        bn = nn.BatchNorm2d if norm == "batch" else (lambda n: nn.Identity())
        self.embedding_dim, self.image_size = embedding_dim, image_size
        layers, width = [], in_channels
        for out in (64, 128, 256):
            layers += [nn.Conv2d(width, out, 3, 2, 1), bn(out), nn.ReLU()]
            width = out
        self.net = nn.Sequential(*layers, nn.Conv2d(width, embedding_dim, 4), bn(embedding_dim), nn.Tanh(),
                                 nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TimmEncoder(nn.Module):
    """A timm encoder's pooled embedding for [-1, 1] inputs: rescaled to the normalisation its weights expect."""

    def __init__(self, name: str = "efficientnet_lite0", pretrained=False, image_size: int = 224):
        super().__init__()
        self.model = build_encoder(name, pretrained=pretrained)
        self.normalize = Normalize(self.model)
        self.embedding_dim, self.image_size = self.model.num_features, image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize((x + 1) / 2))


FEATURE_ENCODERS = {"lenet": LeNetEncoder, "dtn": DTNEncoder}


def build_feature_encoder(arch: str, pretrained=False, **kwargs) -> nn.Module:
    """"lenet" or "dtn" (kwargs: in_channels, embedding_dim, image_size, norm) or "timm:NAME" (kwargs: image_size;
    pretrained: True = the registered offline weights, a path = that file, False = random)."""
    if arch in FEATURE_ENCODERS:
        if pretrained:
            raise ValueError(f"encoder {arch!r} has no pretrained weights; train a classifier instead")
        return FEATURE_ENCODERS[arch](**kwargs)
    if arch.startswith("timm:"):
        return TimmEncoder(arch.removeprefix("timm:"), pretrained=pretrained, **kwargs)
    raise ValueError(f"unknown encoder {arch!r}; valid: {', '.join(FEATURE_ENCODERS)} or timm:<timm model name>")


class EncoderClassifier(nn.Module):
    """encoder -> linear head. forward gives logits, or (embedding, logits) with return_features=True so DANN
    gets both from ONE forward (two forwards of a DDP-wrapped net before one backward are an error)."""

    def __init__(self, encoder: dict, num_classes: int, hidden: int = 0, pretrained=False):
        super().__init__()
        self.encoder = build_feature_encoder(encoder["arch"], pretrained=pretrained, **encoder.get("kwargs", {}))
        width = self.encoder.embedding_dim
        layers = [nn.Linear(width, hidden), nn.ReLU()] if hidden else []  # DANN's extra fc100 of the predictor
        self.head = nn.Sequential(*layers, nn.Linear(hidden or width, num_classes))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.encoder(x)
        logits = self.head(features)
        return (features, logits) if return_features else logits


class DTNDecoder(nn.Module):
    """DTN's g for digits (Taigman et al. 2017, sec. 5.1): the embedding as a 1x1 map, a 4x4 transposed conv,
    then stride-2 transposed convs with BatchNorm + ReLU up to image_size, tanh output in [-1, 1]."""

    def __init__(self, embedding_dim: int, out_channels: int = 3, ngf: int = 64, image_size: int = 32):
        super().__init__()
        ups = image_size.bit_length() - 3  # 4 -> 8 -> ... -> image_size
        if image_size < 8 or image_size != 4 << ups:
            raise ValueError(f"DTNDecoder image_size must be a power of two >= 8, got {image_size}")
        width = ngf * 2 ** (ups - 1)
        layers = [nn.ConvTranspose2d(embedding_dim, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
                       nn.ReLU()]
            width //= 2
        layers += [nn.ConvTranspose2d(width, out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.flatten(1)[:, :, None, None])


class DTNGenerator(nn.Module):
    """G = g(f(x)). Any input size works: x is resized to the encoder's image_size and G(x) back to x's size
    (bilinear), so `translate convert` keeps image sizes. f is only trained elsewhere (DTN keeps it frozen)."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, out_channels: int = 3, encoder: dict | None = None, ngf: int = 64):
        super().__init__()
        self.in_channels = in_channels
        encoder = encoder or {"arch": "lenet", "kwargs": {"in_channels": in_channels}}
        self.f = build_feature_encoder(encoder["arch"], **encoder.get("kwargs", {}))
        self.image_size = self.f.image_size
        self.g = DTNDecoder(self.f.embedding_dim, out_channels, ngf, self.image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = resize(x, self.image_size)
        return resize(self.g(self.f(x)), size)


def resize(x: torch.Tensor, size) -> torch.Tensor:
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)

