"""How this process was launched, for the commands that run under `accelerate launch` (train, convert)."""

from __future__ import annotations

import os

import torch


def distributed_without_gpus() -> bool:
    """Launched as several processes on a machine without CUDA: Accelerate only forms the (gloo) process group when
    told to use the CPU; otherwise every process would silently work alone as rank 0 of 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
