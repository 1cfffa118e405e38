"""Reflect-padding to the network's size multiple and cropping back, so outputs keep the input's exact size.

The reference resizes to a multiple of 4 instead, which changes the output size and resamples every pixel; padding
leaves the image untouched and U-Nets (multiple 2**depth, e.g. 256) work on any size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Pads = tuple[int, int, int, int]  # left, right, top, bottom


def pad_amounts(height: int, width: int, multiple: int, min_side: int = 1) -> Pads:
    """Centred padding that rounds both sides up to `multiple`, and to at least `min_side` (the odd pixel goes
    right/bottom)."""
    dh, dw = max(-height % multiple, min_side - height), max(-width % multiple, min_side - width)
    dh, dw = dh + -(height + dh) % multiple, dw + -(width + dw) % multiple
    return dw // 2, dw - dw // 2, dh // 2, dh - dh // 2


def reflect_pad(x: torch.Tensor, pads: Pads) -> torch.Tensor:
    """Reflect padding of any amount: reflection is repeated when the pad exceeds the side (a 3 px image padded to
    256), and a 1 px side, which has nothing to reflect, is replicated."""
    left, right, top, bottom = pads
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        step = (min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1))
        if not any(step):
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int, min_side: int = 1) -> tuple[torch.Tensor, Pads]:
    """(N, C, H, W) -> padded tensor whose H and W are multiples of `multiple` and at least `min_side`, and the
    pads to undo."""
    pads = pad_amounts(x.shape[-2], x.shape[-1], multiple, min_side)
    return (reflect_pad(x, pads) if any(pads) else x), pads


def crop(y: torch.Tensor, pads: Pads) -> torch.Tensor:
    left, right, top, bottom = pads
    return y[..., top:y.shape[-2] - bottom, left:y.shape[-1] - right]
