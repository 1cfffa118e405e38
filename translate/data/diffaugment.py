"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same kind of random augmentation is applied to real and fake batches right before the discriminator; every op
is differentiable in x, so G's gradient passes through it. Ops, constants and draw order follow the official
DiffAugment_pytorch.py: color = brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5);
translation by up to 1/8 of each side with zero fill; cutout of a half-size rectangle at a random centre.

Written in plain torch rather than kornia: kornia's adjust_brightness clamps to [0, 1] and its saturation works in
HSV, both unlike the paper's ops (our images live in [-1, 1]), and its translate resamples through warp_affine.

Randomness: torch's global RNG for x's device by default (so a restored RNG state replays it), or `generator`.
Draws are made in float32 and cast, so a seeded generator gives the same augmentation in every dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def shift_images(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """out[n, :, i, j] = x[n, :, i + dy[n], j + dx[n]], zero where that falls outside the image."""
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] + dy.to(x.device)[:, None]  # (N, H)
    cols = torch.arange(w, device=x.device)[None, :] + dx.to(x.device)[:, None]  # (N, W)
    out = x.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(n, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(n, c, h, w))
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    return torch.where(inside[:, None], out, torch.zeros((), dtype=x.dtype, device=x.device))


def cut_out(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size_h: int, size_w: int) -> torch.Tensor:
    """Zero rows [top[n], top[n] + size_h) x columns [left[n], left[n] + size_w) of each image (clipped)."""
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device)[None, :] - top.to(x.device)[:, None]
    cols = torch.arange(w, device=x.device)[None, :] - left.to(x.device)[:, None]
    hole = ((rows >= 0) & (rows < size_h))[:, :, None] & ((cols >= 0) & (cols < size_w))[:, None, :]
    return torch.where(hole[:, None], torch.zeros((), dtype=x.dtype, device=x.device), x)


def _uniform(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One U(0, 1) per image, shaped (N, 1, 1, 1), in x's dtype and device."""
    device = generator.device if generator is not None else x.device
    r = torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=device, dtype=torch.float32)
    return r.to(device=x.device, dtype=x.dtype)


def _randint(low: int, high: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One integer in [low, high) per image, shaped (N,)."""
    device = generator.device if generator is not None else x.device
    return torch.randint(low, high, (x.shape[0],), generator=generator, device=device).to(x.device)


def rand_brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x + (_uniform(x, generator) - 0.5)


def rand_saturation(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def rand_contrast(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def rand_translation(x: torch.Tensor, generator: torch.Generator | None = None,
                     ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    h, w = x.shape[-2:]
    max_h, max_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(-max_h, max_h + 1, x, generator)
    dx = _randint(-max_w, max_w + 1, x, generator)
    return shift_images(x, dy, dx)


def rand_cutout(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    h, w = x.shape[-2:]
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre_y = _randint(0, h + (1 - size_h % 2), x, generator)
    centre_x = _randint(0, w + (1 - size_w % 2), x, generator)
    return cut_out(x, centre_y - size_h // 2, centre_x - size_w // 2, size_h, size_w)


AUGMENT_FNS: dict[str, list[Callable[..., torch.Tensor]]] = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}


def parse_policy(policy: str | Sequence[str]) -> list[str]:
    """"color,translation" or ["color", "translation"] -> op names, checked; "" -> [] (identity)."""
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [name.strip() for name in names if name.strip()]
    unknown = [name for name in names if name not in AUGMENT_FNS]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}; expected names from "
                         f"{', '.join(AUGMENT_FNS)}")
    return names


def diff_augment(x: torch.Tensor, policy: str | Sequence[str] = "color,translation,cutout",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment an NCHW batch, each image with its own random parameters; shape and dtype are kept."""
    names = parse_policy(policy)
    if names and x.dim() != 4:
        raise ValueError(f"DiffAugment expects an NCHW batch, got shape {tuple(x.shape)}")
    for name in names:
        for fn in AUGMENT_FNS[name]:
            x = fn(x, generator)
    return x


class DiffAugment(nn.Module):
    """diff_augment as a module (no parameters), for putting in front of a discriminator."""

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout"):
        super().__init__()
        self.policy = ",".join(parse_policy(policy))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return diff_augment(x, self.policy, generator)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"
