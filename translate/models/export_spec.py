"""The self-description of an exported generator: enough to rebuild and run it with no training flag."""

from __future__ import annotations

from torch import nn


def generator_spec(net: nn.Module, arch: str, in_channels: int, out_channels: int, inference_mode: str,
                   hint_channels: int = 0, **kwargs) -> dict:
    """in_channels: the image's; a net reading colour hints (hint_channels > 0) takes them as planes after it."""
    spec = {
        "role": "generator",
        "arch": arch,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "kwargs": kwargs,
        "inference_mode": inference_mode,  # "eval", or "train" (pix2pix: dropout on, batch statistics)
        "size_multiple": net.size_multiple,
        "value_range": [-1.0, 1.0],  # images are mapped to [-1, 1] (mean 0.5, std 0.5) in and out
    }
    if hint_channels:  # absent otherwise, so exports without hints stay as they were
        spec["hint_channels"] = hint_channels
    return spec
