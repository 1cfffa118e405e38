"""Sample grids written during training: one row per image, one column per visual (input | output | target)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable

import torch
from torchvision.utils import make_grid, save_image

from translate.utils import atomic_path

MAX_ROWS = 4


def sample_grid(visuals: dict[str, torch.Tensor]) -> torch.Tensor:
    """One (3, H, W) image in [0, 1]: a row per sample, a column per visual; any channel count (1 and 4 as RGB)."""
    columns = [_as_rgb(v[:MAX_ROWS].detach().float().cpu()) for v in visuals.values()]
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: sample 0's visuals, then sample 1's ...
    return make_grid((tiles + 1) / 2, nrow=len(columns), padding=2).clamp_(0, 1)


def save_sample_grid(grid: torch.Tensor, path: str | Path) -> None:
    """Write a sample_grid atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        save_image(grid, tmp)


def log_sample_grid(trackers, grid: torch.Tensor, step: int) -> None:
    """Show the grid next to the scalars in each tracker that takes images (TensorBoard, Weights & Biases)."""
    for tracker in trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("samples", grid, global_step=step)
        elif tracker.name == "wandb":
            tracker.log_images({"samples": [grid.permute(1, 2, 0).numpy()]}, step=step)


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
