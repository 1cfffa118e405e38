"""An uploaded file checked and decoded as `translate convert` decodes a file, and its output encoded as convert's.

The size is read from the header before any pixel is decoded: a 100 kB PNG can claim 10^10 pixels. Only the
formats convert reads are opened (Pillow would otherwise try every plugin it has, EPS through Ghostscript among
them). Decoding itself is translate.convert.io.decode, which reads a path: the bytes go to a file in a private
temporary folder for that call and are deleted right after; nothing uploaded is kept.

A colour hint map (translate/data/hints.py) comes with its image: an image with alpha of the image's upright size,
as convert's --hints maps. Its header is checked against the same limits, it is decoded only after its image, and
it is fitted to the size the image is translated at.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from translate.convert.io import decode, output_image
from translate.data.images import ImageReadError
from translate.inference.hint_maps import fit_hint_map

# translate.data.images.IMAGE_EXTENSIONS as Pillow format names (PPM covers .pgm; JPEG covers phones' MPO).
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "PPM")


class UploadError(Exception):
    """A request the server refuses: `status` is the HTTP code, the message says what is wrong with the file."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def read_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header alone; UploadError 415 for a non-image, 400 for a broken header, 413 for
    what Pillow's own guard calls a decompression bomb. The caller checks the size against its Limits."""
    if not data:
        raise UploadError(400, "the uploaded file is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            width, height = img.size
    except Image.DecompressionBombError as error:
        raise UploadError(413, f"image too large: {error}") from error
    except Image.UnidentifiedImageError as error:
        raise UploadError(415, f"not an image: the file is none of {', '.join(FORMATS)}") from error
    except Exception as error:  # Pillow reports a damaged header as OSError, SyntaxError, struct.error...
        raise UploadError(400, f"corrupt image: cannot read its header ({type(error).__name__}: {error})") from error
    if min(width, height) < 1:
        raise UploadError(400, f"corrupt image: its header says {width}x{height} pixels")
    return width, height


def read_hint_header(data: bytes, limits) -> tuple[int, int]:
    """A hint map's (width, height) from its header, within `limits` (a Limits) like an image; UploadError with
    read_size's and the limits' codes, or 422 when it has no alpha to mark its hints."""
    try:
        width, height = read_size(data)
        limits.check_size(width, height)
    except UploadError as error:
        raise UploadError(error.status, f"hint map: {error}") from None
    with Image.open(io.BytesIO(data), formats=FORMATS) as img:
        if not img.has_transparency_data:
            raise UploadError(422, f"the hint map has no alpha channel (mode {img.mode}): its opaque pixels are the "
                                   "hints, so send a PNG with transparency")
    return width, height


def upright_size(data: bytes) -> tuple[int, int]:
    """The (width, height) an image has once decoded: its header's, turned when its EXIF orientation turns it by 90
    degrees (translate.data.images.read_image uprights it). A PNG may be decoded to find its EXIF, which can follow
    the pixels: call it only after the limits accepted the header."""
    with Image.open(io.BytesIO(data), formats=FORMATS) as img:
        turned = img.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
        return (img.height, img.width) if turned else img.size


def decode_hints(data: bytes, size: tuple[int, int], image: bytes, target_size: tuple[int, int]) -> np.ndarray:
    """The (height, width, 4) uint8 map the net reads at `target_size` (width, height), from the hint map `data`
    of header `size` (read_hint_header's) painted on the upright uploaded `image`; 422 when their sizes differ."""
    width, height = upright_size(image)
    if tuple(size) != (width, height):
        raise UploadError(422, f"the hint map is {size[0]}x{size[1]} but its image is {width}x{height}; paint "
                               "hints on an image of the upload's own size")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            rgba = img.convert("RGBA")
    except Exception as error:  # a damaged body: Pillow says OSError, SyntaxError, struct.error...
        raise UploadError(400, f"corrupt hint map: cannot decode it ({type(error).__name__}: {error})") from error
    return fit_hint_map(rgba, (width, height), target_size)


def decode_upload(data: bytes, channels: int, size=None) -> tuple[np.ndarray, np.ndarray | None]:
    """HxWxC uint8 with C = `channels`, plus the alpha if the image has one: exactly what convert feeds the net
    (`size` as convert's: the training scale, or None). Call it only after read_size and the Limits accepted the
    header."""
    with tempfile.TemporaryDirectory(prefix="translate-serve-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            return decode(path, channels, size)
        except ImageReadError as error:
            # the temporary path is the server's business, not the client's
            raise UploadError(400, f"corrupt image: {error.reason.replace(str(path), 'the upload')}") from error


def encode_png(output: np.ndarray, alpha: np.ndarray | None) -> bytes:
    """The PNG convert would write for this output (same image, same zlib level 1)."""
    buffer = io.BytesIO()
    output_image(output, alpha).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
