"""Labeled folders and source + target pairs: classes, labels, key-determined augmentation and target draws."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import write_labeled
from translate.data.labeled import DomainPairDataset, LabeledDataset, color_augment, find_classes


def test_classes_labels_and_shapes(tmp_path):
    root = write_labeled(tmp_path / "digits", classes=("b", "a"), per_class=2)
    ds = LabeledDataset(root, channels=3, load_size=16, crop_size=16)
    assert ds.classes == ["a", "b"] and len(ds) == 4
    item = ds[(3, 7)]
    assert item["image"].shape == (3, 16, 16) and item["label"].dtype == torch.int64
    assert item["label"].item() == ds.classes.index(Path(item["path"]).parent.name)
    assert -1 <= item["image"].min() and item["image"].max() <= 1


def test_colour_augmentation_is_a_function_of_the_key(tmp_path):
    ds = LabeledDataset(write_labeled(tmp_path / "d"), load_size=16, crop_size=16, augment="color")
    assert torch.equal(ds[(0, 5)]["image"], ds[(0, 5)]["image"])
    assert not torch.equal(ds[(0, 5)]["image"], ds[(0, 6)]["image"])
    plain = LabeledDataset(tmp_path / "d", load_size=16, crop_size=16, augment="color", train=False)
    assert torch.equal(plain[(0, 5)]["image"], plain[(0, 6)]["image"])  # never augmented when not training


def test_color_augment_keeps_the_digit_visible():
    digit = np.zeros((8, 8, 3), np.uint8)
    digit[2:6, 2:6] = 255
    out = color_augment(digit, np.random.default_rng(0)).astype(int)
    assert out.shape == (8, 8, 3) and out.dtype == int
    assert len({tuple(out[0, 0]), tuple(out[3, 3])}) == 2  # background and stroke get two colours


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        LabeledDataset(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    Image.new("L", (16, 16)).save(tmp_path / "flat" / "x.png")
    with pytest.raises(ValueError, match="no class subfolders"):
        find_classes(tmp_path / "flat")
    with pytest.raises(ValueError, match="not among the classes"):
        LabeledDataset(write_labeled(tmp_path / "d", classes=("0", "7")), classes=["0", "1"])


def test_pairs_draw_the_target_from_the_seed(tmp_path):
    source = LabeledDataset(write_labeled(tmp_path / "s", per_class=2), load_size=16, crop_size=16)
    target = write_labeled(tmp_path / "t", classes=("0", "1", "2"), per_class=3, mode="RGB", seed=1)
    pairs = DomainPairDataset(source, target, load_size=16, crop_size=16)
    assert len(pairs) == 9
    a, b = pairs[(4, 11)], pairs[(4, 11)]
    assert a["target_path"] == b["target_path"] and torch.equal(a["target"], b["target"])
    assert {pairs[(4, s)]["target_path"] for s in range(20)} != {a["target_path"]}
    assert a["source_path"] == source.samples[4 % len(source)][0].as_posix()
    assert a["target_label"].item() == int(Path(a["target_path"]).parent.name)


def test_plain_target_folder_has_no_labels(tmp_path):
    source = LabeledDataset(write_labeled(tmp_path / "s"), load_size=16, crop_size=16)
    (tmp_path / "t").mkdir()
    for i in range(2):
        Image.new("RGB", (20, 20), (i * 90, 0, 0)).save(tmp_path / "t" / f"{i}.png")
    item = DomainPairDataset(source, tmp_path / "t", load_size=16, crop_size=16)[(0, 1)]
    assert item["target"].shape == (3, 16, 16) and item["target_label"].item() == -1
