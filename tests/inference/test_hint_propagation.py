"""Hint colours carried over their regions after the generator (translate/inference/hint_propagation.py): the solver
solves its system, no hint changes nothing, a hint colours its region and not the paper, and a lightness edge keeps
two hints' colours apart."""

import numpy as np
import torch
from kornia.color import rgb_to_hsv, rgb_to_lab

from translate.data.hints import hint_planes
from translate.inference.hint_propagation import _laplacian, _solve, propagate_hint_colours

RED, BLUE = (0.8, 0.1, 0.1), (0.1, 0.2, 0.85)


def as_signed(rgb) -> torch.Tensor:
    return torch.tensor(rgb).view(1, 3, 1, 1) * 2 - 1


def planes_for(height: int, width: int, *patches) -> torch.Tensor:
    """Hint planes with (rgb, rows, cols) patches."""
    colour, mask = torch.zeros(1, 3, height, width), torch.zeros(1, 1, height, width)
    for rgb, rows, cols in patches:
        colour[..., rows, cols] = as_signed(rgb)[..., 0, 0][..., None, None]
        mask[..., rows, cols] = 1
    return hint_planes(colour, mask)


def paper_with_bag(height=48, width=48, bag=(slice(8, 40), slice(10, 38)), grey=0.35) -> torch.Tensor:
    """A grey 'bag' on white paper, in [-1, 1]."""
    image = torch.ones(1, 3, height, width)
    image[..., bag[0], bag[1]] = grey * 2 - 1
    return image


def hue_degrees(image: torch.Tensor, rows, cols) -> float:
    """Mean hue of a region (radians -> degrees, on the circle)."""
    hue = rgb_to_hsv((image + 1) / 2)[0, 0, rows, cols]
    return float(torch.rad2deg(torch.atan2(hue.sin().mean(), hue.cos().mean()))) % 360


def red(hue: float) -> bool:
    return hue < 20 or hue > 340


def test_the_solver_matches_a_dense_solve_of_the_same_system():
    torch.manual_seed(0)
    height, width = 5, 6
    wx, wy = torch.rand(1, 1, height, width - 1), torch.rand(1, 1, height - 1, width)
    diagonal, rhs = torch.rand(1, 1, height, width) + 0.1, torch.randn(1, 2, height, width)
    # the dense operator, column by column from the matrix-free one
    basis = torch.eye(height * width).view(-1, 1, height, width)
    dense = (_laplacian(basis, wx, wy) + diagonal * basis).view(height * width, -1).T.double()
    expected = torch.linalg.solve(dense, rhs.view(2, -1).T.double()).T.view(1, 2, height, width)
    solved = _solve(rhs, diagonal, wx, wy, initial=torch.randn_like(rhs)).double()
    assert torch.allclose(solved, expected, atol=1e-3 * expected.abs().max())
    assert torch.allclose(dense, dense.T)  # symmetric: what conjugate gradients need


def test_without_hints_the_output_is_returned_as_it_was():
    output = torch.rand(2, 3, 16, 20) * 2 - 1
    assert torch.equal(propagate_hint_colours(output, torch.zeros(2, 4, 16, 20)), output)


def test_a_hint_colours_its_whole_region_and_leaves_the_paper_white():
    output = paper_with_bag()
    result = propagate_hint_colours(output, planes_for(48, 48, (RED, slice(20, 23), slice(20, 23))))
    assert red(hue_degrees(result, slice(9, 39), slice(11, 37)))
    far_corner = (result[0, :, 9, 36] + 1) / 2
    assert far_corner[0] > far_corner[1] + 0.2 and far_corner[0] > far_corner[2] + 0.2  # red at the far corner too
    assert torch.allclose(result[..., :6, :], output[..., :6, :], atol=1 / 255)  # the paper above the bag
    hint_lab = rgb_to_lab(torch.tensor(RED).view(1, 3, 1, 1).expand(1, 3, 3, 3))
    assert (rgb_to_lab((result[..., 20:23, 20:23] + 1) / 2) - hint_lab).norm(dim=1).max() < 3


def test_a_lightness_edge_keeps_two_hints_apart():
    output = paper_with_bag()
    output[..., 8:40, 24:38] = 0.75 * 2 - 1  # the bag's right half much lighter: an outline between the halves
    planes = planes_for(48, 48, (RED, slice(22, 25), slice(14, 17)), (BLUE, slice(22, 25), slice(30, 33)))
    result = propagate_hint_colours(output, planes)
    left, right = hue_degrees(result, slice(9, 39), slice(11, 23)), hue_degrees(result, slice(9, 39), slice(25, 37))
    assert red(left)
    assert 200 < right < 250


def test_images_of_a_batch_are_solved_alone():
    output = paper_with_bag().repeat(2, 1, 1, 1)
    planes = torch.cat([planes_for(48, 48, (RED, slice(20, 23), slice(20, 23))), torch.zeros(1, 4, 48, 48)])
    result = propagate_hint_colours(output, planes)
    alone = propagate_hint_colours(output[:1], planes[:1])
    assert torch.allclose(result[:1], alone, atol=1e-5)
    assert torch.equal(result[1], output[1])
    assert np.isfinite(result.numpy()).all()


def test_a_hint_reaches_as_far_across_a_large_image_as_across_a_small_one():
    """The reach is a share of the image, and the coarse-to-fine solve gets there at any size: a hint of the same
    share of the image colours the far corner alike at 48 and 192 px."""
    corners = []
    for scale in (1, 4):
        side, s = 48 * scale, scale
        output = paper_with_bag(side, side, (slice(8 * s, 40 * s), slice(10 * s, 38 * s)))
        planes = planes_for(side, side, (RED, slice(20 * s, 23 * s), slice(20 * s, 23 * s)))  # the same share
        corners.append((propagate_hint_colours(output, planes)[0, :, 9 * s, 36 * s] + 1) * 127.5)
    assert (corners[0] - corners[1]).abs().max() < 12


def test_an_enclosed_white_region_without_a_hint_stays_white():
    """The hole of a handle: paper enclosed by the bag's outline, where no hint was painted."""
    output = paper_with_bag()
    output[..., 14:22, 16:24] = 1  # a white hole inside the grey bag
    result = propagate_hint_colours(output, planes_for(48, 48, (RED, slice(30, 33), slice(28, 31))))
    assert red(hue_degrees(result, slice(9, 39), slice(26, 37)))
    assert torch.allclose(result[..., 15:21, 17:23], output[..., 15:21, 17:23], atol=1 / 255)
