"""One call for the training loop: `evaluate(metric, fake, ...)` -> a dict of floats to log.

Generated images come as tensors in the generators' range [-1, 1] (one tensor, or an iterable of batch tensors),
or as a folder. They are rounded to 8-bit levels first, so a score matches the one `translate eval` gives for the
saved PNGs. Networks are built once per process (per features, weights, device) and real-folder features are
cached on disk (translate.evaluation.cache), so calling this every few thousand steps costs only the forward passes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterable, Union

import torch
from torch import nn

from translate.evaluation.features import build_classifier, build_features, extract
from translate.evaluation.fid import KID_SUBSET_SIZE, KID_SUBSETS, fid_kid, folder_features
from translate.evaluation.imagenet_class import class_scores, probabilities, resolve_classes
from translate.evaluation.loading import iter_batches, scored_images, unit_batches
from translate.evaluation.paired import mean_scores
from translate.evaluation.perceptual import build_perceptual

Images = Union[str, os.PathLike, torch.Tensor, Iterable[torch.Tensor]]
METRICS = ("fid", "paired", "imagenet_class")


def evaluate(metric: str, fake: Images, *, real: Images | None = None, real_half: str | None = None,
             target: Images | None = None, imagenet_class: str | int | None = None,
             features: str = "efficientnet_lite0", weights: str | None = None,
             value_range: tuple[float, float] = (-1.0, 1.0), batch_size: int = 32, device: str | torch.device = "cpu",
             use_cache: bool = True, seed: int = 0, real_features: torch.Tensor | None = None) -> dict[str, float]:
    """Score generated images `fake`.

    fid:            needs `real` (a folder, cached, or tensors) -> fid, kid_mean, kid_std; `real_half="left"`
                    takes the A side of pix2pix side-by-side files in a real folder; or `real_features`, the
                    features of `real` from features_of_real(), for scoring against one fixed set many times
    paired:         needs `target` (same order and sizes as `fake`) -> psnr, ssim, l1, perceptual
    imagenet_class: needs `imagenet_class` (name or index) -> mean_prob, top1, top5
    """
    device = str(device)
    if metric == "fid":
        if real is None and real_features is None:
            raise ValueError("evaluate('fid', ...) needs real=FOLDER, real images or real_features")
        net = _features(features, weights, device)
        if real_features is None:
            real_features = _features_of(real, net, batch_size, device, value_range, use_cache, real_half)
        fake_features = _features_of(fake, net, batch_size, device, value_range, False, None)
        scores = fid_kid(real_features, fake_features, KID_SUBSETS, KID_SUBSET_SIZE, seed)
        return {k: scores[k] for k in ("fid", "kid_mean", "kid_std")}
    if metric == "paired":
        if target is None:
            raise ValueError("evaluate('paired', ...) needs target=... in the same order as the predictions")
        pairs = zip(_batches(fake, batch_size, value_range), _batches(target, batch_size, value_range))
        return mean_scores(pairs, _perceptual(device), device)
    if metric == "imagenet_class":
        if imagenet_class is None:
            raise ValueError("evaluate('imagenet_class', ...) needs imagenet_class='zebra' (or an index)")
        indices, _ = resolve_classes(imagenet_class)
        return class_scores(probabilities(_classifier(device), _batches(fake, batch_size, value_range), device),
                            indices)
    raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")


def features_of_real(real: Images, *, features: str = "efficientnet_lite0", weights: str | None = None,
                     value_range: tuple[float, float] = (-1.0, 1.0), batch_size: int = 32,
                     device: str | torch.device = "cpu", use_cache: bool = True,
                     real_half: str | None = None) -> torch.Tensor:
    """The FID features of a real set, for evaluate("fid", ..., real_features=...)."""
    device = str(device)
    return _features_of(real, _features(features, weights, device), batch_size, device, value_range, use_cache,
                        real_half)


def _batches(images: Images, batch_size: int, value_range) -> Iterable[torch.Tensor]:
    """Batches in [0, 1] (or uint8 for folders) of a folder, a tensor or an iterable of tensors."""
    if isinstance(images, (str, os.PathLike)):
        files = scored_images(images)
        return (b for _, b in iter_batches([[f] for f in files], batch_size, progress=False))
    return unit_batches(images, batch_size, value_range)


def _features_of(images: Images, net: nn.Module, batch_size: int, device: str, value_range, use_cache: bool,
                 half: str | None) -> torch.Tensor:
    if isinstance(images, (str, os.PathLike)):
        return folder_features(Path(images), net, batch_size=batch_size, device=device, half=half,
                               use_cache=use_cache, progress=False)[0]
    return extract(net, _batches(images, batch_size, value_range), device)


@functools.lru_cache(maxsize=4)
def _features(name: str, weights: str | None, device: str) -> nn.Module:
    return build_features(name, weights).to(device)


@functools.lru_cache(maxsize=2)
def _classifier(device: str) -> nn.Module:
    return build_classifier().to(device)


@functools.lru_cache(maxsize=2)
def _perceptual(device: str) -> nn.Module:
    return build_perceptual().to(device)
