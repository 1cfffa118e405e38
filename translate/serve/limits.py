"""What one request may ask of the server, and the check of an image's size against it, read from the header.

The byte and pixel limits alone let a small file cost minutes: a 114 kB PNG of 39,000,000 x 1 px is under 40
megapixels, yet padding lifts every 1-px row to the net's smallest side and tiling cuts it into ~80,000 forward
passes. The longest side and the aspect ratio bound that: with them, the tile count of any accepted image is small.
"""

from __future__ import annotations

from dataclasses import dataclass

from translate.serve.upload import UploadError


@dataclass
class Limits:
    max_bytes: int = 20 * 1024 * 1024  # of one uploaded file
    max_pixels: int = 40_000_000  # width x height from the header, checked before decoding
    max_side: int = 8192  # the longest side, pixels
    max_aspect: float = 32.0  # longest side / shortest side
    timeout: float = 60.0  # seconds from the upload's arrival to the output, per request

    def check_size(self, width: int, height: int) -> None:
        """UploadError (413 too large, 422 too thin) unless width x height is within the pixel, side and aspect
        limits."""
        if width * height > self.max_pixels:
            raise UploadError(413, f"image too large: {width}x{height} is {width * height / 1e6:.1f} megapixels, "
                                  f"the limit is {self.max_pixels / 1e6:g}")
        if max(width, height) > self.max_side:
            raise UploadError(413, f"image too large: {width}x{height} has a side over {self.max_side} px, the "
                                  f"limit on the longest side")
        if max(width, height) > self.max_aspect * min(width, height):
            raise UploadError(422, f"image too thin: {width}x{height} has an aspect ratio of "
                                  f"{max(width, height) / min(width, height):.0f}:1, the limit is "
                                  f"{self.max_aspect:g}:1")
