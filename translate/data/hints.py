"""Sparse colour hints for a sketch -> photo model (Zhang, Zhu, Isola, Geng, Lin, Yu, Efros, "Real-Time User-Guided
Image Colorization with Learned Deep Priors", SIGGRAPH 2017).

A sketch does not say the colour, so L1 and the perceptual loss pull every output to the dataset's average: a dark
bag. Given a few small patches of colour, the model knows which bag was meant. Following the paper's simulated
users (sec. 3.1), a training sample reveals

  how many   a geometric number of patches with p = 1/8 counted from 0 (mean 7), so 1/8 of the samples carry no
             hint at all and one model works with and without hints
  where      on the object: centres drawn uniformly from the photo's pixels that are not paper-white (some channel
             below 230), as a person colours the bag and not the paper; the paper's natural images have no paper,
             and its 2-D Gaussian at the image centre (sigma a quarter of each side) is the fallback for a photo
             without such pixels
  how big    squares of side uniform in 1..9 px at 256 px, scaled with the crop (1..4 px at 128 px)
  what       the mean colour of the target photo over the patch

The paper reveals ab in Lab because its network predicts ab; this generator predicts RGB, so a hint is an RGB mean.

The model reads hints as 4 planes appended to its input: the colour times the mask (3 planes, in [-1, 1]) and the
mask (0 or 1), so "no hint here" is all zeros and cannot be mistaken for black (colour -1 with mask 1). Outside the
model a hint map is an RGBA image of the sketch's size: alpha >= 128 marks a hint pixel and its RGB is the colour
(a PNG painted with a colour pen, the studio's hint layer, `convert --hints DIR`).

Exact resume: every draw comes from numpy's Generator seeded by the sample's key, as for the sketch augmentation.
"""

from __future__ import annotations

import numpy as np
import torch

HINT_CHANNELS = 4  # colour * mask (3) and mask (1)
GEOMETRIC_P = 1 / 8
PATCH_SIDE_AT_256 = 9
CENTRE_SIGMA = 0.25  # of each side
ALPHA_THRESHOLD = 128
PAPER_WHITE = 230  # of 255: brighter in every channel is the paper a product is photographed on


def object_pixels(photo: torch.Tensor) -> torch.Tensor:
    """(3, H, W) photo in [-1, 1] -> (H, W) bool: the pixels that are not paper-white."""
    return (photo < PAPER_WHITE / 127.5 - 1).any(dim=0)


def hint_planes(colour: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) colours in [-1, 1] and (..., 1, H, W) masks of 0/1 -> the model's (..., 4, H, W) planes."""
    return torch.cat([colour * mask, mask], dim=-3)


def pool_hint_planes(planes: torch.Tensor, factor) -> torch.Tensor:
    """(N, 4, H, W) hint planes -> (N, 4, H / factor, W / factor): each cell a hint touches carries the mean colour
    of its hint pixels, with mask 1; the others stay zero. What a coarse level of a generator reads, so that one
    hint stroke tells a whole region of the bag its colour."""
    import torch.nn.functional as F

    colour, mask = planes[:, :3], planes[:, 3:]
    coverage = F.avg_pool2d(mask, factor)
    touched = (coverage > 0).to(planes.dtype)
    return hint_planes(F.avg_pool2d(colour, factor) / coverage.clamp_min(1e-6), touched)


def global_hint_planes(planes: torch.Tensor) -> torch.Tensor:
    """(N, 4, H, W) hint planes -> (N, 4, 1, 1): the mean colour of all hint pixels, mask 1 when there is any. The
    analogue of the paper's global hints network (sec. 3.2), fed at the bottleneck: derived from the local hints,
    so that one patch can colour the whole bag without a receptive field reaching it."""
    return pool_hint_planes(planes, planes.shape[-2:])


def planes_from_rgba(rgba: torch.Tensor) -> torch.Tensor:
    """(N, 4, H, W) uint8 RGBA hint maps -> (N, 4, H, W) float planes (alpha >= 128 is a hint)."""
    mask = (rgba[:, 3:4] >= ALPHA_THRESHOLD).float()
    return hint_planes(rgba[:, :3].float().div(127.5).sub(1), mask)


def no_hints(n: int, height: int, width: int, device=None) -> torch.Tensor:
    return torch.zeros(n, HINT_CHANNELS, height, width, device=device)


def patch_side_range(size: int) -> int:
    """The largest patch side at a crop of `size` px: 9 at 256, scaled, at least 1."""
    return max(1, round(PATCH_SIDE_AT_256 * size / 256))


def sample_hints(photo: torch.Tensor, rng: np.random.Generator, count: int | None = None,
                 where: torch.Tensor | None = None) -> torch.Tensor:
    """Hint planes (4, H, W) revealing patches of `photo` (3, H, W) in [-1, 1].

    count: None draws the paper's geometric number; an integer reveals exactly that many (evaluation).
    where: an optional (H, W) bool mask (object_pixels in training); centres are then drawn uniformly from its
    pixels instead of the paper's centred Gaussian, which an empty or absent mask falls back to.
    """
    _, height, width = photo.shape
    if count is None:
        count = int(rng.geometric(GEOMETRIC_P)) - 1
    colour = torch.zeros(3, height, width)
    mask = torch.zeros(1, height, width)
    largest = patch_side_range(min(height, width))
    candidates = where.nonzero() if where is not None else None
    for _ in range(count):  # a handful of patches per sample: the loop is over patches, never pixels
        side = int(rng.integers(1, largest + 1))
        if candidates is not None and len(candidates):
            cy, cx = (int(v) for v in candidates[int(rng.integers(len(candidates)))])
        else:
            cy = int(np.clip(round(rng.normal(height / 2, CENTRE_SIGMA * height)), 0, height - 1))
            cx = int(np.clip(round(rng.normal(width / 2, CENTRE_SIGMA * width)), 0, width - 1))
        top, left = min(max(cy - side // 2, 0), height - side), min(max(cx - side // 2, 0), width - side)
        patch = (slice(top, top + side), slice(left, left + side))
        colour[:, patch[0], patch[1]] = photo[:, patch[0], patch[1]].mean(dim=(1, 2), keepdim=True)
        mask[:, patch[0], patch[1]] = 1
    return hint_planes(colour, mask)
