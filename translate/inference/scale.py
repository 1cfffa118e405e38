"""The scale a generator was trained at, so that inference shows it images like the ones it learnt from.

A generator trained on 256 px photos resized to load_size 143 has learnt what a zebra stripe looks like at 143 px:
given the 256 px photo itself it paints stripes of the wrong width, and its outputs stop looking like its sample
sheets. Inference therefore resizes each image as training did, keeping its aspect ratio: the shorter side to the
export's load_size (preprocess resize*), or the width (scale_width*). Exports whose training did not resize
(preprocess crop / none) run at the image's own size, as does `--size keep`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingScale:
    pixels: int
    side: str = "shorter"  # or "width"

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) brought to this scale, aspect kept."""
        factor = self.pixels / (width if self.side == "width" else min(width, height))
        return max(1, round(width * factor)), max(1, round(height * factor))

    def __str__(self) -> str:
        return f"{self.side} side {self.pixels} px"


def training_scale(description: dict) -> TrainingScale | None:
    """How an export's training images were resized, or None when they were not (or the export does not say)."""
    preprocess = description.get("training_config", {}).get("data", {}).get("preprocess", "resize_and_crop")
    load_size = description.get("preprocess", {}).get("load_size")
    if load_size is None or not preprocess.startswith(("resize", "scale_width")):
        return None
    return TrainingScale(int(load_size), "width" if preprocess.startswith("scale_width") else "shorter")


@dataclass(frozen=True)
class FixedSize:
    width: int
    height: int

    def size(self, width: int, height: int) -> tuple[int, int]:
        return self.width, self.height

    def __str__(self) -> str:
        return f"{self.width}x{self.height} px"


SIZE_HELP = ("train: resize each image as the model's training images were (the export's load_size; aspect kept); "
             "keep: the image's own size; WIDTHxHEIGHT, e.g. 512x256: that size")


def resolve_size(text: str, description: dict | None) -> TrainingScale | FixedSize | None:
    """What --size asks for, given the export's description (None for a reference .pth, which records no scale:
    it runs at the image's own size). None means: no resizing."""
    if text == "keep":
        return None
    if text == "train":
        return training_scale(description) if description is not None else None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        width = height = 0
    if width <= 0 or height <= 0:
        raise ValueError(f"--size must be train, keep or WIDTHxHEIGHT such as 512x256, got {text!r}")
    return FixedSize(width, height)
