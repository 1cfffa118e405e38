"""What a conversion will do, decided before any pixel is read: which files, which output names, which process.

The input tree is walked once and sorted, so every process of an `accelerate launch` sees the same list and takes
a rank-strided share of it: no file is converted twice and none is left out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from translate.data.folders import visible_files
from translate.data.images import is_image_file

FORMATS = {"png": ".png", "jpg": ".jpg", "same": None}


@dataclass(frozen=True)
class Job:
    source: Path
    rel: str  # the input's path relative to INPUT_DIR, posix style
    out: str  # the output's path relative to OUTPUT_DIR
    target: Path


def check_separate(input_dir: Path, output_dir: Path) -> None:
    """Refuse an OUTPUT_DIR equal to, inside, or containing INPUT_DIR: outputs never land among the inputs and
    a rerun never walks its own outputs."""
    if not input_dir.is_dir():
        what = "is not a folder" if input_dir.exists() else "does not exist"
        raise FileNotFoundError(f"input folder {input_dir} {what}")
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"output folder {output_dir} exists and is not a folder")
    inp, out = input_dir.resolve(), output_dir.resolve()
    if out == inp:
        raise ValueError(f"output folder {output_dir} is the input folder; choose a separate output folder")
    if out.is_relative_to(inp):
        raise ValueError(f"output folder {output_dir} is inside the input folder {input_dir}; choose one outside it")
    if inp.is_relative_to(out):
        raise ValueError(f"input folder {input_dir} is inside the output folder {output_dir}; choose another output")


def walk(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(image files, [(path, why it is skipped)]) under `folder`, sorted: files that are not images and folders
    that cannot be read. Hidden files and folders are not data and are ignored."""
    images, skipped, unreadable = [], [], []
    for path in visible_files(folder, unreadable):
        if is_image_file(path):
            images.append(path)
        else:
            skipped.append((path, f"not an image file (extension {path.suffix or 'none'!r})"))
    skipped += [(path, f"cannot read this folder: {reason}") for path, reason in unreadable]
    return sorted(images), sorted(skipped)


def plan(input_dir: Path, output_dir: Path, fmt: str) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Jobs mirroring the input tree, and what is skipped with the reason (not images, unreadable folders).

    Output names keep the relative path and stem, with the format's extension. When that would give two inputs one
    output ("a.jpg" and "a.png" as png), the input whose extension changes keeps it in front: "a.jpg.png".
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    images, skipped = walk(input_dir)
    rels = [p.relative_to(input_dir) for p in images]
    suffixes = [FORMATS[fmt] or rel.suffix for rel in rels]
    names = [rel.with_suffix(s) for rel, s in zip(rels, suffixes)]
    taken = Counter(names)
    names = [rel.with_name(rel.name + s) if taken[n] > 1 and rel != n else n
             for rel, s, n in zip(rels, suffixes, names)]
    clashes = [n for n, c in Counter(names).items() if c > 1]
    if clashes:
        raise ValueError(f"inputs under {input_dir} would share output names, e.g. {clashes[0]}; rename them")
    return [Job(p, rel.as_posix(), n.as_posix(), output_dir / n) for p, rel, n in zip(images, rels, names)], skipped


def shard(items: list, rank: int, world_size: int) -> list:
    """This process's share: every world_size-th item from `rank`; the shares partition `items` exactly."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    return items[rank::world_size]
