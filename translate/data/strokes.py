"""Edge maps redrawn as a person draws them: the `strokes` op of the sketch augmentation (translate/data/sketch.py).

Why: the hand-drawn QMUL handbag sketches differ from the dataset's HED edges less in ink (both 2.3% of the image)
or framing than in how the lines are built (tools/stroke_stats.py, at 256 px): a person draws a contour as
several separate strokes that meet imprecisely (gaps, overshoots, crossings at the corners), and leaves out the
specks of texture HED keeps. The photo-derived ops (remake, width, dropout, wobble) change edges as another edge
detector, a thicker pen, lost ink or a shaky hand would; none of them builds a line out of strokes. This op does:

  1. thin the ink to one-pixel lines (Zhang & Suen 1984, "A fast parallel algorithm for thinning digital patterns")
  2. prune the spurs and specks shorter than SPECK px: texture a hand does not draw
  3. cut the lines into strokes: at a share BRANCH_CUT of the branch points (crossing number >= 3) and at random
     points, on average one cut every CUT_EVERY px of line, each cut removing the 3 x 3 around it
  4. move each stroke by its own random offset, at most SHIFT px per axis: where strokes met they now leave a gap
     or run past each other, as drawn strokes do
  5. draw the strokes back, one pixel wide (the dataset's HED strokes are 1-2 px; the width op thickens)

Sizes are in pixels at 256 px and scale with the image's side; they were set so that the redrawn dataset edges match
the drawings' stroke statistics (docs/benchmarks/drawn.md). Vectorised in torch and numpy: a few ms per 256 px image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SPECK, CUT_EVERY, SHIFT = 12, 120, 2.0  # pixels at 256 px
BRANCH_CUT = 0.5  # the share of branch points cut
REFERENCE_SIDE = 256


def _neighbours(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 neighbours of every pixel of (N, 1, H, W), clockwise from north (P2..P9 of Zhang & Suen)."""
    p = F.pad(x, (1, 1, 1, 1))
    return [p[..., :-2, 1:-1], p[..., :-2, 2:], p[..., 1:-1, 2:], p[..., 2:, 2:],
            p[..., 2:, 1:-1], p[..., 2:, :-2], p[..., 1:-1, :-2], p[..., :-2, :-2]]


def crossings(x: torch.Tensor) -> torch.Tensor:
    """Zhang & Suen's A(P1): the 0 -> 1 transitions around each pixel: 1 on a line, 3 or more at a branch point."""
    n = _neighbours(x)
    return sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).to(torch.uint8) for i in range(8))


def thin(ink: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) bool ink -> its one-pixel, 8-connected skeleton (Zhang & Suen 1984), both sub-iterations
    vectorised over the image; a few iterations for strokes a few pixels wide."""
    x = ink.to(torch.uint8)
    changed = True
    while changed:
        changed = False
        for first in (True, False):
            p2, _, p4, _, p6, _, p8, _ = n = _neighbours(x)
            count, a = sum(n), crossings(x)
            side = ((p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)) if first else \
                ((p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0))
            delete = (x == 1) & (count >= 2) & (count <= 6) & (a == 1) & side
            if delete.any():
                x = x.masked_fill(delete, 0)
                changed = True
    return x.bool()


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The 8-connected components of a (..., H, W) bool mask, labelled within each image plane, never across the
    batch: (labels, count), by scipy (a dependency of albumentations) in one pass."""
    from scipy import ndimage

    plane = np.zeros((3,) * mask.ndim, dtype=bool)
    plane[(1,) * (mask.ndim - 2)] = True  # 3x3 neighbours within one image
    return ndimage.label(mask, structure=plane)


def branch_points(lines: torch.Tensor) -> torch.Tensor:
    """Pixels of one-pixel `lines` (N, 1, H, W) bool where three or more lines meet."""
    return lines & (crossings(lines.to(torch.uint8)) >= 3)


def _dilate(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x.float(), 3, stride=1, padding=1).bool()


def _ends(lines: torch.Tensor) -> torch.Tensor:
    """Line pixels whose neighbours form one group (crossing number 1, or none at all): the ends of lines, and the
    base of a one-pixel bump, which a neighbour count would take for part of the line."""
    return lines & (crossings(lines.to(torch.uint8)) <= 1)


def prune(lines: torch.Tensor, length: int) -> torch.Tensor:
    """(N, 1, H, W) bool one-pixel lines without the spurs and specks shorter than `length` px: morphological
    pruning (Gonzalez & Woods, Digital Image Processing, 9.5.8): take the line ends off `length` times, then grow the
    surviving ends back along the original lines as far. Closed loops have no ends and stay."""
    x = lines
    for _ in range(length):
        x = x & ~_ends(x)
    grown = _ends(x)
    for _ in range(length):
        grown = lines & _dilate(grown)
    return x | grown


def restroke(sketch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, C, H, W) sketches in [-1, 1] (dark strokes on white) -> the same lines redrawn as separate strokes (see
    the module docstring), in [-1, 1], every channel alike. Random numbers from `generator` only."""
    n, channels, height, width = sketch.shape
    scale = max(height, width) / REFERENCE_SIDE
    skeleton = thin(sketch.mean(dim=1, keepdim=True) < 0)
    # 2. drop what hangs off the lines or floats alone shorter than SPECK px: the spurs and specks of texture HED
    # keeps and a hand does not draw
    lines = prune(skeleton, max(1, round(SPECK * scale)))
    # 3. cuts at the branch points and at random points about CUT_EVERY px apart: one contour, several strokes
    draws = torch.rand((2, *lines.shape), generator=generator)
    cut = (branch_points(lines) & (draws[0] < BRANCH_CUT)) | (lines & (draws[1] < 1 / max(2.0, CUT_EVERY * scale)))
    strokes = lines & ~_dilate(cut)
    # 4. each stroke its own offset, whole pixels so that the lines stay one pixel wide
    labels, count = components(strokes.numpy()[:, 0])
    limit = max(1, round(SHIFT * scale))
    offsets = torch.randint(-limit, limit + 1, (count + 1, 2), generator=generator)
    image, ys, xs = np.nonzero(labels)
    moved = offsets[torch.from_numpy(labels[image, ys, xs]).long()]
    ys = (torch.from_numpy(ys) + moved[:, 0]).clamp(0, height - 1)
    xs = (torch.from_numpy(xs) + moved[:, 1]).clamp(0, width - 1)
    # 5. drawn back on white paper
    drawn = torch.ones(n, 1, height, width, dtype=sketch.dtype)
    drawn[torch.from_numpy(image), 0, ys, xs] = -1
    return drawn.expand(-1, channels, -1, -1).contiguous()
