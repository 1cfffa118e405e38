"""What every `translate eval` command shares: device/batch options and one JSON object on stdout.

Logs and progress bars go to stderr, so `translate eval ... > scores.json` captures exactly the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import torch


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps, or auto (cuda when available)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    parser.add_argument("--workers", type=int, default=0, help="image-decoding worker processes (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def print_json(result: dict) -> None:
    """One JSON object on one line of stdout; a non-finite number becomes null (JSON has no NaN or Infinity)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
    sys.stdout.write(json.dumps(clean, allow_nan=False) + "\n")
    sys.stdout.flush()
