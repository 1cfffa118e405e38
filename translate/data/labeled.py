"""Labeled folders ROOT/<class_name>/<image> and the source + target pairs of domain adaptation (DANN, DTN).

Indexed by sampler keys like the other datasets: `dataset[(index, seed)]` depends on nothing but the key, so the
colour augmentation and the target draw are the same in any worker, process or resumed run. Class indices follow
the sorted class folder names. Images are CxHxW float tensors in [-1, 1], labels int64 scalars.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from translate.data.folders import list_images
from translate.data.images import load_image
from translate.data.sampler import checked_key, derive_seed
from translate.data.transforms import build_transform

AUGMENTS = ("none", "color")
_CROP, _COLOR, _CHOICE_T, _CROP_T = 0, 1, 2, 3


def find_classes(root: str | os.PathLike) -> list[str]:
    """Sorted names of the class folders of ROOT (hidden folders skipped); an error when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"labeled folder {root} {'is not a folder' if root.exists() else 'does not exist'}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"labeled folder {root} has no class subfolders: expected ROOT/<class_name>/<image>")
    return classes


def color_augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random colours for a (grey) digit, as used against MNIST -> MNIST-M shifts: the digit's intensity picks
    between a random background and a random foreground RGB colour, then the image is inverted with p = 0.5."""
    grey = image.astype(np.float32).mean(axis=2, keepdims=True) / 255.0
    background, foreground = rng.uniform(0, 255, size=(2, 1, 1, 3)).astype(np.float32)
    out = background + (foreground - background) * grey
    if rng.random() < 0.5:
        out = 255.0 - out
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class LabeledDataset(Dataset):
    """ROOT/<class_name>/<image> (images searched recursively in each class folder).
    Returns {"image", "label", "path"}; `classes` lists the names, index = label."""

    def __init__(self, root: str | os.PathLike, channels: int = 3, load_size: int = 32, crop_size: int = 32,
                 preprocess: str = "resize", flip: bool = False, train: bool = True, augment: str = "none",
                 classes: list[str] | None = None):
        if augment not in AUGMENTS:
            raise ValueError(f"unknown augment {augment!r}; valid: {', '.join(AUGMENTS)}")
        self.root = Path(root)
        found = find_classes(root)
        self.classes = list(classes) if classes is not None else found
        unknown = sorted(set(found) - set(self.classes))
        if unknown:
            raise ValueError(f"{root}: class folders {unknown} are not among the classes {self.classes}")
        self.samples = [(path, self.classes.index(name)) for name in found for path in list_images(self.root / name)]
        self.channels, self.augment = channels, augment if train else "none"
        self.transform = build_transform(load_size, crop_size, preprocess, flip, train)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key) -> dict:
        index, seed = checked_key(key, len(self))
        path, label = self.samples[index]
        image = load_image(path, 3 if self.augment == "color" else self.channels)
        if self.augment == "color":
            image = color_augment(image, np.random.default_rng(derive_seed(seed, _COLOR)))
            if self.channels == 1:
                image = image.mean(axis=2, keepdims=True).astype(np.uint8)
        try:
            tensor = self.transform(image, derive_seed(seed, _CROP))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        return {"image": tensor, "label": torch.tensor(label, dtype=torch.int64), "path": str(path)}


class DomainPairDataset(Dataset):
    """A labeled source item i % n_source with a target image drawn from the key's seed, as CycleGAN pairs A and
    B. len = max(n_source, n_target). The target folder may be labeled (labels returned as "target_label",
    never needed for training) or a plain folder of images (target_label -1).
    Returns {"source", "label", "target", "target_label", "source_path", "target_path"}."""

    def __init__(self, source: LabeledDataset, target: str | os.PathLike, channels: int = 3, load_size: int = 32,
                 crop_size: int = 32, preprocess: str = "resize", flip: bool = False, train: bool = True):
        self.source = source
        target = Path(target)
        try:
            classes = find_classes(target)
        except ValueError:
            classes = []
        if classes:
            labeled = LabeledDataset(target, channels, load_size, crop_size, preprocess, flip, train, "none")
            self.targets = [(p, label) for p, label in labeled.samples]
        else:
            self.targets = [(p, -1) for p in list_images(target)]
        self.channels = channels
        self.transform = build_transform(load_size, crop_size, preprocess, flip, train)

    def __len__(self) -> int:
        return max(len(self.source), len(self.targets))

    def __getitem__(self, key) -> dict:
        index, seed = checked_key(key, len(self))
        item = self.source[(index % len(self.source), seed)]
        t = int(np.random.default_rng(derive_seed(seed, _CHOICE_T)).integers(len(self.targets)))
        path, label = self.targets[t]
        try:
            target = self.transform(load_image(path, self.channels), derive_seed(seed, _CROP_T))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        return {"source": item["image"], "label": item["label"], "target": target,
                "target_label": torch.tensor(label, dtype=torch.int64), "source_path": item["path"],
                "target_path": str(path)}
