"""Reading one image file into a uint8 array with a known channel count, or failing with the file's name.

Datasets mix modes freely (palette PNGs, 16-bit scans, CMYK JPEGs, phone photos with an EXIF rotation), and a
network wants a fixed channel count, so every mode is mapped explicitly instead of trusting a default conversion.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}

# Modes Pillow can turn into an 8-bit base mode (L, LA, RGB, RGBA) with a plain convert().
_BASE_OF = {"1": "L", "La": "LA", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB",
            "HSV": "RGB", "LAB": "RGB"}
_BASE_MODES = frozenset({"L", "LA", "RGB", "RGBA"})


class ImageReadError(OSError):
    """An image file that cannot be used; the message names the file and what is wrong with it.

    `ImageReadError(path, reason)`. The one-argument form `ImageReadError(message)` exists because a DataLoader
    worker re-raises its exception in the main process as `type(exc)(formatted_traceback)`; without it the error
    would arrive as a bare RuntimeError.
    """

    def __init__(self, path: str | os.PathLike, reason: str | None = None):
        if reason is None:
            super().__init__(str(path))
            self.path, self.reason = None, str(path)
        else:
            super().__init__(f"cannot read image {os.fspath(path)}: {reason}")
            self.path, self.reason = os.fspath(path), reason

    def __reduce__(self):  # keep (path, reason) across pickling
        return (type(self), (self.path, self.reason) if self.path is not None else (self.reason,))


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether the name ends in a supported image extension (case-insensitive); the contents are not opened."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open, fully decode and upright an image, reduced to an 8-bit base mode: L, LA, RGB or RGBA.

    Decoding everything here (not lazily later) is what turns a truncated file into an error at read time.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise ImageReadError(path, "file is empty (0 bytes)")
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)  # returns a decoded copy, so closing the file is safe
        return _to_base_mode(img)
    except ImageReadError:
        raise
    except FileNotFoundError as err:
        raise ImageReadError(path, "file not found") from err
    except IsADirectoryError as err:
        raise ImageReadError(path, "is a directory, not a file") from err
    except Image.UnidentifiedImageError as err:
        raise ImageReadError(path, "not a recognised image format (corrupt, or not an image)") from err
    except Exception as err:  # Pillow signals broken data with OSError, ValueError, SyntaxError, struct.error...
        raise ImageReadError(path, f"{type(err).__name__}: {err}") from err


def convert_channels(img: Image.Image, channels: int) -> np.ndarray:
    """An image in a base mode as HxWxC uint8 with C = `channels` (1 gray, 3 RGB, 4 RGBA).

    Alpha is dropped, not composited: RGBA -> RGB keeps the colour stored under transparent pixels. Gray -> RGB
    repeats the gray; a missing alpha becomes opaque (255). RGB -> gray uses Pillow's ITU-R 601-2 luma, as the
    reference's transforms.Grayscale does.
    """
    if channels not in CHANNEL_MODES:
        raise ValueError(f"channels must be 1, 3 or 4, got {channels!r}")
    arr = np.asarray(img.convert(CHANNEL_MODES[channels]))
    return arr[:, :, None] if arr.ndim == 2 else arr


def load_image(path: str | os.PathLike, channels: int = 3) -> np.ndarray:
    """Read an image file as an HxWxC uint8 array with C = `channels`; any failure is an ImageReadError."""
    if channels not in CHANNEL_MODES:
        raise ValueError(f"channels must be 1, 3 or 4, got {channels!r}")
    img = read_image(path)
    try:
        return convert_channels(img, channels)
    except Exception as err:
        raise ImageReadError(path, f"cannot convert mode {img.mode} to {channels} channels: {err}") from err


def _to_base_mode(img: Image.Image) -> Image.Image:
    """Map any Pillow mode to L, LA, RGB or RGBA without losing the dynamic range of 16-bit or float data."""
    mode = img.mode
    if mode in _BASE_MODES:
        return img
    if mode == "P":
        transparent = "transparency" in img.info or img.palette is not None and img.palette.mode == "RGBA"
        return img.convert("RGBA" if transparent else "RGB")
    if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N, I (32-bit int holding 16-bit data)
        return Image.fromarray(_scale_16bit(np.asarray(img)), mode="L")
    if mode == "F":
        return Image.fromarray(_scale_float(np.asarray(img)), mode="L")
    if mode in _BASE_OF:
        return img.convert(_BASE_OF[mode])
    raise ValueError(f"unsupported image mode {mode!r}")


def _scale_16bit(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 -> 255, 32768 -> 128); a 32-bit 'I' image is read as 16-bit data."""
    wide = np.clip(arr.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _scale_float(arr: np.ndarray) -> np.ndarray:
    """Float data: taken as 0..1 when it all lies there, else as 0..255; clipped, never min-max stretched."""
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
