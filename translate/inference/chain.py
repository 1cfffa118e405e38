"""Two generators in a row, as if the first one's outputs had been written and converted again with the second.

A sketch normaliser (hand-drawn strokes -> the edge style a sketch -> photo model was trained on) is a model of its
own; running the pair must not need a folder of intermediate files. Each output of the first net is taken as the
uint8 image `translate convert` would have written, converted to the second net's channels and resized to its
training scale as convert decodes a file, then translated: the chain computes exactly what the two commands do.

Colour hints are the second net's business (the normaliser draws edges, the photo model paints): a hint map painted
on an input is fitted to the intermediate image the second net receives, which may be of another size.
"""

from __future__ import annotations

import numpy as np

from translate.inference.batching import group_by_size
from translate.inference.hint_maps import fit_hint_maps
from translate.inference.pictures import to_model_input, to_picture


class Chain:
    """`first` then `second` (Translators); `channels` and `scale` are what the second net reads."""

    def __init__(self, first, second, channels: int, scale=None):
        self.first, self.second, self.channels, self.scale = first, second, channels, scale
        self.batch_size = first.batch_size  # convert groups its inputs by the first net's batch

    def __call__(self, images: list[np.ndarray], hints: list | None = None) -> list[np.ndarray]:
        """HxWxC uint8 images -> the second net's outputs. hints: None, or one RGBA map per image (None for none) of
        that image's own size, as Translator takes them; they go to the second net."""
        middle = [to_picture(output) for output in self.first(images)]  # alpha aside, as convert decodes a file
        ready = [to_model_input(picture, self.channels, self.scale) for picture in middle]
        fitted = fit_hint_maps(hints, images, ready)
        outputs: list = [None] * len(ready)
        for group in group_by_size(range(len(ready)), lambda i: ready[i].shape, max(1, self.second.batch_size)):
            group_hints = None if fitted is None else [fitted[i] for i in group]
            for i, output in zip(group, self.second([ready[i] for i in group], group_hints)):
                outputs[i] = output
        return outputs
