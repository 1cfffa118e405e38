"""FID and KID between a folder of real images and generated images; `translate eval fid`.

FID (Heusel et al. 2017, eq. 6): the Frechet distance between Gaussians fitted to the two feature sets,
||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), computed in float64. It is biased for small sets, and
with fewer images than feature dimensions the covariances are rank-deficient: compare FIDs only at equal counts.
KID (Binkowski et al. 2018, sec. 3 / appendix D): the unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random subsets of `subset_size` images per side (100 x 100 by
default; half the smaller set when it holds fewer than 200: horse2zebra's test sets have 120-140 images); the
standard deviation over subsets comes with it; subsets come from a seeded generator, so the numbers repeat. Both
are computed here rather than with torchmetrics' FrechetInceptionDistance / KernelInceptionDistance, which are
slow at these sizes (see the two functions), and the tests check them against torchmetrics (and FID against
scipy). Features are extracted here too: batched, and cached for the real folder.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path

import torch
from torch import nn

from translate.evaluation import cache
from translate.evaluation.features import FEATURES, build_features, extract
from translate.evaluation.loading import HALVES, iter_batches, scored_images
from translate.evaluation.report import add_common_arguments, print_json, resolve_device

log = logging.getLogger(__name__)

KID_SUBSETS = 100
KID_SUBSET_SIZE = 100
KID_CHUNK = 10  # subsets per batched product: bounds memory to 2 x 10 x m x D doubles


FEW_IMAGES = 50  # below this many images per side FID's bias dominates differences between models


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two (N, D) feature sets, in float64.

    With S_r = A^T A and S_f = B^T B (A, B: centred features / sqrt(n - 1)), Tr((S_r S_f)^1/2) is the sum of the
    singular values of A B^T, an n_r x n_f matrix: exact, real-valued, and far cheaper than a D x D
    eigendecomposition when the sets are smaller than D (1,280 for EfficientNet-Lite0, 2,048 for Inception), which
    at 100-1,000 images they always are. torchmetrics uses a general (complex) eigensolver on the D x D product
    S_r S_f: seconds per call at D = 1,280, and -1.3e-5 for a set against itself (measured). Larger sets use the
    symmetric D x D form Tr((S_r^1/2 S_f S_r^1/2)^1/2).
    """
    _check_sets(real, fake, 2)
    r, f = real.double(), fake.double()
    a = (r - r.mean(0)) / math.sqrt(len(r) - 1)
    b = (f - f.mean(0)) / math.sqrt(len(f) - 1)
    if len(a) * len(b) <= a.shape[1] ** 2:
        cross = torch.linalg.svdvals(a @ b.T).sum()
    else:
        values, vectors = torch.linalg.eigh(a.T @ a)
        root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
        cross = torch.linalg.eigvalsh(root @ (b.T @ b) @ root).clamp_min(0).sqrt().sum()
    value = (r.mean(0) - f.mean(0)).square().sum() + a.square().sum() + b.square().sum() - 2 * cross
    return max(float(value), 0.0)  # round-off can leave about -1e-12 for identical sets


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS,
                    subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of KID over random subsets, in float64, from a seeded generator (the global RNG is untouched).

    The same estimator as torchmetrics' KernelInceptionDistance (unbiased MMD^2, cubic kernel, subsets drawn without
    replacement within a subset), with the subsets computed ten at a time as batched matrix products instead of a
    Python loop over subsets of small products and sums, as torchmetrics does.
    """
    _check_sets(real, fake, subset_size)
    g = torch.Generator().manual_seed(seed)
    r, f, m = real.double(), fake.double(), subset_size
    values = []
    for start in range(0, subsets, KID_CHUNK):
        count = min(KID_CHUNK, subsets - start)
        x = r[torch.rand(count, len(r), generator=g).argsort(1)[:, :m]]  # (count, m, D)
        y = f[torch.rand(count, len(f), generator=g).argsort(1)[:, :m]]
        kxx, kyy, kxy = _cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y)
        within = (kxx.sum((1, 2)) - kxx.diagonal(dim1=1, dim2=2).sum(1) + kyy.sum((1, 2))
                  - kyy.diagonal(dim1=1, dim2=2).sum(1)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean((1, 2)))
    values = torch.cat(values)
    return float(values.mean()), float(values.std(unbiased=False))


def _cubic_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x.y / d + 1)^3 for batches of subsets (S, m, D) -> (S, m, m)."""
    return (x @ y.transpose(1, 2) / x.shape[-1] + 1) ** 3


def fid_kid(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int = KID_SUBSETS,
            kid_subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> dict:
    """FID and KID of two feature sets. Sets smaller than two subsets use subsets of half the smaller set: subsets
    as large as the set would all be the same images, and the KID standard deviation would always read 0."""
    smaller = min(len(real), len(fake))
    size = kid_subset_size if smaller >= 2 * kid_subset_size else max(2, smaller // 2)
    kid_mean, kid_std = kernel_distance(real, fake, kid_subsets, size, seed)
    return {"fid": frechet_distance(real, fake), "kid_mean": kid_mean, "kid_std": kid_std,
            "kid_subsets": kid_subsets, "kid_subset_size": size}


def folder_features(folder: str | os.PathLike, net: nn.Module, *, batch_size: int = 32, device="cpu",
                    workers: int = 0, half: str | None = None, use_cache: bool = False, progress: bool = True,
                    skipped: list | None = None) -> tuple[torch.Tensor, str]:
    """(N, D) features of every readable image under `folder` and the cache status ("hit", "miss" or "off");
    unreadable images are appended to `skipped` (see loading.iter_batches)."""
    files = scored_images(folder, skipped)
    key = cache.folder_key(folder, files, net.description, half=half) if use_cache else None
    if key is not None:
        cached = cache.load_features(key)
        if cached is not None and len(cached) == len(files):
            log.info("reference features of %s from the cache (%d images)", folder, len(files))
            return cached, "hit"
    unreadable: list = []
    batches = (images for _, images in iter_batches([[f] for f in files], batch_size, [half], workers,
                                                    desc=f"features {Path(folder).name}", progress=progress,
                                                    skipped=unreadable))
    features = extract(net, batches, device)
    if skipped is not None:
        skipped += unreadable
    if key is not None and not unreadable:
        cache.save_features(key, features, {"folder": str(Path(folder).resolve()), **net.description})
    return features, "off" if key is None else "miss"


def fid_folders(real: str | os.PathLike, fake: str | os.PathLike, *, features: str = "efficientnet_lite0",
                weights: str | None = None, image_size: int | None = None, real_half: str | None = None,
                fake_half: str | None = None, batch_size: int = 32, device="cpu", workers: int = 0,
                use_cache: bool = True, kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
                seed: int = 0, progress: bool = True) -> dict:
    """The full `translate eval fid` report: scores plus how they were computed."""
    net = build_features(features, weights, image_size).to(device)
    common = dict(batch_size=batch_size, device=device, workers=workers, progress=progress)
    skipped: list = []
    real_features, status = folder_features(real, net, half=real_half, use_cache=use_cache, skipped=skipped,
                                            **common)
    fake_features, _ = folder_features(fake, net, half=fake_half, skipped=skipped, **common)
    scores = fid_kid(real_features, fake_features, kid_subsets, kid_subset_size, seed)
    warnings = []
    if min(len(real_features), len(fake_features)) < FEW_IMAGES:
        warnings.append(f"FID from {len(real_features)} real and {len(fake_features)} generated images is strongly "
                        f"biased (fewer than {FEW_IMAGES}): compare runs on the same sets only, and prefer KID")
    for warning in warnings:
        log.warning(warning)
    return {**scores, **net.description, "kid_seed": seed, "real": str(real), "fake": str(fake),
            "real_half": real_half, "fake_half": fake_half, "n_real": len(real_features), "n_fake": len(fake_features),
            "reference_cache": status, "skipped": skipped, "warnings": warnings}


def _check_sets(real: torch.Tensor, fake: torch.Tensor, least: int) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with one D, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if min(len(real), len(fake)) < max(least, 2):
        raise ValueError(f"need at least {max(least, 2)} images per set, got {len(real)} real and {len(fake)} fake")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "FID and KID of generated images against real images (one JSON object on stdout)."
    parser.add_argument("--real", required=True, help="folder of real (reference) images, searched recursively")
    parser.add_argument("--fake", required=True, help="folder of generated images, searched recursively")
    parser.add_argument("--features", default="efficientnet_lite0", choices=FEATURES,
                        help="efficientnet_lite0 (offline default, its own FID scale) or inception (the features "
                             "of published FID values; needs --weights and the torch-fidelity package)")
    parser.add_argument("--weights", help="weights file for the features (inception: "
                                          "pt_inception-2015-12-05-6726825d.pth)")
    parser.add_argument("--image-size", type=int, help="input size for efficientnet_lite0 features (default 224)")
    parser.add_argument("--real-half", choices=HALVES, help="use one half of side-by-side real files (pix2pix "
                                                            "aligned sets: left = A, right = B)")
    parser.add_argument("--fake-half", choices=HALVES, help="the same for the generated files")
    parser.add_argument("--kid-subsets", type=int, default=KID_SUBSETS, help="random subsets KID is averaged over")
    parser.add_argument("--kid-subset-size", type=int, default=KID_SUBSET_SIZE,
                        help="reduced to the smaller set's size when larger")
    parser.add_argument("--seed", type=int, default=0, help="seed of the KID subsets")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached real features")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    result = fid_folders(args.real, args.fake, features=args.features, weights=args.weights,
                         image_size=args.image_size, real_half=args.real_half, fake_half=args.fake_half,
                         batch_size=args.batch_size,
                         device=resolve_device(args.device), workers=args.workers, use_cache=not args.no_cache,
                         kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, seed=args.seed,
                         progress=not args.no_progress)
    print_json(result)
    return 0
