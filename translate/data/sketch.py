"""Edge makers (Canny, XDoG) and the train-time sketch augmentation of a pix2pix input, vectorised in torch/kornia.

Why the augmentation: what people draw is thicker, sparser and wobblier than the HED edges of edges2handbags (1-2 px
wide: no stroke pixel of theirs lies more than 1 px from the paper; unbroken; exactly on the photo's contours), and
a pix2pix trained on dataset edges alone turns a drawing into grey mush. `SketchAugment` makes the model input A of
a training pair look drawn (dark strokes on white paper, in [-1, 1]) and leaves the target B untouched. The ops, in
the order they are applied, each on a sample with probability p:

  remake   p 0.3  replace A by edges re-made from B by another method: XDoG or Canny (half each), smoothing
                  sigma 1.5-3 px (what a hand keeps of a photo differs from what HED keeps)
  strokes  p 0.5  redraw the lines as separate pen strokes that meet imprecisely, without specks of texture
                  (translate/data/strokes.py, modelled on the statistics of real hand-drawn sketches)
  width    p 0.5  thicken the strokes by a k x k erosion of the bright paper, k in {2, 3, 4, 5} (+1 to +4 px). Never
                  thinned: the dataset's strokes are 1-2 px, so any thinning erases them
  dropout  p 0.5  paper over 5-30 % of the image in smooth blobs 6-16 px across, so strokes break into pieces (single
                  lost pixels would only look noisy)
  wobble   p 0.5  resample along a smooth displacement field: elastic, control points every 32 px, at most 2 px per
                  axis, plus global, the four corners moved independently by at most 2 px per axis (a shift, a
                  rotation, a scale, a shear); A thus stays within 4 px per axis of B, close enough for pix2pix's L1

Sizes are in pixels, chosen for 256 px crops; probabilities and ranges are judgement, not tuned: score the (a) vs
(b) sketches of datasets/prepare.py edges to tune them.

Exact resume: each op draws every random number from torch.Generator seeded with derive_seed(seed, STREAMS[op]),
where `seed` comes from the sample's key (an op added later takes a new stream, so the others draw as before), so
an augmented sketch depends on the key alone: not on the worker, the process, the global RNGs or which other ops
are on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from translate.data.sampler import derive_seed
from translate.data.strokes import components, restroke

OPS = ("remake", "strokes", "width", "dropout", "wobble")  # application order
STREAMS = {"remake": 0, "width": 1, "dropout": 2, "wobble": 3, "strokes": 5}  # each op's random stream
CHOOSER_STREAM = 4  # whether a sample is augmented at all (SketchAugment's p)
METHODS = ("canny", "xdog")
REMAKE_P, STROKES_P, WIDTH_P, DROPOUT_P, WOBBLE_P = 0.3, 0.5, 0.5, 0.5, 0.5
REMAKE_SIGMA = (1.5, 3.0)
WIDTH_KERNELS = (2, 3, 4, 5)
DROPOUT_FRACTION, DROPOUT_BLOB = (0.05, 0.3), (6.0, 16.0)
WOBBLE_ELASTIC, WOBBLE_GLOBAL, WOBBLE_CELL = 2.0, 2.0, 32


def parse_ops(text: str) -> tuple[str, ...]:
    """'' -> (), 'all' -> OPS, 'wobble,width' -> ('width', 'wobble') (always in OPS order); a ValueError otherwise."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return OPS
    unknown = [name for name in names if name not in OPS]
    if unknown:
        raise ValueError(f"unknown sketch augmentation op(s) {', '.join(map(repr, unknown))}; valid: "
                         f"{', '.join(OPS)} (comma-separated), all, or '' for none")
    return tuple(op for op in OPS if op in names)


def edge_sketch(photos: torch.Tensor, method: str = "canny", sigma: float = 2.0, low: float = 0.1, high: float = 0.2,
                thickness: int = 1) -> torch.Tensor:
    """(B, 3, H, W) photos in [0, 1] -> (B, 1, H, W) sketches in [0, 1]: white paper (1), dark strokes (0).

    canny: Canny on the Gaussian-smoothed luminance (sigma 2 px at 256 px keeps object outlines and drops most
    texture), non-maximum suppression for one-pixel strokes, hysteresis. xdog: eXtended Difference of Gaussians
    (Winnemoeller et al., Computers & Graphics 2012), a softer pencil look. `thickness` > 1 dilates the strokes.
    """
    import kornia

    gray = kornia.color.rgb_to_grayscale(photos)
    if method == "canny":
        if not 0 < low <= high:
            raise ValueError(f"canny thresholds need 0 < low <= high, got low={low}, high={high}")
        size = 2 * int(round(2 * sigma)) + 1
        _, edges = kornia.filters.canny(gray, low_threshold=low, high_threshold=high, kernel_size=size,
                                        sigma=(sigma, sigma), hysteresis=False)
        strokes = hysteresis(edges >= 1, edges > 0).to(photos.dtype)
    elif method == "xdog":
        strokes = 1 - xdog(gray, sigma=sigma / 2)
    else:
        raise ValueError(f"unknown edge method {method!r}; valid: {', '.join(METHODS)}")
    if thickness > 1:
        strokes = F.max_pool2d(strokes, thickness, stride=1, padding=thickness // 2)[..., :gray.shape[-2],
                                                                                    :gray.shape[-1]]
    return 1 - strokes


def hysteresis(strong: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """Weak edge pixels 8-connected to a strong one (Canny 1986): the 8-connected components of `weak` (per image
    plane of a (..., H, W) mask) that hold a strong pixel.

    Labelled in one pass (strokes.components), about 1 ms at 256 px. Growing from the strong
    pixels by repeated 3x3 dilations gives the same mask but takes one step per pixel of the longest weak chain
    (tens of ms on handbag photos), and kornia's own hysteresis needs eight convolutions per step.
    """
    labels, _ = components(weak.cpu().numpy())
    kept = np.unique(labels[(strong & weak).cpu().numpy()])
    return torch.from_numpy(np.isin(labels, kept[kept > 0])).to(weak.device)


def xdog(gray: torch.Tensor, sigma: float = 1.0, k: float = 1.6, tau: float = 0.98, eps: float = 0.0,
         phi: float = 200.0) -> torch.Tensor:
    """XDoG tone map in [0, 1] (1 = white): D = G_sigma - tau G_{k sigma}; 1 where D >= eps, else
    1 + tanh(phi (D - eps))."""
    import kornia

    def blur(s: float) -> torch.Tensor:
        size = 2 * int(round(3 * s)) + 1
        return kornia.filters.gaussian_blur2d(gray, (size, size), (s, s))

    d = blur(sigma) - tau * blur(k * sigma)
    return torch.where(d >= eps, torch.ones_like(d), 1 + torch.tanh(phi * (d - eps)))


def remake(photo: torch.Tensor, channels: int, method: str, sigma: float) -> torch.Tensor:
    """(N, C, H, W) photos in [-1, 1] (C = 1, 3 or 4) -> their edge sketches in [-1, 1] with `channels` channels."""
    rgb = photo[:, :3] if photo.shape[1] >= 3 else photo.expand(-1, 3, -1, -1)
    return (edge_sketch((rgb + 1) / 2, method, sigma=sigma) * 2 - 1).repeat(1, channels, 1, 1)


def thicken(sketch: torch.Tensor, size: int) -> torch.Tensor:
    """Dark strokes `size - 1` px wider. They grow where the bright paper shrinks, so this is an erosion (the minimum
    over a size x size window), not a dilation, which would thin them."""
    from kornia.morphology import erosion

    return erosion(sketch, sketch.new_ones(size, size))


def drop_strokes(sketch: torch.Tensor, noise: torch.Tensor, fraction: float) -> torch.Tensor:
    """Paper over the `fraction` of the image where `noise` (N, 1, h, w), upsampled bicubically to the sketch's size,
    is highest: blobs about H / h px across that cut strokes into pieces."""
    smooth = F.interpolate(noise, size=sketch.shape[-2:], mode="bicubic", align_corners=False).flatten(1)
    kept = max(1, round(smooth.shape[1] * (1 - fraction)))  # pixels left as they are
    threshold = smooth.kthvalue(kept, dim=1).values[:, None]
    return torch.where((smooth > threshold).view_as(sketch[:, :1]), torch.ones_like(sketch), sketch)


def wobble(sketch: torch.Tensor, elastic: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """Resample the sketch along a smooth displacement field in pixels: `elastic` (N, 2, h, w) control points
    upsampled bicubically (clamped to their own range, as bicubic overshoots) plus `corners` (N, 2, 2, 2), the
    x and y displacements of the four corners, upsampled bilinearly. Paper comes in at the borders."""
    n, _, height, width = sketch.shape
    bound = elastic.abs().amax()
    field = F.interpolate(elastic, size=(height, width), mode="bicubic", align_corners=True).clamp(-bound, bound)
    field = field + F.interpolate(corners, size=(height, width), mode="bilinear", align_corners=True)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    to_unit = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)])  # pixels -> grid_sample's [-1, 1]
    grid = torch.stack([xs, ys], dim=-1) + field.permute(0, 2, 3, 1) * to_unit
    # sample (sketch - 1), zero outside, then + 1: what comes in from beyond the borders is white paper
    return F.grid_sample(sketch - 1, grid, mode="bilinear", padding_mode="zeros", align_corners=True) + 1


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _random_remake(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if _uniform(generator) >= REMAKE_P:
        return a
    method = METHODS[int(_uniform(generator) < 0.5)]
    return remake(b, a.shape[1], method, _uniform(generator, *REMAKE_SIGMA))


def _random_strokes(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if _uniform(generator) >= STROKES_P:
        return a
    return restroke(a, generator)


def _random_width(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if _uniform(generator) >= WIDTH_P:
        return a
    return thicken(a, WIDTH_KERNELS[int(torch.randint(len(WIDTH_KERNELS), (), generator=generator))])


def _random_dropout(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if _uniform(generator) >= DROPOUT_P:
        return a
    fraction, blob = _uniform(generator, *DROPOUT_FRACTION), _uniform(generator, *DROPOUT_BLOB)
    grid = [max(2, round(side / blob)) for side in a.shape[-2:]]
    return drop_strokes(a, torch.rand(a.shape[0], 1, *grid, generator=generator), fraction)


def _random_wobble(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if _uniform(generator) >= WOBBLE_P:
        return a
    grid = [max(2, side // WOBBLE_CELL + 1) for side in a.shape[-2:]]
    amplitude = _uniform(generator, 0.5, WOBBLE_ELASTIC)
    elastic = (torch.rand(a.shape[0], 2, *grid, generator=generator) * 2 - 1) * amplitude
    corners = (torch.rand(a.shape[0], 2, 2, 2, generator=generator) * 2 - 1) * WOBBLE_GLOBAL
    return wobble(a, elastic, corners)


_RANDOM: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]] = {
    "remake": _random_remake, "strokes": _random_strokes, "width": _random_width, "dropout": _random_dropout,
    "wobble": _random_wobble}


class SketchAugment:
    """`augment(a, b, seed)`: the sketch A (C, H, W) in [-1, 1] made to look drawn, by the ops named in `ops` (see
    parse_ops), on a share `p` of the samples; the photo B is only read (by remake). A function of (a, b, seed)
    alone; B is never changed.

    Why p: with remake, width, dropout and wobble at their own probabilities only 9% of samples keep the dataset's
    edges, and the model is then worse on exactly the edges it is scored on (measured: +14% perceptual distance on
    them after 60 minutes); p < 1 keeps a share of clean samples. Whether a sample is augmented is drawn from its own
    stream (CHOOSER_STREAM), so the ops' streams, and every augmented sample, are the same for any p."""

    def __init__(self, ops: str = "", p: float = 1.0):
        if not 0 <= p <= 1:
            raise ValueError(f"p is the share of samples augmented, in [0, 1]; got {p}")
        self.ops, self.p = parse_ops(ops), p

    def __call__(self, a: torch.Tensor, b: torch.Tensor, seed: int) -> torch.Tensor:
        if self.p < 1:
            chooser = torch.Generator().manual_seed(derive_seed(seed, CHOOSER_STREAM))
            if torch.rand((), generator=chooser) >= self.p:
                return a  # this sample keeps the dataset's edges
        # a grey sketch stored as RGB (edges2handbags) is augmented once, not three times: the same result, 3x faster
        grey = a.shape[0] > 1 and torch.equal(a[1:], a[:1].expand_as(a[1:]))
        x = a[None, :1] if grey else a[None]
        for op in self.ops:
            generator = torch.Generator().manual_seed(derive_seed(seed, STREAMS[op]))
            x = _RANDOM[op](x, b[None], generator)
        return x[0].expand_as(a).contiguous()

    def __repr__(self) -> str:
        return f"SketchAugment({','.join(self.ops)!r}, p={self.p})"
