"""Hint colours carried over the region they were painted on: an optimisation after the generator, in the spirit of
Levin, Lischinski and Weiss, "Colorization using Optimization" (SIGGRAPH 2004).

Why: a hinted generator trained for a CPU hour learns from hints how light a bag is, but hardly its hue (a red hint
gives an olive bag; docs/benchmarks/colour.md). Levin et al. colour a grey image from scribbles by assuming that
neighbouring pixels of similar intensity have similar colour, and solving one sparse quadratic problem. Here the
unknown is not the colour but a correction d (CIE Lab, 3 channels) to the generator's output y, so the generator's
shading and texture stay and only its colour moves towards the hints:

    E(d) = sum_{r~s} w_rs (d_r - d_s)^2  +  lambda sum_r m_r (d_r - (h_r - y_r))^2  +  sum_r beta_r d_r^2
    w_rs = exp(-(L_r - L_s)^2 / (2 sigma^2))   over 4-neighbours, L the output's lightness

- the first term is Levin et al.'s eq. (1) in its graph-Laplacian form: d spreads across pixels of similar lightness
  and stops at the outlines, where lightness jumps;
- the second pulls d at each hint pixel (mask m) to the hint colour h minus the output there;
- the third keeps the paper paper: beta is large on paper-white output pixels (as translate/data/hints.py defines
  paper) and tiny elsewhere, so a hint colours its whole region, decaying over ~sqrt(1 / beta) px, set to 0.8 of
  the image's longer side (about 100 px at the handbag model's 128 px) whatever the image's size.

A region the generator paints paper-white is taken for paper, even inside an outline. Claiming enclosed white
regions that a hint touches was measured and dropped: it filled the holes of handles with the hint's colour, and
the perceptual distance with ten hints rose from 0.289 to 0.297 (docs/benchmarks/colour.md).

E is convex; its minimum solves (Laplacian + diag(lambda m + beta)) d = lambda m (h - y), symmetric positive
definite, by conjugate gradients with a Jacobi preconditioner, batched over images and channels, started from the
same problem solved at half the size. An image without hints has d = 0 and is returned as it was. Under tiling each
tile is solved on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb, rgb_to_lab

from translate.data.hints import PAPER_WHITE, hint_planes, pool_hint_planes

SIGMA_L = 5.0  # lightness difference (of 100) at which neighbours are e^-0.5 as tied
HINT_WEIGHT = 10.0  # lambda: hint pixels take their hint's colour almost exactly
PAPER_PULL = 1.0  # beta on paper-white pixels: as strong as a neighbour, so colour stops at the paper
REACH = 0.8  # of the longer side: how far a hint's colour carries through pixels of like lightness (beta elsewhere)
MAX_ITERATIONS = 400
COARSEST = 32  # px: the smallest side solved on the way down
TOLERANCE = 1e-3  # relative residual: within a few 1/255 of the converged colours


def _laplacian(d: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor) -> torch.Tensor:
    """sum_s w_rs (d_r - d_s) over each pixel's 4-neighbours; wx between horizontal neighbours (W - 1 wide), wy
    between vertical ones (H - 1 high)."""
    flow_x = wx * (d[..., :, 1:] - d[..., :, :-1])
    flow_y = wy * (d[..., 1:, :] - d[..., :-1, :])
    # an edge's flow leaves the pixel before it and enters the one after it
    return F.pad(flow_x, (1, 0)) - F.pad(flow_x, (0, 1)) + F.pad(flow_y, (0, 0, 1, 0)) - F.pad(flow_y, (0, 0, 0, 1))


def _solve(rhs: torch.Tensor, diagonal: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor,
           initial: torch.Tensor) -> torch.Tensor:
    """Preconditioned conjugate gradients for (Laplacian + diag(diagonal)) d = rhs from `initial`, one system per
    (image, channel)."""
    def apply(d):
        return _laplacian(d, wx, wy) + diagonal * d

    # Jacobi preconditioner: the operator's diagonal, i.e. each pixel's tie weights plus its own pull
    ties = F.pad(wx, (1, 0)) + F.pad(wx, (0, 1)) + F.pad(wy, (0, 0, 1, 0)) + F.pad(wy, (0, 0, 0, 1))
    inverse = 1.0 / (ties + diagonal)
    d = initial
    residual = rhs - apply(d)
    z = inverse * residual
    direction = z.clone()
    rz = (residual * z).sum(dim=(-2, -1), keepdim=True)
    goal = TOLERANCE * rhs.flatten(-2).norm(dim=-1)[..., None, None]
    for _ in range(MAX_ITERATIONS):  # each iteration is a few whole-image tensor operations
        if (residual.flatten(-2).norm(dim=-1)[..., None, None] <= goal).all():
            break
        a_direction = apply(direction)
        step = rz / (direction * a_direction).sum(dim=(-2, -1), keepdim=True).clamp_min(1e-30)
        d = d + step * direction
        residual = residual - step * a_direction
        z = inverse * residual
        rz_next = (residual * z).sum(dim=(-2, -1), keepdim=True)
        direction = z + rz_next / rz.clamp_min(1e-30) * direction
        rz = rz_next
    return d


def _correction(lab: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, paper: torch.Tensor) -> torch.Tensor:
    """The minimiser d of E (module docstring) for outputs `lab` (N, 3, H, W), hint colours `target` in Lab where
    `mask` (N, 1, H, W) is 1, and `paper` (N, 1, H, W) bool.

    Coarse to fine: conjugate gradients need about as many iterations as a hint's colour has pixels to travel, so the
    problem is first solved at half the size (down to COARSEST px), and its solution, upsampled, is where the solve at
    full size starts; the full-size solve then only corrects the detail."""
    lightness = lab[:, :1]
    wx = torch.exp(-(lightness[..., :, 1:] - lightness[..., :, :-1]) ** 2 / (2 * SIGMA_L ** 2))
    wy = torch.exp(-(lightness[..., 1:, :] - lightness[..., :-1, :]) ** 2 / (2 * SIGMA_L ** 2))
    object_pull = (REACH * max(lab.shape[-2:])) ** -2
    diagonal = HINT_WEIGHT * mask + torch.where(paper, PAPER_PULL, object_pull)
    rhs = HINT_WEIGHT * mask * (target - lab)
    initial = torch.zeros_like(rhs)
    if min(lab.shape[-2:]) >= 2 * COARSEST:
        pooled = pool_hint_planes(hint_planes(target, mask), 2)  # hint colours averaged as the generator reads them
        coarse = _correction(F.avg_pool2d(lab, 2), pooled[:, :3], pooled[:, 3:], F.avg_pool2d(paper.float(), 2) > 0.5)
        initial = F.interpolate(coarse, size=lab.shape[-2:], mode="bilinear", align_corners=False)
    return _solve(rhs, diagonal, wx, wy, initial)


def propagate_hint_colours(output: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) generator output in [-1, 1] and its (N, 4, H, W) hint planes (colour x mask, mask) -> the output
    with its colours moved towards the hints over the regions they were painted on (module docstring)."""
    mask = planes[:, 3:4] > 0.5
    hinted = mask.flatten(1).any(dim=1)
    if not hinted.any():
        return output
    result = output.clone()
    y = output[hinted].float().add(1).div(2).clamp(0, 1)
    hint = planes[hinted, :3].float().add(1).div(2).clamp(0, 1)
    lab = rgb_to_lab(y)
    paper = (y > PAPER_WHITE / 255).all(dim=1, keepdim=True) & ~mask[hinted]
    correction = _correction(lab, rgb_to_lab(hint), mask[hinted].float(), paper)
    result[hinted] = lab_to_rgb(lab + correction).clamp(0, 1).mul(2).sub(1).to(output.dtype)
    return result
