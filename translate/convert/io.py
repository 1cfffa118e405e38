"""Reading inputs (in DataLoader workers) and writing outputs atomically, for `translate convert`.

A bad input never stops a run: decoding failures travel back as a reason string with the item. An output exists
only once complete (temp file + rename), so a rerun can trust any output it finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from translate.convert.plan import Job
from translate.convert.safe_paths import OutputFolder
from translate.data.images import CHANNEL_MODES, convert_channels, read_image
from translate.inference.hint_maps import read_hint_file

# Modes each writer accepts; anything else falls back in the order of _FALLBACKS (alpha dropped for JPEG/PPM).
_SAVE_MODES = {"JPEG": ("L", "RGB"), "PPM": ("L", "RGB"), "WEBP": ("RGB", "RGBA"), "BMP": ("L", "RGB", "RGBA")}
_FALLBACKS = {"L": ("RGB",), "LA": ("RGBA", "L"), "RGB": (), "RGBA": ("RGB",)}
# PNG at zlib level 1 (OpenCV's default too): 256 px in 8 ms instead of 49 ms at Pillow's 6, files ~15% larger.
_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "PNG": {"compress_level": 1}}


@dataclass
class Decoded:
    index: int
    image: np.ndarray | None = None  # HxWxC uint8, C = the model's input channels
    alpha: np.ndarray | None = None  # HxW uint8 when the input has transparency
    error: str | None = None
    frames: int = 1  # > 1: a multi-page or animated input, of which only the first frame is converted
    hints: np.ndarray | None = None  # HxWx4 uint8 colour hints fitted to `image`, when --hints gave a map


HALVES = ("left", "right")


def decode(path: Path, channels: int, size=None, half: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """An input as the model's channel count (any mode, 16-bit, EXIF-rotated), plus its alpha if it has one.

    half: the left or right half of an aligned A|B file (pix2pix's datasets), taken before resizing. size: None, or
    an object whose size(width, height) gives the size to resize to (translate.inference.scale)."""
    return prepare(read_input(path, half), channels, size)


def read_input(path: Path, half: str | None = None) -> Image.Image:
    """The image as drawn or photographed: decoded, and cut to its `half` of an A|B file."""
    img = read_image(path)
    if half is not None:
        if img.width < 2:
            raise ValueError(f"{img.width} px wide: no {half} half to take")
        middle = img.width // 2
        img = img.crop((0, 0, middle, img.height) if half == "left" else (middle, 0, 2 * middle, img.height))
    return img


def prepare(img: Image.Image, channels: int, size=None) -> tuple[np.ndarray, np.ndarray | None]:
    """decode's second half: resized to `size` and converted to `channels`, with the alpha if any."""
    if size is not None and img.size != size.size(*img.size):
        img = img.resize(size.size(*img.size), Image.Resampling.BICUBIC)
    alpha = np.asarray(img.getchannel("A")) if img.mode in ("LA", "RGBA") else None
    return convert_channels(img, channels), alpha


class DecodeDataset(Dataset):
    """Decoded inputs for convert's workers; with `hints_dir`, each input's hint map HINTS/REL.png (if there is one,
    of the input's own size) fitted to the decoded image. A bad map fails its image, with the reason."""

    def __init__(self, jobs: list[Job], channels: int, size=None, half: str | None = None,
                 hints_dir: Path | None = None):
        self.jobs, self.channels, self.size, self.half, self.hints_dir = jobs, channels, size, half, hints_dir

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> Decoded:
        job = self.jobs[index]
        try:
            img = read_input(job.source, self.half)
            image, alpha = prepare(img, self.channels, self.size)
            hints = None
            hint_path = hint_file(self.hints_dir, job.rel) if self.hints_dir else None
            if hint_path is not None and hint_path.is_file():
                hints = read_hint_file(hint_path, img.size, (image.shape[1], image.shape[0]))
        except Exception as error:  # reported per file, never fatal
            return Decoded(index, error=str(error))
        return Decoded(index, image, alpha, frames=frame_count(job.source), hints=hints)


def hint_file(hints_dir: Path, rel: str) -> Path:
    """Where the hint map of input REL lives: HINTS/REL with the extension .png (a.jpg -> a.png)."""
    return (hints_dir / rel).with_suffix(".png")


def frame_count(path: Path) -> int:
    """Pages of a TIFF, frames of an animated WebP or PNG; 1 for a still image. Counted so that a run can say that
    only the first was converted, instead of dropping the rest without a word."""
    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1)
    except Exception:  # the first frame decoded fine; a damaged later one is not worth failing the file for
        return 1


def keep(item):
    """collate_fn that leaves items as they are (a module-level function, so workers can pickle it)."""
    return item


def output_image(array: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """HxWxC uint8 network output as a PIL image; the input's alpha is carried over to 1- and 3-channel outputs."""
    img = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array, CHANNEL_MODES[array.shape[2]])
    if alpha is not None and img.mode in ("L", "RGB"):
        img.putalpha(Image.fromarray(alpha, "L"))
    return img


def save_atomic(img: Image.Image, path: Path, folder: OutputFolder) -> None:
    """Write `img` in the format its extension names, through `folder`'s checks (no link is followed); a crash
    leaves no half-written file under `path`."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path}: unknown image extension {path.suffix!r}")
    allowed = _SAVE_MODES.get(fmt, ("L", "LA", "RGB", "RGBA"))
    mode = next(m for m in (img.mode, *_FALLBACKS[img.mode], "RGB") if m in allowed)
    with folder.open_atomic(path) as file:
        (img if mode == img.mode else img.convert(mode)).save(file, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
