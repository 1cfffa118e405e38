"""Sample grids written during training: one row per image, one column per visual (input | output | target)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable

import torch
from torchvision.utils import save_image

from translate.utils import atomic_path

MAX_ROWS = 4


def save_sample_grid(visuals: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write the grid atomically (temp file + rename); images in [-1, 1], any channel count (1 and 4 shown as RGB)."""
    columns = [_as_rgb(v[:MAX_ROWS].detach().float().cpu()) for v in visuals.values()]
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: sample 0's visuals, then sample 1's ...
    with atomic_path(path) as tmp:
        save_image((grid + 1) / 2, tmp, nrow=len(columns), padding=2)


@contextlib.contextmanager
def side_effect_free(modules: Iterable[torch.nn.Module]):
    """Sampling must not change training: restore the RNG (dropout) and buffers (BatchNorm running stats) after."""
    saved = [(buffer, buffer.clone()) for module in modules for buffer in module.buffers()]
    devices = sorted({b.device.index for b, _ in saved if b.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        yield
    with torch.no_grad():
        for buffer, value in saved:
            buffer.copy_(value)


def _as_rgb(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    return x[:, :3]
