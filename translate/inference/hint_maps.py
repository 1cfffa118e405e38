"""Colour-hint maps as people give them (an RGBA image painted over the sketch) -> what a hinted model reads.

A hint map is an RGBA image of the sketch's own size: alpha >= 128 marks a hint pixel, its RGB the colour
(translate/data/hints.py). The model runs at its training scale, so the map is brought to the size the net sees:
hint pixels are averaged over each output pixel (box filter on premultiplied colour) and any output pixel a hint
touches becomes one, with the average colour. A one-pixel pen stroke on a 512 px canvas thus survives the reduction
to a 128 px model, where a nearest-neighbour resize would drop three strokes in four.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from translate.data.hints import ALPHA_THRESHOLD


class HintError(ValueError):
    """A hint map that cannot go with its image (wrong size, unreadable, a model that takes none)."""


def as_rgba_array(hints) -> np.ndarray:
    """A PIL image (any mode; RGB counts as hints everywhere) or an HxWx4 uint8 array -> HxWx4 uint8."""
    if isinstance(hints, Image.Image):
        return np.asarray(hints.convert("RGBA"))
    if not isinstance(hints, np.ndarray):
        raise HintError(f"hints must be a PIL image or an HxWx4 uint8 array, got {type(hints).__name__}")
    if hints.dtype != np.uint8 or hints.ndim != 3 or hints.shape[2] != 4:
        raise HintError(f"hints must be an HxWx4 uint8 array (RGBA), got {hints.dtype} of shape {hints.shape}")
    return hints


def fit_hint_map(hints, source_size: tuple[int, int], target_size: tuple[int, int]) -> np.ndarray:
    """The (target_h, target_w, 4) uint8 map the net reads, from a hint map that paints on an image of
    `source_size` (width, height) now resized to `target_size` (width, height)."""
    rgba = as_rgba_array(hints)
    height, width = rgba.shape[:2]
    if (width, height) != tuple(source_size):
        raise HintError(f"the hint map is {width}x{height} but its image is {source_size[0]}x{source_size[1]}; "
                        "paint hints on an image of the sketch's own size")
    mask = rgba[:, :, 3] >= ALPHA_THRESHOLD
    if tuple(target_size) == (width, height):
        return np.where(mask[:, :, None], np.dstack([rgba[:, :, :3], np.full_like(mask, 255, np.uint8)]), 0) \
            .astype(np.uint8)
    premultiplied = rgba[:, :, :3].astype(np.float32) * mask[:, :, None]
    planes = [*np.moveaxis(premultiplied, 2, 0), mask.astype(np.float32)]
    resized = [np.asarray(Image.fromarray(p, "F").resize(tuple(target_size), Image.Resampling.BOX)) for p in planes]
    coverage = resized[3]
    touched = coverage > 1e-6
    colour = np.stack(resized[:3], axis=2) / np.maximum(coverage, 1e-6)[:, :, None]
    out = np.zeros((target_size[1], target_size[0], 4), np.uint8)
    out[:, :, :3] = np.where(touched[:, :, None], np.clip(colour.round(), 0, 255), 0).astype(np.uint8)
    out[:, :, 3] = touched * 255
    return out


def fit_hint_maps(maps: list | None, sources: list, inputs: list[np.ndarray]) -> list | None:
    """One map per source image (None for none), each fitted from its source's size (a PIL image or an HxWxC
    array) to the size its input reaches the net at (HxWxC arrays); None when no maps are given."""
    if maps is None:
        return None
    if len(maps) != len(sources):
        raise HintError(f"{len(maps)} hint maps for {len(sources)} images: give one per image (None for none)")
    sizes = [(s.shape[1], s.shape[0]) if isinstance(s, np.ndarray) else s.size for s in sources]
    return [None if hint is None else fit_hint_map(hint, size, (x.shape[1], x.shape[0]))
            for hint, size, x in zip(maps, sizes, inputs)]


def read_hint_file(path, source_size: tuple[int, int], target_size: tuple[int, int]) -> np.ndarray:
    """fit_hint_map of an image file; every problem is a HintError naming the file."""
    from translate.data.images import read_image

    try:
        return fit_hint_map(read_image(path), source_size, target_size)
    except HintError as error:
        raise HintError(f"{path}: {error}") from None
    except Exception as error:  # unreadable, not an image
        raise HintError(f"cannot read hints {path}: {error}") from None
