"""Bring a copy of a public dataset (a folder, or a .zip/.tar archive) into the toolkit's folder spec.

aligned (pix2pix):     ROOT/train/*.jpg, ROOT/val/*.jpg, ROOT/test/*.jpg, each file A|B side by side
unaligned (CycleGAN):  ROOT/trainA, ROOT/trainB, ROOT/testA, ROOT/testB

The copy may have the splits at any depth up to three folders down (archives hold a top folder named after the
set; Kaggle-style mirrors add another). Only image files are taken; a split that already has images in ROOT is
kept as it is (so a second run is a no-op) unless `overwrite`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from prepare_catalog import DatasetSource
from prepare_fetch import extract

log = logging.getLogger("prepare")
MAX_DEPTH = 3


def count_images(folder: Path) -> int:
    from translate.data.images import is_image_file

    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and is_image_file(p))


def find_splits(folder: Path, splits) -> Path:
    """The shallowest folder under `folder` (itself included) holding at least one of the `splits` folders."""
    level = [Path(folder)]
    for _ in range(MAX_DEPTH + 1):
        for candidate in level:
            if any((candidate / split).is_dir() for split in splits):
                return candidate
        level = sorted(child for parent in level for child in parent.iterdir()
                       if child.is_dir() and not child.name.startswith((".", "__MACOSX")))
    raise FileNotFoundError(f"no split folder ({', '.join(splits)}) found in {folder} "
                            f"or up to {MAX_DEPTH} folders below it")


def ingest(src: str | os.PathLike, root: str | os.PathLike, source: DatasetSource,
           overwrite: bool = False) -> dict[str, int]:
    """Copy the splits of `src` (folder or archive) into `root`; returns the image count per split in `root`."""
    src, root = Path(src), Path(root)
    if not src.exists():
        raise FileNotFoundError(f"--from {src} does not exist")
    if src.is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{root.name}.extract-") as tmp:
            log.info("extracting %s", src)
            return _ingest_folder(extract(src, Path(tmp)), root, source, overwrite, move=True)
    return _ingest_folder(src, root, source, overwrite, move=False)


def _ingest_folder(folder: Path, root: Path, source: DatasetSource, overwrite: bool, move: bool) -> dict[str, int]:
    from translate.data.images import is_image_file

    base = find_splits(folder, source.counts)
    counts = {}
    for split in source.counts:
        src_split, dst_split = base / split, root / split
        if not src_split.is_dir():
            log.warning("%s: no %s folder in %s", source.name, split, base)
            continue
        if dst_split.is_dir() and count_images(dst_split) and not overwrite:
            log.info("%s already has images; kept (use --overwrite to replace)", dst_split)
        else:
            shutil.rmtree(dst_split, ignore_errors=True)
            files = [p for p in sorted(src_split.rglob("*"))
                     if p.is_file() and not p.name.startswith(".") and is_image_file(p)]
            for path in files:
                target = dst_split / path.relative_to(src_split)
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.move if move else shutil.copy2)(path, target)
            log.info("%s: %d images -> %s", split, len(files), dst_split)
        counts[split] = count_images(dst_split)
    return counts
