"""Overlapping tiles blended with smooth weights: large images convert in memory bounded by the tile size.

Each tile's weight falls from 1 to near 0 (a sin^2 ramp) across the overlap on every side that has a neighbour and
stays 1 on the image border; outputs are accumulated with their weights and divided by the weight sum, so seams
fade out instead of showing. Only a fully convolutional net gives a tiled result equal to the untiled one away from
the blend zones: InstanceNorm (CycleGAN) normalises with each tile's own statistics, so tiles of very different
content can differ in tone; use tiles as large as memory allows for such nets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins covering [0, length): a stride of tile - overlap, the last tile flush with the end."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, tile - overlap)) + [length - tile]


def ramp_weights(length: int, overlap: int, rise: bool, fall: bool) -> torch.Tensor:
    """1-D weights: sin^2 rise over the first `overlap` samples and/or fall over the last; never zero."""
    w = torch.ones(length)
    n = min(overlap, length)
    if n:
        r = torch.sin((torch.arange(n) + 0.5) / n * (math.pi / 2)) ** 2
        if rise:
            w[:n] *= r
        if fall:
            w[length - n:] *= r.flip(0)
    return w


def check_tile(tile: int, overlap: int) -> None:
    if tile <= 0:
        raise ValueError(f"--tile must be positive, got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"--overlap must lie in [0, tile/2] = [0, {tile // 2}], got {overlap}")


def translate_tiled(forward: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int, overlap: int,
                    batch_size: int = 1) -> torch.Tensor:
    """Run `forward` ((N, C, h, w) uint8 -> (N, C', h, w) float) on tiles of a (C, H, W) uint8 image.

    Returns the blended (C', H, W) float32 output. Tiles are cut from the uint8 image and at most `batch_size` are
    in flight, so the network never sees more than batch_size x tile x tile pixels whatever the image size.
    """
    check_tile(tile, overlap)
    _, height, width = image.shape
    th, tw = min(tile, height), min(tile, width)
    ys, xs = tile_starts(height, th, overlap), tile_starts(width, tw, overlap)
    boxes = [(y, x) for y in ys for x in xs]
    out = weight = None
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i:i + batch_size]
        result = forward(torch.stack([image[:, y:y + th, x:x + tw] for y, x in chunk])).float().cpu()
        if out is None:
            out = torch.zeros(result.shape[1], height, width)
            weight = torch.zeros(1, height, width)
        for (y, x), tile_out in zip(chunk, result):
            wy = ramp_weights(th, overlap, rise=y > 0, fall=y + th < height)
            wx = ramp_weights(tw, overlap, rise=x > 0, fall=x + tw < width)
            w = wy[:, None] * wx[None, :]
            out[:, y:y + th, x:x + tw] += tile_out * w
            weight[:, y:y + th, x:x + tw] += w
    return out / weight
