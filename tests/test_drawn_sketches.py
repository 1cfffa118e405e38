"""tools/drawn_sketches.py split: the last 100 sketches by index for validation, each with its own edge map."""

from __future__ import annotations

import importlib.util
import sys

from tests.helpers import REPO, write_images

_spec = importlib.util.spec_from_file_location("drawn_sketches", REPO / "tools" / "drawn_sketches.py")
drawn = sys.modules.setdefault("drawn_sketches", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(drawn)


def test_split_by_index_keeps_each_sketch_with_its_edge_map(tmp_path, monkeypatch):
    monkeypatch.setattr(drawn, "VALIDATION", 3)
    for kind, seed in (("sketch", 0), ("photo_edges", 1)):
        write_images(tmp_path / "qmul" / "train" / kind, 10, (8, 8), seed=seed)
    counts = drawn.split(tmp_path / "qmul", tmp_path / "split")
    assert counts == {"train/sketch": 7, "val/sketch": 3, "train/photo_edges": 7, "val/photo_edges": 3}
    val = sorted(p.name for p in (tmp_path / "split" / "val" / "sketch").iterdir())
    assert val == sorted(p.name for p in (tmp_path / "split" / "val" / "photo_edges").iterdir())
    assert val == sorted(p.name for p in (tmp_path / "qmul" / "train" / "sketch").iterdir())[-3:]
    assert (tmp_path / "split" / "val" / "sketch" / val[0]).resolve() == (tmp_path / "qmul" / "train" / "sketch" /
                                                                          val[0]).resolve()
    assert drawn.split(tmp_path / "qmul", tmp_path / "split") == counts  # a rerun keeps the links
