"""Images for the metrics: folders read in file order as uint8 batches, and generated tensors brought to [0, 1].

A batch only holds images of one size (it ends early where the size changes), so no image is padded or resized
before the metric's own preprocessing. `half` picks one side of pix2pix side-by-side files (A|B), so a model's
outputs can be scored against the targets stored in an aligned dataset without splitting it first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from translate.data.folders import GALLERY_DIR, list_images
from translate.data.images import ImageReadError, load_image

log = logging.getLogger(__name__)

HALVES = ("left", "right")


def scored_images(folder: str | os.PathLike, skipped: list | None = None) -> list[Path]:
    """The images of `folder` a metric scores: never the thumbnails translate gallery writes into its _gallery/
    (a convert output folder with a gallery would otherwise count each input and output twice). What was left out
    is appended to `skipped` as one {"path", "reason"} entry, so a report says what it did not read."""
    files = list_images(folder)
    kept = [f for f in files if GALLERY_DIR not in f.relative_to(folder).parts[:-1]]
    if skipped is not None and len(kept) < len(files):
        skipped.append({"path": str(Path(folder) / GALLERY_DIR), "reason": f"{len(files) - len(kept)} images of "
                        "translate gallery's pages (generated thumbnails, not scored)"})
    return kept


def crop_half(img: torch.Tensor, half: str | None) -> torch.Tensor:
    """The left or right half of a (..., H, W) side-by-side image (the whole image for None)."""
    if half is None:
        return img
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES} or None, got {half!r}")
    width = img.shape[-1] // 2
    return img[..., :width] if half == "left" else img[..., width:2 * width]


def read_rgb(path: str | os.PathLike, half: str | None = None) -> torch.Tensor:
    """One image file as a (3, H, W) uint8 tensor (any mode converted to RGB)."""
    return crop_half(torch.from_numpy(load_image(path, channels=3).copy()).permute(2, 0, 1).contiguous(), half)


class _Files(Dataset):
    def __init__(self, groups: Sequence[Sequence[Path]], half: Sequence[str | None]):
        self.groups, self.half = groups, half

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...] | str:
        """The row's images, or why one of them cannot be read (one bad file must not abort an evaluation)."""
        try:
            return tuple(read_rgb(path, half) for path, half in zip(self.groups[i], self.half))
        except ImageReadError as error:
            return str(error)


def iter_batches(groups: Sequence[Sequence[Path]], batch_size: int, half: Sequence[str | None] | None = None,
                 workers: int = 0, desc: str | None = None, progress: bool = True,
                 skipped: list | None = None) -> Iterator[tuple]:
    """Yield (paths, uint8 (B, 3, H, W) tensor per column) for rows of files read together (one file per row for
    a folder, a (prediction, target) pair for paired metrics). Files of one row must share a size. A row with an
    unreadable file is left out and, when `skipped` is given, appended to it as {"path", "reason"} (else it is an
    error)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    half = list(half) if half is not None else [None] * len(groups[0])
    loader = DataLoader(_Files(groups, half), batch_size=None, num_workers=workers)
    rows: list = []
    bar = tqdm(loader, total=len(groups), desc=desc, unit="img", disable=not progress, leave=False)
    for paths, images in zip(groups, bar):
        if isinstance(images, str):
            if skipped is None:
                raise ValueError(images)
            log.warning("skipping %s", images)
            skipped.append({"path": str(paths[0]), "reason": images})
            continue
        sizes = {tuple(img.shape[1:]) for img in images}
        if len(sizes) > 1:
            raise ValueError("images differ in size: " + ", ".join(
                f"{path} is {img.shape[2]}x{img.shape[1]}" for path, img in zip(paths, images)))
        if rows and (len(rows) == batch_size or images[0].shape != rows[0][1][0].shape):
            yield _stack(rows)
            rows = []
        rows.append((paths, images))
    if rows:
        yield _stack(rows)


def _stack(rows: list) -> tuple:
    paths = [p for p, _ in rows]
    columns = tuple(torch.stack([imgs[c] for _, imgs in rows]) for c in range(len(rows[0][1])))
    return (paths, *columns)


def to_unit(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Generated images (N, 3, H, W) in `value_range` -> [0, 1], rounded to 8-bit levels, so that a tensor scores
    exactly like the PNG it would be saved as."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    low, high = value_range
    unit = ((images.detach().float() - low) / (high - low)).clamp(0, 1)
    return (unit * 255).round() / 255


def unit_batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int,
                 value_range: tuple[float, float] = (-1.0, 1.0)) -> Iterator[torch.Tensor]:
    """Batches in [0, 1] of at most `batch_size` images from one tensor or an iterable of batch tensors."""
    for chunk in ([images] if isinstance(images, torch.Tensor) else images):
        for start in range(0, len(chunk), batch_size):
            yield to_unit(chunk[start:start + batch_size], value_range)
