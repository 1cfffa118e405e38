"""InfiniteSampler: epochs are permutations, ranks partition steps, resuming equals not stopping."""

import itertools
import time

import pytest

from translate.data.sampler import InfiniteSampler, derive_seed, mix63, split_key


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_resume_equals_uninterrupted(world_size):
    n, batch = 7, 3  # steps straddle epoch boundaries
    for rank in range(world_size):
        full = take(InfiniteSampler(n, batch, seed=5, rank=rank, world_size=world_size), 20 * batch)
        for k in (1, 2, 5, 13):
            resumed = take(InfiniteSampler(n, batch, seed=5, rank=rank, world_size=world_size, start_step=k),
                           (20 - k) * batch)
            assert resumed == full[k * batch:]


def test_ranks_partition_each_global_batch():
    n, batch, world = 100, 4, 2
    ranks = [take(InfiniteSampler(n, batch, seed=1, rank=r, world_size=world), 10 * batch) for r in range(world)]
    single = take(InfiniteSampler(n, batch * world, seed=1), 10 * batch * world)  # same global stream
    for step in range(10):
        per_rank = [keys[step * batch:(step + 1) * batch] for keys in ranks]
        assert per_rank[0] + per_rank[1] == single[step * batch * world:(step + 1) * batch * world]
        indices = [index for keys in per_rank for index, _ in keys]
        assert len(set(indices)) == len(indices)  # no duplicate within a step


def test_each_epoch_is_a_fresh_permutation():
    n = 10
    keys = take(InfiniteSampler(n, 1, seed=3), 3 * n)
    epochs = [[index for index, _ in keys[e * n:(e + 1) * n]] for e in range(3)]
    assert all(sorted(e) == list(range(n)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    assert take(InfiniteSampler(n, 1, seed=3), n) == keys[:n]
    assert [i for i, _ in take(InfiniteSampler(n, 1, seed=4), n)] != epochs[0]


def test_sample_seeds_unique_and_unshuffled_order():
    keys = take(InfiniteSampler(3, 2, seed=0, shuffle=False), 3000)
    assert [i for i, _ in keys[:7]] == [0, 1, 2, 0, 1, 2, 0]
    seeds = [s for _, s in keys]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**63 for s in seeds)


def test_far_start_step_is_arithmetic():
    tick = time.perf_counter()
    keys = take(InfiniteSampler(1000, 8, seed=2, rank=1, world_size=4, start_step=10**12), 8)
    assert time.perf_counter() - tick < 0.5 and len(keys) == 8
    sampler = InfiniteSampler(1000, 8, seed=2, rank=1, world_size=4)
    assert keys == [sampler.key((10**12 * 4 + 1) * 8 + j) for j in range(8)]


def test_argument_checks_and_helpers():
    with pytest.raises(ValueError):
        InfiniteSampler(0, 1, 0)
    with pytest.raises(ValueError):
        InfiniteSampler(5, 1, 0, rank=2, world_size=2)
    with pytest.raises(ValueError):
        InfiniteSampler(5, 1, 0, start_step=-1)
    assert split_key(4) == (4, 0) and split_key((4, 9)) == (4, 9)
    assert len({mix63(i) for i in range(10000)}) == 10000
    assert derive_seed(1, 0) != derive_seed(1, 1) != derive_seed(2, 1)
