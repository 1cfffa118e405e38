"""Tiny generated datasets, so every test runs anywhere in seconds; the recipes' data root is ../shared/data."""

import os
from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA, write_images

os.environ.setdefault("TRANSLATE_DATA", str(SHARED_DATA))  # where `${data}` in a recipe points, unless set


@pytest.fixture
def aligned_root(tmp_path) -> Path:
    """pix2pix layout: ROOT/train/*.png, each 2S x S with A on the left and B on the right."""
    write_images(tmp_path / "aligned" / "train", 6, (64, 32), seed=0)
    return tmp_path / "aligned"


@pytest.fixture
def unaligned_root(tmp_path) -> Path:
    """CycleGAN layout: ROOT/trainA, ROOT/trainB with different counts."""
    write_images(tmp_path / "unaligned" / "trainA", 5, (32, 32), seed=1)
    write_images(tmp_path / "unaligned" / "trainB", 7, (32, 32), seed=2)
    return tmp_path / "unaligned"


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps process-wide singletons; each in-process training run starts clean."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
