"""What the Python API accepts and returns: PIL images or numpy arrays, as the model's HxWxC uint8 and back.

A PIL image comes back as a PIL image of the model's output mode, a numpy array as an HxWxC' uint8 array: the same
kind that went in. Conversion is translate convert's (translate.data.images.convert_channels), and resizing to the
training scale its bicubic resize, so that the API computes what convert writes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from translate.data.images import CHANNEL_MODES, convert_channels
from translate.inference.scale import TrainingScale


def to_model_input(image, channels: int | None, scale: TrainingScale | None) -> np.ndarray:
    """HxWxC uint8 for the model: a PIL image converted to `channels`, an array checked; both brought to `scale`."""
    if isinstance(image, Image.Image):
        if scale is not None:
            image = image.resize(scale.size(*image.size), Image.Resampling.BICUBIC)
        return convert_channels(image, channels or len(image.getbands()))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC uint8 array, got {image.dtype} of shape {image.shape}")
    array = image[:, :, None] if image.ndim == 2 else image
    if channels is not None and array.shape[2] != channels:
        raise ValueError(f"the model reads {channels}-channel images; the array has {array.shape[2]} channels "
                         "(pass a PIL image to have it converted)")
    if scale is not None:
        mode = CHANNEL_MODES.get(array.shape[2])
        if mode is None:
            raise ValueError(f"cannot resize a {array.shape[2]}-channel array; pass 1, 3 or 4 channels")
        resized = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode)
        return to_model_input(resized, array.shape[2], scale)
    return array


def to_picture(array: np.ndarray) -> Image.Image:
    """An HxWxC uint8 output as the image convert writes for it (1 channel: a gray image)."""
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def like_input(output: np.ndarray, original) -> Image.Image | np.ndarray:
    """The output as the kind of object the caller passed: a PIL image for a PIL image, else the array."""
    return to_picture(output) if isinstance(original, Image.Image) else output
