"""The reference's preprocessing (resize, random crop, flip, normalise to [-1, 1]) as a seeded albumentations pipeline.

One `ImageTransform` lives in each worker and is reseeded for every sample from the sample's key, so a sample's crop
and flip depend on nothing but that seed. Reseeding shares ONE numpy Generator and ONE random.Random among all ops
(`Compose.set_random_state`, about 10 us). `Compose(seed=...)` / `Compose.set_random_seed` are deliberately not
used: in albumentations 2.0.8 they give every op its own generator seeded with the same number, so the ops draw
identical streams and e.g. the flip decision correlates with the crop position (measured: r = -0.85).
"""

from __future__ import annotations

import os
import random
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # importing albumentations must not phone PyPI

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from albumentations.augmentations.crops.transforms import CropSizeError  # noqa: E402
from albumentations.augmentations.geometric import functional as fgeometric  # noqa: E402

PREPROCESS = ("resize_and_crop", "resize", "crop", "scale_width_and_crop", "scale_width", "none")
SIZE_MULTIPLE = 4  # "none" rounds sizes to a multiple of this, like the reference's __make_power_2(base=4)
_SEED_MOD = 2**64


class ResizeTo(A.DualTransform):
    """Resize to a size computed from the input size by `rule`, bicubic (INTER_AREA when shrinking, like PIL's
    antialiased bicubic in the reference). Rules: "scale_width" (width -> size, height keeps the aspect ratio but
    at least min_height) and "multiple" (each side rounded to the nearest multiple of `size`)."""

    def __init__(self, rule: str, size: int, min_height: int = 0, p: float = 1.0):
        super().__init__(p=p)
        if rule not in ("scale_width", "multiple"):
            raise ValueError(f"unknown resize rule {rule!r}")
        self.rule, self.size, self.min_height = rule, size, min_height

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        if self.rule == "scale_width":
            return {"target": scale_width_size(height, width, self.size, self.min_height)}
        return {"target": multiple_size(height, width, self.size)}

    def apply(self, img: np.ndarray, target: tuple[int, int] = (0, 0), **params: Any) -> np.ndarray:
        shrink = target[0] < img.shape[0] or target[1] < img.shape[1]
        return fgeometric.resize(img, target, cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("rule", "size", "min_height")


def scale_width_size(height: int, width: int, target_width: int, min_height: int) -> tuple[int, int]:
    """(h, w) of the reference's __scale_width: width -> target_width, height proportional but >= min_height."""
    if width == target_width and height >= min_height:
        return height, width
    return int(max(target_width * height / width, min_height)), target_width


def multiple_size(height: int, width: int, base: int) -> tuple[int, int]:
    """(h, w) rounded to the nearest multiple of base (at least base), as the reference's __make_power_2."""
    return max(base, int(round(height / base) * base)), max(base, int(round(width / base) * base))


def build_ops(load_size: int, crop_size: int, preprocess: str, flip: bool, train: bool) -> list[A.BasicTransform]:
    """The op list for a preprocess mode; train=False swaps the random crop for a centre crop and never flips."""
    if preprocess not in PREPROCESS:
        raise ValueError(f"unknown preprocess {preprocess!r}; expected one of {', '.join(PREPROCESS)}")
    if "crop" in preprocess and preprocess != "crop" and crop_size > load_size:
        raise ValueError(f"crop_size {crop_size} is larger than load_size {load_size}")
    ops: list[A.BasicTransform] = []
    if preprocess.startswith("resize"):
        ops.append(A.Resize(load_size, load_size, interpolation=cv2.INTER_CUBIC, area_for_downscale="image"))
    elif preprocess.startswith("scale_width"):
        ops.append(ResizeTo("scale_width", load_size, min_height=crop_size))
    elif preprocess == "none":
        ops.append(ResizeTo("multiple", SIZE_MULTIPLE))
    if preprocess.endswith("crop"):
        ops.append(A.RandomCrop(crop_size, crop_size) if train else A.CenterCrop(crop_size, crop_size))
    if flip and train:
        ops.append(A.HorizontalFlip(p=0.5))
    return ops


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWxC (or HxW) uint8 -> float32 CxHxW in [-1, 1]: ToTensor then Normalize(0.5, 0.5) in one vectorised op.

    Done in numpy, not torch: torch's intra-op thread pool made this 100x slower on a busy machine (35 ms vs
    0.1 ms for 256x256x3) when called from the main process.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)  # one copy, C order
    chw /= 127.5
    chw -= 1.0
    return torch.from_numpy(chw)


class ImageTransform:
    """A seeded pipeline: `t(image, seed)` for one image, `t.pair(a, b, seed)` for a pair cropped and flipped
    identically. Not thread-safe (it reseeds shared state per call); each DataLoader worker has its own copy."""

    def __init__(self, ops: list[A.BasicTransform]):
        self.compose = A.Compose(ops, additional_targets={"image_b": "image"})

    def __call__(self, image: np.ndarray, seed: int = 0) -> torch.Tensor:
        return to_tensor(self._run(seed, image=image)["image"])

    def pair(self, image: np.ndarray, image_b: np.ndarray, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        if image.shape[:2] != image_b.shape[:2]:
            raise ValueError(f"a pair must have one size, got {image.shape[:2]} and {image_b.shape[:2]} (H, W)")
        out = self._run(seed, image=image, image_b=image_b)
        return to_tensor(out["image"]), to_tensor(out["image_b"])

    def _run(self, seed: int, **data: np.ndarray) -> dict[str, Any]:
        seed = int(seed) % _SEED_MOD
        self.compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        try:
            return self.compose(**data)
        except CropSizeError as err:  # not a ValueError in albumentations; callers catch ValueError
            raise ValueError(str(err)) from err

    def __repr__(self) -> str:
        return f"ImageTransform({self.compose.transforms!r})"


def build_transform(load_size: int = 286, crop_size: int = 256, preprocess: str = "resize_and_crop",
                    flip: bool = True, train: bool = True) -> ImageTransform:
    """The reference's get_transform: load_size resize, crop_size crop (random when training, centred otherwise),
    optional random horizontal flip when training, then [-1, 1] normalisation. Modes: resize_and_crop, resize,
    crop, scale_width_and_crop, scale_width, none (sizes rounded to a multiple of 4)."""
    return ImageTransform(build_ops(load_size, crop_size, preprocess, flip, train))
