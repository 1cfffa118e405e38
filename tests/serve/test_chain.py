"""serve --before: each upload goes through a first export, and the studio answers what convert --before writes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_pix2pix_export
from translate import cli


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    first = make_pix2pix_export(root / "normaliser" / "export", 0, "model.out_channels=1", "data.load_size=40",
                           "data.crop_size=32")
    second = make_pix2pix_export(root / "bags" / "export", 1, "model.in_channels=1", "data.load_size=36",
                            "data.crop_size=32")
    return first, second


def test_uploads_go_through_the_first_export_as_convert_before_does(make_app, connect, pair, tmp_path):
    first, second = pair
    pixels = np.random.default_rng(0).integers(0, 256, (44, 60, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(pixels).save(tmp_path / "in" / "a.png")
    app, worker = make_app(exports=[second], before=first)
    assert worker.input_channels("G") == 3  # decoded for the first export, not for the served one (gray)
    answer = connect(app).post("/api/translate", files={"image": ("a.png", (tmp_path / "in" / "a.png").read_bytes())},
                               data={"model": "bags/export", "net": "G"})
    assert answer.status_code == 200, answer.text
    assert cli.main(["convert", str(second), str(tmp_path / "in"), str(tmp_path / "out"), "--before", str(first),
                     "--workers", "0"]) == 0
    served, converted = np.asarray(Image.open(io.BytesIO(answer.content))), np.asarray(Image.open(tmp_path / "out" /
                                                                                               "a.png"))
    assert served.shape == converted.shape == (36, 50, 3) and np.array_equal(served, converted)


def test_a_first_export_of_several_generators_is_refused_naming_it(make_app, pair, tmp_path):
    from tests.helpers import make_cyclegan_export

    two = make_cyclegan_export(tmp_path / "two")
    with pytest.raises(ValueError, match="--before .*two: the export must hold one generator, it holds 2"):
        make_app(exports=[pair[1]], before=two)
