"""convert --before: two exports in a row compute what two convert commands compute."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.helpers import make_pix2pix_export, write_images
from translate import cli


def convert(*argv) -> int:
    return cli.main(["convert", *[str(a) for a in argv], "--workers", "0"])


def test_a_chain_equals_converting_twice(tmp_path):
    # a normaliser at its own scale (gray out), then a translator trained at another scale (gray in, RGB out)
    first = make_pix2pix_export(tmp_path / "normaliser" / "export", 0, "model.out_channels=1", "data.load_size=40",
                           "data.crop_size=32")
    second = make_pix2pix_export(tmp_path / "translator" / "export", 1, "model.in_channels=1", "data.load_size=36",
                            "data.crop_size=32")
    write_images(tmp_path / "in", 3, (60, 44), seed=2)
    assert convert(second, tmp_path / "in", tmp_path / "chained", "--before", first) == 0
    assert convert(first, tmp_path / "in", tmp_path / "step1") == 0
    assert convert(second, tmp_path / "step1", tmp_path / "step2") == 0
    for name in ("000.png", "001.png", "002.png"):
        chained, twice = (np.asarray(Image.open(tmp_path / d / name)) for d in ("chained", "step2"))
        assert chained.shape == (36, 50, 3) and np.array_equal(chained, twice)


def test_a_missing_first_export_is_one_line(tmp_path, capsys):
    second = make_pix2pix_export(tmp_path / "translator" / "export", 1)
    write_images(tmp_path / "in", 1, (32, 32), seed=2)
    assert convert(second, tmp_path / "in", tmp_path / "out", "--before", tmp_path / "nothing") == 2
    assert capsys.readouterr().err.strip().endswith("does not exist")
