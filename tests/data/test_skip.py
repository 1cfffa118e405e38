"""SkipUnreadable (data.skip_unreadable): unreadable files replaced by key-determined items, one warning per file."""

import itertools
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from translate.data import ImageReadError, UnpairedDataset, build_loader
from translate.data.skip import MAX_DRAWS, SKIPPED, SkipUnreadable

BAD = "002.jpg"


@pytest.fixture
def root(tmp_path):
    """trainA: four JPEGs, 002.jpg truncated to half; trainB: two PNGs."""
    rng = np.random.default_rng(0)
    for domain, count, ext in (("A", 4, "jpg"), ("B", 2, "png")):
        (tmp_path / f"train{domain}").mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, (24, 24, 3), np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"train{domain}" / f"{i:03d}.{ext}")
    bad = tmp_path / "trainA" / BAD
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    return tmp_path


def dataset(root):
    return UnpairedDataset(root, load_size=20, crop_size=16)


def test_an_unreadable_item_is_replaced_by_one_its_key_determines(root):
    plain, skipping = dataset(root), SkipUnreadable(dataset(root))
    with pytest.raises(ImageReadError, match=BAD):
        plain[(2, 5)]
    item = skipping[(2, 5)]
    assert item[SKIPPED] == str(root / "trainA" / BAD) and not item["A_path"].endswith(BAD)
    again = SkipUnreadable(dataset(root))[(2, 5)]  # another process, another run: the same replacement
    assert again["A_path"] == item["A_path"] and torch.equal(again["A"], item["A"])
    good = skipping[(1, 5)]
    assert good[SKIPPED] == "" and torch.equal(good["A"], plain[(1, 5)]["A"])


def test_batches_warn_once_per_file_and_resume_exactly(root, caplog):
    skipping = SkipUnreadable(dataset(root))
    full = list(itertools.islice(map(skipping.report, build_loader(skipping, batch_size=2, seed=3)), 8))
    assert all(SKIPPED not in batch for batch in full)  # what the model sees has no extra key
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(root / "trainA" / BAD) in warnings[0], warnings  # 16 draws, 4 epochs
    resumed = list(itertools.islice(map(skipping.report, build_loader(skipping, batch_size=2, seed=3, start_step=5)),
                                    3))
    for a, b in zip(full[5:], resumed):
        assert torch.equal(a["A"], b["A"]) and a["A_path"] == b["A_path"]


@pytest.mark.slow
def test_a_worker_skips_and_the_main_process_warns_once(root, caplog):
    skipping = SkipUnreadable(dataset(root))
    batches = list(itertools.islice(map(skipping.report, build_loader(skipping, 2, seed=3, num_workers=1)), 8))
    assert sum(BAD in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 1
    plain = list(itertools.islice(map(skipping.report, build_loader(skipping, 2, seed=3)), 8))
    assert all(torch.equal(a["A"], b["A"]) for a, b in zip(batches, plain))


def test_a_set_with_too_many_unreadable_files_still_stops(root):
    for path in (root / "trainA").iterdir():
        path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=f"all {MAX_DRAWS - 1} replacements"):
        SkipUnreadable(dataset(root))[(0, 0)]
