"""Paired, unpaired and single datasets on generated folders: layouts, pairing, direction, keys, errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from translate.data import ImageReadError, PairedDataset, SingleDataset, UnpairedDataset

SMALL = {"load_size": 36, "crop_size": 32}


def pattern(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    return (((yy * 5 + xx * 3 + seed * 17) % 180)[:, :, None] + rng.integers(0, 60, (h, w, 3))).astype(np.uint8)


def save(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return path


def make_aligned(root, n=3, width=80, height=40):
    """ROOT/train/i.png with A on the left and B = 255 - A on the right."""
    for i in range(n):
        a = pattern(height, width // 2, i)
        save(root / "train" / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return root


def make_twin(root, n=3):
    for i in range(n):
        a = pattern(40, 40, i)
        save(root / "train" / "A" / f"{i}.png", a)
        save(root / "train" / "B" / f"{i}.bmp", 255 - a)
    return root


def make_unaligned(root, n_a=3, n_b=5):
    for i in range(n_a):
        save(root / "trainA" / f"a{i}.png", pattern(40, 40, i))
    for i in range(n_b):
        save(root / "trainB" / f"b{i}.png", pattern(40, 40, 100 + i))
    return root


def test_aligned_pair_split_and_identical_crop(tmp_path):
    ds = PairedDataset(make_aligned(tmp_path), preprocess="crop", load_size=32, crop_size=32)
    assert ds.layout == "aligned" and len(ds) == 3
    for key in [(0, 1), (1, 2), (2, 3), (0, 99)]:
        item = ds[key]
        assert set(item) == {"A", "B", "A_path", "B_path"}
        assert item["A"].shape == item["B"].shape == (3, 32, 32) and item["A"].dtype == torch.float32
        torch.testing.assert_close(item["B"], -item["A"], rtol=0, atol=1e-6)
        assert item["A"].min() >= -1 and item["A"].max() <= 1
        assert item["A_path"] == item["B_path"] and item["A_path"].endswith(f"{key[0]}.png")


def test_aligned_with_resize_keeps_pair_aligned(tmp_path):
    ds = PairedDataset(make_aligned(tmp_path), **SMALL)
    for seed in range(5):
        item = ds[(1, seed)]
        assert (item["A"] + item["B"]).abs().max() <= 1.01 / 127.5


def test_aligned_odd_width_splits_at_half(tmp_path):
    ab = pattern(8, 33, 0)
    save(tmp_path / "train" / "odd.png", ab)
    ds = PairedDataset(tmp_path, preprocess="none", train=False)
    item = ds[0]
    assert item["A"].shape == item["B"].shape == (3, 8, 16)
    torch.testing.assert_close(item["A"], torch.from_numpy(ab[:, :16]).permute(2, 0, 1) / 127.5 - 1)
    torch.testing.assert_close(item["B"], torch.from_numpy(ab[:, 16:32]).permute(2, 0, 1) / 127.5 - 1)


def test_direction_swaps_a_and_b(tmp_path):
    make_twin(tmp_path)
    forward = PairedDataset(tmp_path, **SMALL)[(2, 5)]
    backward = PairedDataset(tmp_path, direction="BtoA", **SMALL)[(2, 5)]
    assert torch.equal(backward["A"], forward["B"]) and torch.equal(backward["B"], forward["A"])
    assert (backward["A_path"], backward["B_path"]) == (forward["B_path"], forward["A_path"])
    assert "/B/" in backward["A_path"]


def test_twin_layout_with_channel_counts(tmp_path):
    ds = PairedDataset(make_twin(tmp_path), channels_a=1, channels_b=4, **SMALL)
    assert ds.layout == "twin"
    item = ds[(0, 3)]
    assert item["A"].shape == (1, 32, 32) and item["B"].shape == (4, 32, 32)
    assert item["A_path"].endswith("A/0.png") and item["B_path"].endswith("B/0.bmp")
    assert torch.all(item["B"][3] == 1)  # opaque alpha


def test_channels_describe_the_returned_sides_in_both_directions(tmp_path):
    make_aligned(tmp_path)
    for direction in ("AtoB", "BtoA"):
        item = PairedDataset(tmp_path, channels_a=1, channels_b=3, direction=direction, **SMALL)[(0, 0)]
        assert item["A"].shape[0] == 1 and item["B"].shape[0] == 3


def test_twin_missing_partner_fails_at_construction(tmp_path):
    make_twin(tmp_path)
    (tmp_path / "train" / "B" / "1.bmp").unlink()
    with pytest.raises(ValueError, match=r"only in A \[1\]"):
        PairedDataset(tmp_path)


def test_same_key_same_sample_other_seed_other_crop(tmp_path):
    ds = PairedDataset(make_aligned(tmp_path), **SMALL)
    first, again = ds[(0, 42)], ds[(0, 42)]
    assert torch.equal(first["A"], again["A"]) and torch.equal(first["B"], again["B"])
    other = [ds[(0, s)]["A"] for s in range(43, 48)]
    assert any(not torch.equal(first["A"], o) for o in other)
    assert torch.equal(ds[0]["A"], ds[(0, 0)]["A"])  # a plain index means seed 0


def test_unaligned_lengths_and_serial_a(tmp_path):
    ds = UnpairedDataset(make_unaligned(tmp_path, 3, 5), **SMALL)
    assert len(ds) == 5
    paths = [ds[(i, 0)]["A_path"] for i in range(5)]
    assert [p.rsplit("/", 1)[1] for p in paths] == ["a0.png", "a1.png", "a2.png", "a0.png", "a1.png"]
    item = ds[(4, 1)]
    assert item["A"].shape == item["B"].shape == (3, 32, 32)


def test_unaligned_b_depends_on_key_seed_only(tmp_path):
    make_unaligned(tmp_path, 3, 5)
    ds, twin = UnpairedDataset(tmp_path, **SMALL), UnpairedDataset(tmp_path, **SMALL)
    for seed in range(6):
        chosen = ds[(0, seed)]["B_path"]
        assert all(ds[(i, seed)]["B_path"] == chosen for i in range(5))  # index does not matter
        assert twin[(2, seed)]["B_path"] == chosen  # neither does the instance (worker)
        assert torch.equal(twin[(2, seed)]["B"], ds[(2, seed)]["B"])
    assert len({ds[(0, s)]["B_path"] for s in range(40)}) == 5


def test_unaligned_serial_batches_and_direction(tmp_path):
    make_unaligned(tmp_path, 3, 5)
    serial = UnpairedDataset(tmp_path, serial_batches=True, **SMALL)
    assert [serial[(i, 9)]["B_path"][-6:] for i in range(5)] == [f"b{i}.png" for i in range(5)]
    assert UnpairedDataset(tmp_path, train=False, **SMALL).serial_batches
    backward = UnpairedDataset(tmp_path, direction="BtoA", channels_a=3, channels_b=1, **SMALL)
    item = backward[(0, 0)]
    assert "trainB" in item["A_path"] and "trainA" in item["B_path"]
    assert item["A"].shape[0] == 3 and item["B"].shape[0] == 1  # channels follow the returned side
    assert len(backward) == 5


def test_single_dataset(tmp_path):
    for i in range(2):
        save(tmp_path / "imgs" / f"{i}.png", pattern(40, 30, i))
    ds = SingleDataset(tmp_path / "imgs", channels=1, load_size=32, crop_size=32)
    item = ds[1]
    assert set(item) == {"A", "A_path"} and item["A"].shape == (1, 32, 32)
    assert torch.equal(item["A"], ds[(1, 12345)]["A"])  # test-time: no randomness


def test_rgba_palette_gray_16bit_sources(tmp_path):
    root = tmp_path / "trainA"
    save(root / "rgba.png", np.dstack([pattern(40, 40, 0), np.full((40, 40), 128, np.uint8)]), "RGBA")
    save(root / "gray.png", pattern(40, 40, 1)[:, :, 0], "L")
    Image.fromarray(pattern(40, 40, 2)).convert("P").save(root / "pal.png")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(root / "deep.tif")
    save(tmp_path / "trainB" / "b.png", pattern(40, 40, 3))
    for channels in (1, 3, 4):
        ds = UnpairedDataset(tmp_path, channels_a=channels, **SMALL)
        for i in range(len(ds)):
            assert ds[(i, i)]["A"].shape == (channels, 32, 32)
    deep = UnpairedDataset(tmp_path, channels_a=1, **SMALL)[(0, 0)]
    assert deep["A_path"].endswith("deep.tif") and torch.all(deep["A"] == 1)


@pytest.mark.parametrize("bad", ["empty", "text", "truncated"])
def test_unreadable_image_fails_loudly_with_its_name(tmp_path, bad):
    make_unaligned(tmp_path, 2, 2)
    target = tmp_path / "trainA" / "a1.png"
    if bad == "empty":
        target.write_bytes(b"")
    elif bad == "text":
        target.write_text("not a png")
    else:
        target.write_bytes(target.read_bytes()[:100])
    ds = UnpairedDataset(tmp_path, **SMALL)
    ds[(0, 0)]
    with pytest.raises(ImageReadError, match="a1.png"):
        ds[(1, 0)]


def test_construction_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        PairedDataset(tmp_path / "missing")
    save(tmp_path / "half" / "trainA" / "a.png", pattern(40, 40, 0))
    with pytest.raises(FileNotFoundError, match="trainB"):
        UnpairedDataset(tmp_path / "half")
    make_unaligned(tmp_path / "u", 1, 1)
    (tmp_path / "e" / "trainA").mkdir(parents=True)
    (tmp_path / "e" / "trainB").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        UnpairedDataset(tmp_path / "e")
    with pytest.raises(ValueError, match="unaligned"):
        PairedDataset(tmp_path / "u")
    with pytest.raises(ValueError, match="direction"):
        UnpairedDataset(tmp_path / "u", direction="sideways")
    with pytest.raises(ValueError, match="channels"):
        PairedDataset(make_aligned(tmp_path / "a"), channels_a=2)
    with pytest.raises(IndexError):
        PairedDataset(tmp_path / "a")[(3, 0)]


def test_image_smaller_than_crop_names_the_file(tmp_path):
    save(tmp_path / "imgs" / "tiny.png", pattern(10, 10, 0))
    with pytest.raises(ValueError, match="tiny.png"):
        SingleDataset(tmp_path / "imgs", preprocess="crop", crop_size=32)[0]
