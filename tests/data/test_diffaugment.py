"""DiffAugment: differentiable, shape/dtype preserving, the paper's ops, seeded by a generator or the global RNG."""

import pytest
import torch

from translate.data.diffaugment import (
    DiffAugment,
    cut_out,
    diff_augment,
    rand_brightness,
    rand_cutout,
    rand_translation,
    shift_images,
)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_gradcheck(policy):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: diff_augment(t, policy, generator=seeded(1)), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_and_dtype_kept_and_gradient_flows(dtype):
    x = torch.rand(3, 3, 16, 12, dtype=dtype, requires_grad=True)
    y = diff_augment(x, generator=seeded())
    assert y.shape == x.shape and y.dtype == dtype
    y.float().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_draws_in_every_dtype():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    wide = diff_augment(x, generator=seeded(4))
    narrow = diff_augment(x.float(), generator=seeded(4))
    torch.testing.assert_close(narrow.double(), wide, atol=1e-5, rtol=1e-5)


def test_empty_policy_is_identity_and_unknown_is_error():
    x = torch.rand(2, 3, 4, 4)
    assert diff_augment(x, "") is x and diff_augment(x, []) is x
    with pytest.raises(ValueError, match="zoom"):
        diff_augment(x, "color,zoom")


def test_shift_images_known_values():
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    down = shift_images(x, torch.tensor([-1]), torch.tensor([0]))  # content moves down one row
    assert down[0, 0].tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    left = shift_images(x, torch.tensor([0]), torch.tensor([1]))  # content moves left one column
    assert left[0, 0].tolist() == [[2, 3, 0], [5, 6, 0], [8, 9, 0]]


def test_cut_out_known_values():
    x = torch.ones(2, 1, 4, 4)
    out = cut_out(x, torch.tensor([-1, 2]), torch.tensor([1, 3]), 2, 2)
    assert out[0, 0].tolist() == [[1, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert out[1, 0].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 0]]


def test_random_translation_is_a_bounded_integer_shift():
    x = torch.rand(6, 2, 16, 16) + 1  # strictly positive, so zero fill is recognisable
    y = rand_translation(x, seeded(2))
    torch.testing.assert_close(y, rand_translation(x, seeded(2)))
    for n in range(6):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(y[n:n + 1], shift_images(x[n:n + 1], torch.tensor([dy]), torch.tensor([dx])))]
        assert len(matches) == 1  # 1/8 of 16 px is at most 2 px
    gen = seeded(2)
    dy, dx = torch.randint(-2, 3, (6,), generator=gen), torch.randint(-2, 3, (6,), generator=gen)
    torch.testing.assert_close(y, shift_images(x, dy, dx))  # the official draw order: rows, then columns


def test_random_cutout_is_a_half_size_square():
    x = torch.rand(8, 3, 16, 16) + 1
    y = rand_cutout(x, seeded(3))
    for n in range(8):
        hole = (y[n, 0] == 0).nonzero()
        rows, cols = hole[:, 0].unique(), hole[:, 1].unique()
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8 and len(hole) == len(rows) * len(cols)
        assert torch.equal((y[n] == 0), (y[n, :1] == 0).expand(3, -1, -1))  # all channels cut
    gen = seeded(3)
    cy, cx = torch.randint(0, 17, (8,), generator=gen), torch.randint(0, 17, (8,), generator=gen)
    torch.testing.assert_close(y, cut_out(x, cy - 4, cx - 4, 8, 8))


def test_color_matches_official_formula():
    x = torch.rand(4, 3, 5, 5)
    r = torch.rand(4, 1, 1, 1, generator=seeded(5))
    torch.testing.assert_close(rand_brightness(x, seeded(5)), x + (r - 0.5))


def test_global_rng_by_default_and_module():
    x = torch.rand(2, 3, 8, 8)
    torch.manual_seed(11)
    first = diff_augment(x)
    torch.manual_seed(11)
    assert torch.equal(first, DiffAugment("color,translation,cutout")(x))
    assert not torch.equal(first, x)
    assert "translation" in repr(DiffAugment("translation"))
