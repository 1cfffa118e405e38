"""The seeded albumentations pipeline: identical crop/flip for a pair, sizes per mode, determinism, range."""

import pickle

import numpy as np
import pytest
import torch

from translate.data.transforms import build_transform, to_tensor


def smooth_image(h, w, c=3, seed=0):
    """A gradient plus a little noise: every crop position and flip gives a different result."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (yy * 3 + xx * 7) % 200 + 20
    return (base[:, :, None] + rng.integers(0, 30, (h, w, c))).astype(np.uint8)


def test_to_tensor_range_and_layout():
    img = np.array([[[0, 255, 51]]], np.uint8)
    t = to_tensor(img)
    assert t.shape == (3, 1, 1) and t.dtype == torch.float32 and t.is_contiguous()
    torch.testing.assert_close(t.flatten(), torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))
    assert to_tensor(np.zeros((2, 3), np.uint8)).shape == (1, 2, 3)


def test_pair_gets_identical_crop_and_flip_exactly():
    t = build_transform(load_size=40, crop_size=24, preprocess="crop", flip=True)
    a = smooth_image(40, 40)
    for seed in range(20):
        ta, tb = t.pair(a, 255 - a, seed)
        torch.testing.assert_close(tb, -ta, rtol=0, atol=1e-6)


def test_pair_gets_identical_resize_crop_flip():
    t = build_transform(load_size=48, crop_size=32)
    a = smooth_image(40, 40)
    for seed in range(10):
        ta, tb = t.pair(a, 255 - a, seed)
        assert ta.shape == tb.shape == (3, 32, 32)
        assert (tb + ta).abs().max() <= 1.01 / 127.5  # bicubic is linear up to rounding


def test_same_seed_same_output_different_seeds_differ():
    t = build_transform(load_size=48, crop_size=32)
    a = smooth_image(40, 40)
    assert torch.equal(t(a, 7), t(a, 7))
    outs = {t(a, s).numpy().tobytes() for s in range(8)}
    assert len(outs) > 4


def test_flip_is_independent_of_crop_position():
    """Regression: albumentations' set_random_seed gives every op the same stream, coupling flip to crop."""
    t = build_transform(load_size=10, crop_size=2, preprocess="crop")
    img = np.arange(100, dtype=np.uint8).reshape(10, 10, 1)
    tops, flips = [], []
    for seed in range(300):
        patch = ((t(img, seed)[0] + 1) * 127.5).round().numpy().astype(int)
        tops.append(patch.min() // 10)
        flips.append(patch[0, 0] > patch[0, 1])
    assert abs(np.corrcoef(tops, flips)[0, 1]) < 0.25
    assert 0.35 < np.mean(flips) < 0.65


@pytest.mark.parametrize("preprocess, size, expected", [
    ("resize_and_crop", (30, 50), (24, 24)),
    ("crop", (30, 50), (24, 24)),
    ("scale_width_and_crop", (30, 50), (24, 24)),
    ("scale_width", (30, 50), (24, 40)),
    ("resize", (30, 50), (40, 40)),
    ("none", (30, 50), (32, 48)),  # each side rounded to a multiple of 4, like the reference
])
def test_output_sizes(preprocess, size, expected):
    for train in (True, False):
        out = build_transform(40, 24, preprocess, train=train)(smooth_image(*size), seed=3)
        assert out.shape == (3, *expected)
        assert out.min() >= -1 and out.max() <= 1


def test_test_time_is_deterministic_centre_crop_without_flip():
    t = build_transform(load_size=40, crop_size=24, preprocess="crop", flip=True, train=False)
    a = smooth_image(40, 40)
    out = t(a, 0)
    assert all(torch.equal(out, t(a, s)) for s in range(1, 5))
    torch.testing.assert_close(out, to_tensor(a[8:32, 8:32]))


@pytest.mark.parametrize("channels", [1, 4])
def test_gray_and_four_channel_images(channels):
    t = build_transform(load_size=36, crop_size=32)
    a = smooth_image(40, 40, c=channels)
    ta, tb = t.pair(a, 255 - a, 5)
    assert ta.shape == (channels, 32, 32)
    assert (tb + ta).abs().max() <= 1.01 / 127.5


def test_pair_of_different_channel_counts():
    t = build_transform(load_size=36, crop_size=32)
    a = smooth_image(40, 40, c=3)
    ta, tb = t.pair(a, a[:, :, :1], 1)
    assert ta.shape == (3, 32, 32) and tb.shape == (1, 32, 32)
    torch.testing.assert_close(tb[0], ta[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="preprocess"):
        build_transform(preprocess="zoom")
    with pytest.raises(ValueError, match="crop_size"):
        build_transform(load_size=100, crop_size=256)
    t = build_transform(load_size=40, crop_size=24)
    with pytest.raises(ValueError, match="one size"):
        t.pair(smooth_image(40, 40), smooth_image(40, 41), 0)
    with pytest.raises(ValueError):
        build_transform(40, 24, preprocess="crop")(smooth_image(10, 10), 0)  # smaller than the crop


def test_transform_pickles_for_spawned_workers():
    t = build_transform(48, 32, "scale_width_and_crop")
    a = smooth_image(40, 60)
    assert torch.equal(pickle.loads(pickle.dumps(t))(a, 11), t(a, 11))
