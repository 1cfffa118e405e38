"""Sample keys: an endless, deterministic, resumable, rank-sharded stream of (index, sample_seed).

The stream is a function of the global draw number p alone: epoch p // n, slot p % n of that epoch's permutation,
and a seed that is a bijective hash of (seed, p). Resuming at step k therefore only computes p = k * batch *
world_size; nothing is replayed, and no worker's or process's RNG state enters a sample.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

Key = tuple[int, int]  # (dataset index, per-draw seed)

_MASK63 = (1 << 63) - 1
_PERM_STREAM, _DRAW_STREAM = 0x5EED_0001, 0x5EED_0002


def mix63(x: int) -> int:
    """A bijection of [0, 2**63) that scatters neighbouring inputs (xorshift-multiply rounds, splitmix64-style)."""
    x &= _MASK63
    x ^= x >> 31
    x = (x * 0x7FB5_D329_728E_A185) & _MASK63
    x ^= x >> 27
    x = (x * 0x41C6_4E6D_A3C9_6A4D) & _MASK63
    return x ^ (x >> 33)


def derive_seed(seed: int, stream: int) -> int:
    """An independent seed for one use (`stream`) of a sample's seed, e.g. crop of A vs choice of B."""
    return mix63(mix63(seed) + 0x9E37_79B9_7F4A_7C15 * (stream + 1))


def split_key(key) -> Key:
    """(index, seed) from a key, or (index, 0) from a plain integer index."""
    if isinstance(key, (tuple, list)):
        index, seed = key
        return int(index), int(seed)
    return int(key), 0


def checked_key(key, length: int) -> Key:
    """split_key, and an IndexError for an index outside a dataset of `length` items."""
    index, seed = split_key(key)
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length}")
    return index, seed


class InfiniteSampler:
    """Yields this rank's keys forever, in optimisation-step order.

    Step s owns global draws [s*B*W, (s+1)*B*W) (B = batch_size, W = world_size); rank r takes the contiguous slice
    [s*B*W + r*B, s*B*W + (r+1)*B), so ranks never share a draw within a step. Each epoch is a fresh permutation
    from a torch.Generator seeded by (seed, epoch); shuffle=False walks 0..n-1 instead. sample_seed is unique per
    global draw (a bijective hash of it). `start_step` skips exactly that many steps, arithmetically.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, shuffle: bool = True):
        if num_items < 1:
            raise ValueError(f"num_items must be >= 1, got {num_items}")
        if batch_size < 1 or world_size < 1:
            raise ValueError(f"batch_size and world_size must be >= 1, got {batch_size} and {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.rank, self.world_size, self.start_step, self.shuffle = rank, world_size, start_step, shuffle
        self._draw_base = mix63(mix63(seed) ^ _DRAW_STREAM)
        self._epoch, self._perm = -1, None

    def __iter__(self) -> Iterator[Key]:
        step = self.start_step
        while True:
            first = (step * self.world_size + self.rank) * self.batch_size
            for draw in range(first, first + self.batch_size):
                yield self.key(draw)
            step += 1

    def key(self, draw: int) -> Key:
        """The key of global draw number `draw` (counted over all ranks from step 0)."""
        epoch, slot = divmod(draw, self.num_items)
        index = self._permutation(epoch)[slot] if self.shuffle else slot
        return index, mix63(self._draw_base + draw)

    def _permutation(self, epoch: int) -> list[int]:
        """This epoch's order, computed once and kept until the stream moves to the next epoch."""
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(mix63(mix63(self.seed ^ _PERM_STREAM) + epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.num_items, generator=generator).tolist()
        return self._perm
