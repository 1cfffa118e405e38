"""Colour hints: what the sampler reveals, the model planes, hint maps fitted to the net's size, and datasets."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.test_datasets import make_aligned
from translate.data import PairedDataset
from translate.data.hints import (
    GEOMETRIC_P,
    global_hint_planes,
    hint_planes,
    object_pixels,
    patch_side_range,
    planes_from_rgba,
    pool_hint_planes,
    sample_hints,
)
from translate.inference.hint_maps import HintError, fit_hint_map


def photo(seed=0, size=32):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_each_revealed_pixel_carries_its_patch_mean_and_the_rest_is_zero():
    image = photo()
    planes = sample_hints(image, np.random.default_rng(3), count=1)
    colour, mask = planes[:3], planes[3:]
    ys, xs = mask[0].nonzero(as_tuple=True)
    patch = image[:, ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert len(ys) == patch.shape[1] * patch.shape[2]  # one square
    assert torch.allclose(colour[:, ys, xs], patch.mean(dim=(1, 2))[:, None].expand(3, len(ys)), atol=1e-6)
    assert colour[:, mask[0] == 0].abs().max() == 0


def test_counts_follow_the_papers_geometric_law_with_an_eighth_hintless():
    rng = np.random.default_rng(0)
    empty = [sample_hints(photo(size=16), rng)[3].sum().item() == 0 for _ in range(2000)]
    assert abs(np.mean(empty) - GEOMETRIC_P) < 0.025


def test_patch_sides_scale_with_the_crop():
    assert (patch_side_range(256), patch_side_range(128), patch_side_range(16)) == (9, 4, 1)


def test_evaluation_hints_land_inside_the_given_region():
    where = torch.zeros(32, 32, dtype=torch.bool)  # at 32 px patches are 1 px: each lies where it was centred
    where[20:30, 4:12] = True
    for seed in range(20):
        mask = sample_hints(photo(), np.random.default_rng(seed), count=3, where=where)[3] > 0
        assert 1 <= mask.sum() <= 3 and not (mask & ~where).any()


def test_black_hint_is_not_no_hint():
    black = hint_planes(-torch.ones(3, 2, 2), torch.ones(1, 2, 2))
    assert not torch.equal(black, torch.zeros(4, 2, 2))
    rgba = torch.zeros(1, 4, 2, 2, dtype=torch.uint8)
    rgba[0, 3, 0, 0] = 255  # one opaque black pixel
    planes = planes_from_rgba(rgba)[0]
    assert planes[:, 0, 0].tolist() == [-1, -1, -1, 1] and planes[:, 1, 1].abs().sum() == 0


def test_a_thin_stroke_survives_the_reduction_with_its_colour():
    hints = np.zeros((64, 64, 4), np.uint8)
    hints[10:50, 31] = (200, 40, 10, 255)  # a 1 px vertical stroke
    fitted = fit_hint_map(hints, (64, 64), (16, 16))
    assert fitted[3:12, 7, 3].min() == 255 and fitted[:, :7, 3].max() == 0
    assert fitted[6, 7, :3].tolist() == [200, 40, 10]  # the colour, not darkened by the empty neighbours


def test_translucent_pixels_are_no_hints_and_sizes_must_match():
    hints = np.zeros((8, 8, 4), np.uint8)
    hints[..., 3] = 100
    assert fit_hint_map(hints, (8, 8), (8, 8)).max() == 0
    assert fit_hint_map(Image.fromarray(hints, "RGBA"), (8, 8), (4, 4)).max() == 0
    with pytest.raises(HintError, match="the hint map is 8x8 but its image is 16x8"):
        fit_hint_map(hints, (16, 8), (16, 8))


def test_paired_samples_carry_the_same_hints_for_the_same_key(tmp_path):
    root = make_aligned(tmp_path / "d", n=2)
    data = PairedDataset(root, load_size=36, crop_size=32, colour_hints=True)
    first, again, other = data[(1, 7)], data[(1, 7)], data[(1, 8)]
    assert first["hints"].shape == (4, 32, 32)
    assert torch.equal(first["hints"], again["hints"])
    assert not torch.equal(first["hints"], other["hints"]) or first["hints"].sum() == 0
    assert "hints" not in PairedDataset(root, load_size=36, crop_size=32)[0]
    with pytest.raises(ValueError, match="RGB target"):
        PairedDataset(root, channels_b=1, colour_hints=True)


def test_pooled_hints_give_each_touched_cell_the_hint_colour_and_leave_the_rest_empty():
    colour, mask = torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)
    colour[0, :, 1, 1], mask[0, 0, 1, 1] = torch.tensor([0.5, -0.5, -1.0]), 1  # one black-ish pixel in cell (0, 0)
    colour[0, :, 6, 5:7], mask[0, 0, 6, 5:7] = torch.tensor([1.0, 0.0, 0.0])[:, None], 1  # two in cell (1, 1)
    pooled = pool_hint_planes(hint_planes(colour, mask), 4)[0]
    assert pooled[:, 0, 0].tolist() == [0.5, -0.5, -1.0, 1.0]
    assert pooled[:, 1, 1].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert pooled[:, 0, 1].abs().sum() == 0 and pooled[:, 1, 0].abs().sum() == 0


def test_training_hints_land_on_the_object_not_the_paper():
    image = torch.ones(3, 32, 32)  # white paper
    image[:, 8:20, 10:26] = -0.2  # a grey bag
    for seed in range(10):
        mask = sample_hints(image, np.random.default_rng(seed), count=4, where=object_pixels(image))[3] > 0
        assert mask.any() and not (mask & ~object_pixels(image)).any()
    assert global_hint_planes(hint_planes(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4))).abs().sum() == 0
