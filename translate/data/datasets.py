"""Paired (pix2pix), unpaired (CycleGAN) and single-folder datasets, indexed by sampler keys.

`dataset[(index, seed)]` depends on nothing but the key: crops, flips, a paired sample's sketch augmentation and the
random B of an unpaired sample are all drawn from `seed`, so a sample is the same in any worker, process or resumed
run. `dataset[index]` is `dataset[(index, 0)]`. Every item is a dict of CxHxW float tensors in [-1, 1] plus the
source paths as strings.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from translate.data.folders import detect_layout, list_images, match_pairs
from translate.data.hints import object_pixels, sample_hints
from translate.data.images import CHANNEL_MODES, ImageReadError, convert_channels, load_image, read_image
from translate.data.sampler import checked_key, derive_seed
from translate.data.sketch import SketchAugment
from translate.data.transforms import ImageTransform, build_transform

DIRECTIONS = ("AtoB", "BtoA")
# streams derived from a key's seed, one per independent random use
_PAIR, _CHOICE_B, _CROP_A, _CROP_B, _SKETCH, _HINTS, _TARGET, _CROP_TARGET = 0, 1, 2, 3, 4, 5, 6, 7


def _check(channels_a: int, channels_b: int, direction: str) -> None:
    for name, c in (("channels_a", channels_a), ("channels_b", channels_b)):
        if c not in CHANNEL_MODES:
            raise ValueError(f"{name} must be 1, 3 or 4, got {c!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")


class PairedDataset(Dataset):
    """pix2pix pairs from ROOT/phase/*.jpg (A|B side by side) or ROOT/phase/A + ROOT/phase/B (same names).

    An aligned image splits at w // 2: A = columns [0, w//2), B = the next w//2 columns (an odd width drops its
    last column so both halves have one size). A and B get the identical resize/crop/flip. direction="BtoA" swaps
    the sides, so "A" is always the model input. channels_a/channels_b are the channel counts of the returned "A"
    (model input) and "B" (target), whatever the direction, as the reference's input_nc/output_nc.
    sketch_augment names translate.data.sketch ops ("" = none) that make the returned "A", an edge map, look drawn,
    on a share sketch_augment_p of the samples; they run after the crop and flip, when training only: evaluation
    always sees the dataset's own A.
    colour_hints adds "hints": sparse colour hints drawn from B (translate/data/hints.py), the model's 4 planes,
    drawn from the key's seed in evaluation too, so a sample sheet shows the same hints every time.
    target (domain adaptation in the translator): a folder of unpaired inputs of another kind (hand-drawn sketches
    for a model trained on edge maps); each sample adds "T", one of them drawn from the key's seed, resized, cropped
    and flipped as A is (its own draw), with channels_a channels.
    Returns {"A", "B", "A_path", "B_path"} (both paths are the AB file for the aligned layout).
    """

    def __init__(self, root: str | os.PathLike, phase: str = "train", channels_a: int = 3, channels_b: int = 3,
                 direction: str = "AtoB", load_size: int = 286, crop_size: int = 256,
                 preprocess: str = "resize_and_crop", flip: bool = True, train: bool = True,
                 sketch_augment: str = "", sketch_augment_p: float = 1.0, colour_hints: bool = False,
                 target: str | os.PathLike = ""):
        _check(channels_a, channels_b, direction)
        if colour_hints and channels_b != 3:
            raise ValueError(f"colour hints are drawn from an RGB target (channels_b 3), got {channels_b} channels")
        self.colour_hints = colour_hints
        root = Path(root)
        sketch = SketchAugment(sketch_augment, sketch_augment_p)  # names checked even when not training
        self.sketch = sketch if train and sketch.ops else None
        self.layout = detect_layout(root, phase)
        if self.layout == "aligned":
            self.pairs = [(p, p) for p in list_images(root / phase)]
        elif self.layout == "twin":
            self.pairs = match_pairs(root / phase / "A", root / phase / "B")
        else:
            raise ValueError(f"{root} has the unaligned layout ({phase}A/{phase}B); a paired dataset needs "
                             f"{root / phase}/*.jpg (A|B side by side) or {root / phase}/A + {root / phase}/B")
        self.swap = direction == "BtoA"
        # channel counts of the A and B sides as stored on disk (the returned "A" is disk B when swapped)
        self.disk_channels = (channels_b, channels_a) if self.swap else (channels_a, channels_b)
        self.transform = build_transform(load_size, crop_size, preprocess, flip, train)
        self.targets = list_images(Path(target)) if target else []
        if target and not self.targets:
            raise ValueError(f"target folder {target} holds no images")
        self.channels_a = channels_a

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key) -> dict[str, torch.Tensor | str]:
        index, seed = checked_key(key, len(self))
        path_a, path_b = self.pairs[index]
        a, b = self._load(path_a, path_b)
        if self.swap:
            a, b, path_a, path_b = b, a, path_b, path_a
        try:
            tensor_a, tensor_b = self.transform.pair(a, b, derive_seed(seed, _PAIR))
        except ValueError as err:
            raise ValueError(f"pair {path_a} / {path_b}: {err}") from err
        if self.sketch is not None:
            tensor_a = self.sketch(tensor_a, tensor_b, derive_seed(seed, _SKETCH))
        sample = {"A": tensor_a, "B": tensor_b, "A_path": str(path_a), "B_path": str(path_b)}
        if self.colour_hints:
            sample["hints"] = sample_hints(tensor_b, np.random.default_rng(derive_seed(seed, _HINTS)),
                                           where=object_pixels(tensor_b))
        if self.targets:
            pick = int(np.random.default_rng(derive_seed(seed, _TARGET)).integers(len(self.targets)))
            sample["T"] = _transform_one(self.transform, self.targets[pick], self.channels_a,
                                         derive_seed(seed, _CROP_TARGET))
            sample["T_path"] = str(self.targets[pick])
        return sample

    def _load(self, path_a: Path, path_b: Path) -> tuple[np.ndarray, np.ndarray]:
        channels_a, channels_b = self.disk_channels
        if self.layout == "twin":
            return load_image(path_a, channels_a), load_image(path_b, channels_b)
        ab = read_image(path_a)
        width, height = ab.size
        half = width // 2
        if half < 1:
            raise ImageReadError(path_a, f"{width} px wide: an aligned image needs A and B side by side")
        a = convert_channels(ab.crop((0, 0, half, height)), channels_a)
        b = convert_channels(ab.crop((half, 0, 2 * half, height)), channels_b)
        return a, b


class UnpairedDataset(Dataset):
    """CycleGAN domains ROOT/phaseA and ROOT/phaseB; item i is A[i % nA] with a B drawn from the key's seed.

    len = max(nA, nB), as in the reference. serial_batches=True takes B[i % nB] instead of a random B; its default
    (None) means "random B when training, serial otherwise" (the reference's test options set serial_batches).
    A and B get independent crops/flips. direction="BtoA" swaps the domains; channels_a/channels_b always describe
    the returned "A" and "B" (as the reference's input_nc/output_nc). Returns {"A", "B", "A_path", "B_path"}.
    """

    def __init__(self, root: str | os.PathLike, phase: str = "train", channels_a: int = 3, channels_b: int = 3,
                 direction: str = "AtoB", load_size: int = 286, crop_size: int = 256,
                 preprocess: str = "resize_and_crop", flip: bool = True, train: bool = True,
                 serial_batches: bool | None = None):
        _check(channels_a, channels_b, direction)
        root = Path(root)
        self.files_a, self.files_b = list_images(root / f"{phase}A"), list_images(root / f"{phase}B")
        self.channels_a, self.channels_b = channels_a, channels_b
        if direction == "BtoA":
            self.files_a, self.files_b = self.files_b, self.files_a
        self.serial_batches = (not train) if serial_batches is None else serial_batches
        self.transform = build_transform(load_size, crop_size, preprocess, flip, train)

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, key) -> dict[str, torch.Tensor | str]:
        index, seed = checked_key(key, len(self))
        path_a = self.files_a[index % len(self.files_a)]
        path_b = self.files_b[self.b_index(index, seed)]
        return {"A": _transform_one(self.transform, path_a, self.channels_a, derive_seed(seed, _CROP_A)),
                "B": _transform_one(self.transform, path_b, self.channels_b, derive_seed(seed, _CROP_B)),
                "A_path": str(path_a), "B_path": str(path_b)}

    def b_index(self, index: int, seed: int) -> int:
        """Which B goes with item `index`: serial, or drawn from the key's seed alone."""
        if self.serial_batches:
            return index % len(self.files_b)
        return int(np.random.default_rng(derive_seed(seed, _CHOICE_B)).integers(len(self.files_b)))


class SingleDataset(Dataset):
    """One folder of images for inference: {"A", "A_path"}. Defaults are the reference's test settings (no random
    crop, no flip, load_size == crop_size so nothing is cropped away)."""

    def __init__(self, folder: str | os.PathLike, channels: int = 3, load_size: int = 256, crop_size: int = 256,
                 preprocess: str = "resize_and_crop", flip: bool = False, train: bool = False):
        _check(channels, channels, "AtoB")
        self.files = list_images(folder)
        self.channels = channels
        self.transform = build_transform(load_size, crop_size, preprocess, flip, train)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key) -> dict[str, torch.Tensor | str]:
        index, seed = checked_key(key, len(self))
        path = self.files[index]
        return {"A": _transform_one(self.transform, path, self.channels, derive_seed(seed, _CROP_A)),
                "A_path": str(path)}


def _transform_one(transform: ImageTransform, path: Path, channels: int, seed: int) -> torch.Tensor:
    image = load_image(path, channels)
    try:
        return transform(image, seed)
    except ValueError as err:  # e.g. an image smaller than crop_size with preprocess="crop"
        raise ValueError(f"{path}: {err}") from err
