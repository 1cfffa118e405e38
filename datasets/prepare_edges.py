"""Turn a folder of photos into an edges -> photo paired dataset (edges2handbags style), batched with kornia.

canny (default): Canny on the Gaussian-smoothed luminance (sigma 2 px at 256 px keeps object outlines and drops
most texture), non-maximum suppression for one-pixel strokes, hysteresis (weak edges kept only where connected to
strong ones), drawn black on white like the HED sketches of edges2handbags. `thickness` > 1 dilates the strokes.
xdog: eXtended Difference of Gaussians (Winnemoeller et al., Computers & Graphics 2012), a softer pencil look.
The edge makers live in translate/data/sketch.py, which the training-time sketch augmentation shares.

Each photo is resized (shorter side to `size`, centre crop; or longer side, padded with white) and written as
OUT/train/NAME.jpg or OUT/val/NAME.jpg, edges on the left (A) and photo on the right (B): train with AtoB.
`pairs=True` takes the photos from the right halves (B) of aligned A|B files, e.g. to score a model on sketches of
another method, "(b)" (xdog, thickness 3), beside the dataset's own edges "(a)": same names, same photos.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from translate.data.sketch import edge_sketch as sketch  # the one implementation, shared with training

log = logging.getLogger("prepare")
FITS = ("crop", "pad")


def read_photo(path: Path, pairs: bool = False) -> torch.Tensor:
    """(3, H, W) in [0, 1]: the file, or the right half (B) of an aligned A|B file as PairedDataset splits it."""
    from translate.data.images import load_image

    photo = torch.from_numpy(load_image(path, 3).copy()).permute(2, 0, 1).float() / 255
    if pairs:
        half = photo.shape[-1] // 2
        if half < 1:
            raise ValueError(f"{path}: {photo.shape[-1]} px wide, not an aligned A|B pair")
        photo = photo[..., half:2 * half]
    return photo


def fit_square(photo: torch.Tensor, size: int, fit: str = "crop") -> torch.Tensor:
    """(3, H, W) in [0, 1] -> (3, size, size): shorter side to size + centre crop, or longer side + white padding."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    h, w = photo.shape[-2:]
    scale = size / (min(h, w) if fit == "crop" else max(h, w))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if fit == "crop":
        nh, nw = max(nh, size), max(nw, size)
    img = F.interpolate(photo[None], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)[0]
    if fit == "crop":
        top, left = (nh - size) // 2, (nw - size) // 2
        return img[:, top:top + size, left:left + size]
    out = torch.ones(3, size, size, dtype=img.dtype)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[:, top:top + nh, left:left + nw] = img
    return out


def split_names(files: list[Path], folder: Path, val_fraction: float, seed: int) -> list[tuple[Path, str, str]]:
    """(file, output name, split) for every photo; names flatten subfolders (a/b.jpg -> a_b), the split is a
    seeded random choice of round(n * val_fraction) files for val (1: all of them, an evaluation set)."""
    if not 0 <= val_fraction <= 1:
        raise ValueError(f"val fraction must be in [0, 1], got {val_fraction}")
    names = [f.relative_to(folder).with_suffix("").as_posix().replace("/", "_") for f in files]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"photos in {folder} give the same output name (same name, different extension or "
                         f"folder): {clashes[:5]}")
    n_val = round(len(files) * val_fraction)
    val = set(np.random.default_rng(seed).permutation(len(files))[:n_val].tolist())
    return [(f, n, "val" if i in val else "train") for i, (f, n) in enumerate(zip(files, names))]


def make_edges_dataset(photos: str | os.PathLike, out: str | os.PathLike, method: str = "canny", size: int = 256,
                       fit: str = "crop", val_fraction: float = 0.1, seed: int = 0, batch_size: int = 16,
                       device: str = "cpu", ext: str = ".jpg", progress: bool = True, pairs: bool = False,
                       **sketch_kw) -> dict[str, int]:
    """Write OUT/{train,val}/NAME{ext} = edges | photo, the photo being each file's right half if `pairs`; returns
    the count per split."""
    from PIL import Image
    from tqdm import tqdm

    from translate.data.folders import list_images

    photos, out = Path(photos), Path(out)
    for split in ("train", "val"):
        if (out / split).is_dir() and any((out / split).iterdir()):
            raise FileExistsError(f"{out / split} is not empty; choose another --out or empty it first")
    jobs = split_names(list_images(photos), photos, val_fraction, seed)
    counts = {"train": 0, "val": 0}
    for start in tqdm(range(0, len(jobs), batch_size), desc="edges", unit="batch", disable=not progress):
        chunk = jobs[start:start + batch_size]
        batch = torch.stack([fit_square(read_photo(f, pairs), size, fit) for f, _, _ in chunk]).to(device)
        ab = torch.cat([sketch(batch, method, **sketch_kw).expand(-1, 3, -1, -1), batch], dim=-1)
        pixels = (ab * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for (_, name, split), arr in zip(chunk, pixels):
            (out / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(out / split / f"{name}{ext}", quality=95)
            counts[split] += 1
    log.info("wrote %d train and %d val pairs (edges | photo) to %s", counts["train"], counts["val"], out)
    return counts
