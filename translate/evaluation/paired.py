"""Metrics of predictions against their ground truth (pix2pix-style tasks); `translate eval paired`.

Files pair up by relative path without extension (pred/a/x.png ~ target/a/x.jpg); a file without a partner, or a
pair of different sizes, is an error naming the files. Per image, on RGB values in [0, 1], then averaged:
PSNR (10 log10(1 / MSE), capped at 100 dB so identical images keep the mean finite), SSIM (Wang et al. 2004:
11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03; torchmetrics), L1 (mean absolute difference), and a perceptual
distance (translate.evaluation.perceptual).
"""

from __future__ import annotations

import argparse
import os

import torch
from torch import nn

from translate.data.folders import GALLERY_DIR, match_pairs
from translate.evaluation.loading import HALVES, iter_batches, scored_images
from translate.evaluation.perceptual import build_perceptual
from translate.evaluation.report import add_common_arguments, print_json, resolve_device

PSNR_CAP_DB = 100.0


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) PSNR in dB of images in [0, 1], capped at PSNR_CAP_DB."""
    mse = (x - y).square().flatten(1).mean(1)
    return (10 * torch.log10(1 / mse.clamp_min(10 ** (-PSNR_CAP_DB / 10)))).clamp_max(PSNR_CAP_DB)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) SSIM of images in [0, 1], the mean over pixels and channels."""
    from torchmetrics.functional.image import structural_similarity_index_measure  # a 1-3 s import: only when used

    return structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")


def pair_scores(pred: torch.Tensor, target: torch.Tensor, perceptual: nn.Module) -> dict[str, torch.Tensor]:
    """Per-image scores of a batch of equal-size pairs in [0, 1]."""
    return {"psnr": psnr(pred, target), "ssim": ssim(pred, target),
            "l1": (pred - target).abs().flatten(1).mean(1), "perceptual": perceptual(pred, target)}


def mean_scores(batches, perceptual: nn.Module, device="cpu") -> dict[str, float]:
    """Averages over all pairs of an iterable of (pred, target) batches in [0, 1] (uint8 batches are scaled)."""
    totals: dict[str, float] = {}
    count = 0
    for pred, target in batches:
        pred, target = (_unit(t.to(device)) for t in (pred, target))
        if pred.shape != target.shape:
            raise ValueError(f"prediction and target batches differ in shape: {tuple(pred.shape)} vs "
                             f"{tuple(target.shape)}")
        for name, values in pair_scores(pred, target, perceptual).items():
            totals[name] = totals.get(name, 0.0) + float(values.double().sum())
        count += len(pred)
    if count == 0:
        raise ValueError("no image pairs to score")
    return {name: total / count for name, total in totals.items()}


def _unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


def scored_images_note(pred) -> list[dict]:
    """What the pairing left out of the predictions folder (a gallery's thumbnails), as report entries."""
    note: list = []
    scored_images(pred, note)
    return note


def paired_folders(pred: str | os.PathLike, target: str | os.PathLike, *, target_half: str | None = None,
                   lpips_backbone: str | None = None, batch_size: int = 32, device="cpu", workers: int = 0,
                   progress: bool = True) -> dict:
    """The full `translate eval paired` report."""
    try:
        pairs = match_pairs(pred, target, skip_dirs=(GALLERY_DIR,))
    except ValueError as err:
        raise ValueError(f"predictions do not pair up with targets (A = --pred, B = --target): {err}") from err
    perceptual = build_perceptual(lpips_backbone).to(device)
    skipped: list = []
    batches = ((p, t) for _, p, t in iter_batches(pairs, batch_size, [None, target_half], workers,
                                                  desc="pairs", progress=progress, skipped=skipped))
    scores = mean_scores(batches, perceptual, device)
    return {**scores, "perceptual_metric": perceptual.description, "psnr_cap_db": PSNR_CAP_DB,
            "ssim_window": "gaussian 11x11, sigma 1.5", "value_range": "[0, 1] RGB",
            "n_pairs": len(pairs) - len(skipped), "pred": str(pred), "target": str(target), "target_half": target_half,
            "skipped": scored_images_note(pred) + skipped}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "PSNR, SSIM, L1 and a perceptual distance of predictions against targets (JSON on stdout)."
    parser.add_argument("--pred", required=True, help="folder of predicted images")
    parser.add_argument("--target", required=True, help="folder of ground-truth images, same relative names")
    parser.add_argument("--target-half", choices=HALVES,
                        help="targets are side-by-side pix2pix files: compare with their left (A) or right (B) half")
    parser.add_argument("--lpips-backbone", help="torchvision AlexNet/VGG-16 ImageNet weights file: report LPIPS "
                                                 "proper instead of the uncalibrated EfficientNet-Lite0 distance")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    print_json(paired_folders(args.pred, args.target, target_half=args.target_half,
                              lpips_backbone=args.lpips_backbone, batch_size=args.batch_size,
                              device=resolve_device(args.device), workers=args.workers,
                              progress=not args.no_progress))
    return 0
