"""Multi-frame inputs to `translate convert`: the first frame converted, a warning naming the file and its frame
count, and the count in manifest.json."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_cyclegan_export
from translate import cli


@pytest.mark.parametrize("name", ["pages.tif", "animated.webp"])
def test_a_multi_frame_input_is_converted_from_its_first_frame_with_a_warning(name, tmp_path, capsys):
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (20, 28, 3), np.uint8)) for _ in range(3)]
    (tmp_path / "in").mkdir()
    frames[0].save(tmp_path / "in" / name, save_all=True, append_images=frames[1:], lossless=True)
    frames[0].save(tmp_path / "in" / "still.png")
    model = make_cyclegan_export(tmp_path / "model")
    out = tmp_path / "out"

    assert cli.main(["convert", str(model), str(tmp_path / "in"), str(out), "--net", "G_AB", "--workers", "0"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {name} has 3 frames (multi-page or animated); only the first is converted"]
    assert "1 inputs have several frames" in captured.out
    images = {r["input"]: r for r in json.loads((out / "manifest.json").read_text())["images"]}
    assert images[name]["frames"] == 3 and "frames" not in images["still.png"]
    with Image.open(out / images[name]["output"]) as img, Image.open(out / "still.png") as still:
        assert getattr(img, "n_frames", 1) == 1
        assert np.array_equal(np.asarray(img), np.asarray(still))  # still.png is the first frame
