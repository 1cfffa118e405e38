"""The training DataLoader: an endless stream of this rank's batches, step by step, from any start step."""

from __future__ import annotations

import functools
import logging
import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from translate.data.sampler import InfiniteSampler, mix63
from translate.utils import die_with_parent

log = logging.getLogger(__name__)


def build_loader(dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0, rank: int = 0,
                 world_size: int = 1, start_step: int = 0, drop_last: bool = True,
                 shuffle: bool = True) -> DataLoader:
    """Batch k of the returned loader is optimisation step start_step + k for this rank, whatever num_workers is
    (which is why num_workers can be capped at the CPU count without changing a single sample).

    The sampler hands the dataset (index, seed) keys one at a time; the DataLoader groups batch_size of them, which
    is exactly one step's slice for this rank. Iteration never ends and len() is undefined: count steps, not
    epochs. The loader gets its own torch.Generator so creating an iterator does not consume the global torch RNG
    (which DiffAugment and the models draw from, and which a resumed run restores).
    """
    sampler = InfiniteSampler(len(dataset), batch_size, seed, rank=rank, world_size=world_size,
                              start_step=start_step, shuffle=shuffle)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if num_workers > cpus:  # more decoding processes than cores only contend with the training process
        log.info("data.num_workers %d capped at the %d CPUs this process may use", num_workers, cpus)
        num_workers = cpus
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        worker_init_fn=functools.partial(seed_worker, seed=seed, rank=rank),
        generator=torch.Generator().manual_seed(mix63(seed)),
    )


def seed_worker(worker_id: int, seed: int = 0, rank: int = 0) -> None:
    """Pin each worker's global RNGs to (seed, rank, worker), keep OpenCV single-threaded, and end the worker with
    its parent (translate.utils.die_with_parent: a killed run leaves no worker holding memory).

    Samples draw their randomness from their keys, so these RNGs should never matter; fixing them makes any
    stray use reproducible instead of dependent on the parent's RNG state. OpenCV's own thread pool inside
    many workers only oversubscribes the CPU.
    """
    die_with_parent()
    worker_seed = mix63(mix63(mix63(seed) + rank) + worker_id)
    random.seed(worker_seed)
    np.random.seed(worker_seed % 2**32)
    torch.manual_seed(worker_seed)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
