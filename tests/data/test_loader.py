"""build_loader: batch layout, per-step keys, resume, workers, and no use of the global torch RNG."""

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from translate.data import UnpairedDataset, build_loader
from translate.data.sampler import InfiniteSampler


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    for domain, n in (("A", 5), ("B", 3)):
        folder = tmp_path / f"train{domain}"
        folder.mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), np.uint8)).save(folder / f"{i}.png")
    return UnpairedDataset(tmp_path, channels_b=1, load_size=20, crop_size=16)


def batches(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_batches_shape_paths_and_keys(dataset):
    loader = build_loader(dataset, batch_size=2, seed=3)
    first, second = batches(loader, 2)
    assert first["A"].shape == (2, 3, 16, 16) and first["B"].shape == (2, 1, 16, 16)
    assert isinstance(first["A_path"], list) and len(first["A_path"]) == 2
    keys = list(itertools.islice(iter(InfiniteSampler(len(dataset), 2, seed=3)), 4))
    for batch, step_keys in ((first, keys[:2]), (second, keys[2:])):
        expected = torch.stack([dataset[k]["A"] for k in step_keys])
        assert torch.equal(batch["A"], expected)


def test_resume_matches_uninterrupted(dataset):
    full = batches(build_loader(dataset, batch_size=2, seed=7, rank=1, world_size=2), 5)
    resumed = batches(build_loader(dataset, batch_size=2, seed=7, rank=1, world_size=2, start_step=3), 2)
    for a, b in zip(full[3:], resumed):
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"]) and a["B_path"] == b["B_path"]


def test_loader_leaves_global_rng_alone(dataset):
    state = torch.get_rng_state()
    batches(build_loader(dataset, batch_size=2, seed=0), 2)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.slow
def test_workers_give_the_same_batches(dataset):
    plain = batches(build_loader(dataset, batch_size=2, seed=1), 4)
    workers = batches(build_loader(dataset, batch_size=2, seed=1, num_workers=2), 4)
    for a, b in zip(plain, workers):
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"]) and a["A_path"] == b["A_path"]


def test_workers_are_capped_by_the_cpus_this_process_may_use(dataset, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert build_loader(dataset, batch_size=2, seed=1, num_workers=4).num_workers == 2
    assert build_loader(dataset, batch_size=2, seed=1, num_workers=1).num_workers == 1
