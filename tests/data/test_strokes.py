"""The `strokes` sketch augmentation (translate/data/strokes.py): thinning to one-pixel lines, pruning spurs and
specks, lines cut into strokes that each move at most SHIFT px, seeded, and the other ops' random streams untouched."""

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from tests.data.test_sketch import drawing_array, photo_array, tensor
from tests.helpers import REPO
from translate.data import strokes
from translate.data.sketch import SketchAugment
from translate.data.strokes import crossings, prune, restroke, thin


def bar(height: int = 32, width: int = 64, thickness: int = 3) -> torch.Tensor:
    ink = torch.zeros(1, 1, height, width, dtype=torch.bool)
    top = height // 2 - thickness // 2
    ink[..., top:top + thickness, 8:width - 8] = True
    return ink


def pieces(ink: np.ndarray) -> int:
    return ndimage.label(ink, structure=np.ones((3, 3)))[1]


def test_thinning_leaves_a_one_pixel_line_as_long_as_the_bar():
    lines = thin(bar(thickness=5))
    assert lines.sum(dim=-2).max() == 1  # one pixel across everywhere
    assert 43 <= lines.sum() <= 48  # the bar is 48 long; thinning takes up to half its thickness off each end
    assert pieces(lines[0, 0].numpy()) == 1
    assert torch.equal(thin(lines), lines)  # a line is its own skeleton


def test_a_cross_has_one_branch_point_and_a_line_none():
    cross = torch.zeros(1, 1, 21, 21, dtype=torch.uint8)
    cross[..., 10, 2:19] = 1
    cross[..., 2:19, 10] = 1
    assert int((crossings(cross) * cross >= 3).sum()) == 1
    line = cross.clone()
    line[..., 2:19, 10] = 0
    line[..., 10, 10] = 1
    assert int((crossings(line) * line >= 3).sum()) == 0


def test_pruning_takes_off_short_spurs_and_specks_and_keeps_long_lines_whole():
    lines = torch.zeros(1, 1, 40, 60, dtype=torch.bool)
    lines[..., 20, 5:55] = True  # a long line
    lines[..., 14:20, 30] = True  # a 6 px spur off it
    lines[..., 5, 5:9] = True  # a 4 px speck
    lines[..., 32:38, 45] = True  # a lone 6 px stroke
    pruned = prune(lines, 8)
    expected = torch.zeros_like(lines)
    expected[..., 20, 5:55] = True
    assert torch.equal(pruned, expected)
    assert torch.equal(prune(expected, 8), expected)  # the long line is grown back to its full length


def test_restroke_cuts_lines_into_strokes_each_moved_at_most_shift_px():
    sketch = tensor(drawing_array(256))
    generator = torch.Generator().manual_seed(3)
    out = restroke(sketch[None], generator)[0]
    assert out.shape == sketch.shape and set(out.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])  # every channel alike
    ink_before, ink_after = (sketch[0] < 0).numpy(), (out[0] < 0).numpy()
    assert pieces(ink_after) > 2 * pieces(ink_before)  # a rectangle, an arc and two lines: now many strokes
    reach = 2 * strokes.SHIFT + 1  # a stroke moved by at most SHIFT px per axis stays within that of the old ink
    near = F.max_pool2d(torch.from_numpy(ink_before).float()[None, None], int(reach), stride=1,
                        padding=int(reach) // 2)[0, 0].bool().numpy()
    assert ink_after.any() and (near | ~ink_after).all()
    assert 0.5 < ink_after.sum() / thin(torch.from_numpy(ink_before)[None, None]).sum() <= 1.0


def test_restroke_is_a_function_of_its_generator():
    sketch = tensor(drawing_array(128))[None]
    first = restroke(sketch, torch.Generator().manual_seed(5))
    assert torch.equal(first, restroke(sketch, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, restroke(sketch, torch.Generator().manual_seed(6)))


def test_an_empty_sketch_stays_white_paper():
    paper = torch.ones(2, 3, 32, 32)
    assert torch.equal(restroke(paper, torch.Generator().manual_seed(0)), paper)


def test_the_other_ops_draw_as_before_when_strokes_joins_them():
    """The strokes op takes a random stream of its own: where it leaves a sample as it is, the other four ops give
    exactly what they gave without it (presets and runs from before it existed are unchanged)."""
    a, b = tensor(drawing_array()), tensor(photo_array())
    untouched = [key for key in range(16) if torch.equal(SketchAugment("strokes")(a, b, key), a)]
    assert 3 <= len(untouched) <= 13  # the op's own probability is a half
    for key in untouched:
        assert torch.equal(SketchAugment("all")(a, b, key), SketchAugment("remake,width,dropout,wobble")(a, b, key))


def test_stroke_stats_counts_a_known_drawing_and_its_redrawn_strokes(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("stroke_stats", REPO / "tools" / "stroke_stats.py")
    stats = sys.modules.setdefault("stroke_stats", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(stats)
    lines = torch.zeros(1, 1, 256, 256, dtype=torch.bool)
    lines[..., 128, 28:228] = True  # one 200 px line
    lines[..., 28:228, 128] = True  # crossed by another
    counted = stats.statistics(torch.where(lines[0], -1.0, 1.0))
    assert counted == {"ink_share": pytest.approx(399 / 256**2), "line_px": 399, "pieces": 1, "specks": 0,
                       "stroke_ends": 4, "branch_points": 1}

    folder = tmp_path / "sketches"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(drawing_array(256)).save(folder / f"{name}.png")
    assert stats.main([str(folder), "--restroke", "--sheet", str(tmp_path / "sheet.png")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["images"] == 2 and printed["restroke"] is True and printed["pieces"] > 4
    assert Image.open(tmp_path / "sheet.png").size == (2 * 256, 2 * 256)  # two sketches, before above after
