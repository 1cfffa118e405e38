"""Finding image files and telling which dataset layout a root folder uses.

Layouts, for a phase such as "train":
  aligned    ROOT/train/*.jpg            pix2pix: A and B side by side in one file (A left, B right)
  twin       ROOT/train/A, ROOT/train/B  pairs in two folders, matched by relative path without extension
  unaligned  ROOT/trainA, ROOT/trainB    CycleGAN: two unrelated collections
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from translate.data.images import is_image_file
from translate.data_root import prepare_hint

LAYOUTS = ("aligned", "twin", "unaligned")
GALLERY_DIR = "_gallery"  # translate gallery's pages and thumbnails, beside the outputs: never data to score
_SHOWN = 5  # how many offending names an error message lists


def visible_files(folder: str | os.PathLike, unreadable: list | None = None) -> Iterator[Path]:
    """Every file under `folder`, hidden files and folders left out. Symlinked folders are followed, each real
    folder once (by device and inode): a link loop (`ln -s .. sub/up`) or a second link to a folder adds nothing.
    Folders that cannot be listed are appended to `unreadable` as (path, reason) when it is given."""
    seen = set()

    def report(error: OSError) -> None:
        if unreadable is not None:
            unreadable.append((Path(error.filename), error.strerror or str(error)))

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True, onerror=report):
        status = os.stat(dirpath)
        if (status.st_dev, status.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # sorted: which path wins is fixed
        yield from (Path(dirpath, f) for f in filenames if not f.startswith("."))


def list_images(folder: str | os.PathLike, recursive: bool = True, skip_dirs: tuple[str, ...] = ()) -> list[Path]:
    """All image files under `folder`, sorted, so that index i names the same file on every machine.

    Hidden files and folders (".DS_Store", "._x.jpg" AppleDouble files, ".ipynb_checkpoints") are skipped: they
    are never data, nor is anything inside a folder named in `skip_dirs` (evaluation skips GALLERY_DIR).
    Symlinked folders are followed, since datasets are often assembled from links.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"image folder {folder} {what}{prepare_hint(folder)}")
    if recursive:
        found = [p for p in visible_files(folder) if is_image_file(p)
                 and not set(p.relative_to(folder).parts[:-1]) & set(skip_dirs)]
    else:
        found = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file() and is_image_file(p)]
    if not found:
        raise ValueError(f"no images found in {folder}")
    return sorted(found)


def has_images_directly(folder: Path) -> bool:
    """Whether `folder` itself (not a subfolder) holds at least one image file."""
    return folder.is_dir() and any(not p.name.startswith(".") and p.is_file() and is_image_file(p)
                                   for p in folder.iterdir())


def detect_layout(root: str | os.PathLike, phase: str = "train") -> str:
    """"aligned", "twin" or "unaligned" (checked in that order), or FileNotFoundError saying what was looked for."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist{prepare_hint(root)}")
    if has_images_directly(root / phase):
        return "aligned"
    if (root / phase / "A").is_dir() and (root / phase / "B").is_dir():
        return "twin"
    if (root / f"{phase}A").is_dir() and (root / f"{phase}B").is_dir():
        return "unaligned"
    raise FileNotFoundError(
        f"no dataset for phase {phase!r} under {root}: looked for image files directly in {root / phase} (aligned), "
        f"folders {root / phase / 'A'} and {root / phase / 'B'} (twin), "
        f"folders {root / (phase + 'A')} and {root / (phase + 'B')} (unaligned)")


def match_pairs(folder_a: str | os.PathLike, folder_b: str | os.PathLike,
                skip_dirs: tuple[str, ...] = ()) -> list[tuple[Path, Path]]:
    """Pairs (a, b) whose paths relative to their folders agree without the extension (A/x.jpg ~ B/x.png).

    Every file needs exactly one partner: a name on one side only, or two files with one name on one side
    ("x.jpg" and "x.png"), is a ValueError, since silently dropping pairs hides a broken dataset.
    """
    side_a, side_b = _by_stem(Path(folder_a), skip_dirs), _by_stem(Path(folder_b), skip_dirs)
    only_a, only_b = sorted(side_a.keys() - side_b.keys()), sorted(side_b.keys() - side_a.keys())
    if only_a or only_b:
        raise ValueError(f"twin folders {folder_a} and {folder_b} do not match: "
                         f"{len(only_a)} only in A {_few(only_a)}, {len(only_b)} only in B {_few(only_b)}")
    return [(side_a[k], side_b[k]) for k in sorted(side_a)]


def _by_stem(folder: Path, skip_dirs: tuple[str, ...] = ()) -> dict[str, Path]:
    """Relative path without extension -> file; two files sharing a key make the pairing ambiguous."""
    out: dict[str, Path] = {}
    clashes = []
    for path in list_images(folder, skip_dirs=skip_dirs):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in out:
            clashes.append(f"{out[key].name} / {path.name}")
        out[key] = path
    if clashes:
        raise ValueError(f"ambiguous names in {folder} (same name, different extension): {_few(clashes)}")
    return out


def _few(names: list[str]) -> str:
    """A short bracketed sample of names for an error message."""
    more = f", ... (+{len(names) - _SHOWN})" if len(names) > _SHOWN else ""
    return "[" + ", ".join(names[:_SHOWN]) + more + "]"
