"""Small generated images for the evaluation tests."""

from pathlib import Path

import torch
from PIL import Image

from tests.helpers import shared_data


def smooth_images(count: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """(count, 3, size, size) in [0, 1]: random low-frequency colour fields, more image-like than white noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def noisy(images: torch.Tensor, amount: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images + amount * torch.randn(images.shape, generator=g)).clamp(0, 1)


def save_images(images: torch.Tensor, folder: Path, ext: str = ".png", names=None) -> Path:
    """Write (N, 3, H, W) images in [0, 1] as 000.png, 001.png ... (or `names`); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        name = names[i] if names else f"{i:03d}"
        path = folder / f"{name}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(path)
    return folder


def shared_images(folder: str, count: int) -> list[Path]:
    """The first `count` images of ../shared/data/horse2zebra/<folder>; where that data is absent the test skips,
    or fails on CI (tests.helpers.shared_data)."""
    return sorted(shared_data(f"horse2zebra/{folder}").glob("*.jpg"))[:count]
