"""Data layer: robust image reading, dataset layouts, seeded albumentations pipelines, key-indexed datasets, a
resumable sharded sampler, the DataLoader, and DiffAugment."""

from translate.data.datasets import PairedDataset, SingleDataset, UnpairedDataset
from translate.data.diffaugment import DiffAugment, diff_augment
from translate.data.folders import detect_layout, list_images, match_pairs
from translate.data.images import ImageReadError, is_image_file, load_image
from translate.data.loader import build_loader
from translate.data.sampler import InfiniteSampler, Key
from translate.data.transforms import ImageTransform, build_transform, to_tensor

__all__ = [
    "DiffAugment",
    "ImageReadError",
    "ImageTransform",
    "InfiniteSampler",
    "Key",
    "PairedDataset",
    "SingleDataset",
    "UnpairedDataset",
    "build_loader",
    "build_transform",
    "detect_layout",
    "diff_augment",
    "is_image_file",
    "list_images",
    "load_image",
    "match_pairs",
    "to_tensor",
]
