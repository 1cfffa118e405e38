"""serve --before: each upload goes through a first export, and the studio answers what convert --before writes;
colour hints go to the second export."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.helpers import HINTED, make_pix2pix_export
from translate import cli
from translate.inference import Translator
from translate.inference.chain import Chain
from translate.inference.hint_maps import HintError, fit_hint_map


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    first = make_pix2pix_export(root / "normaliser" / "export", 0, "model.out_channels=1", "data.load_size=40",
                           "data.crop_size=32")
    second = make_pix2pix_export(root / "bags" / "export", 1, "model.in_channels=1", "data.load_size=36",
                            "data.crop_size=32")
    return first, second


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


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


def test_hints_go_to_the_second_export_fitted_to_what_it_reads(make_app, connect, pair, tmp_path):
    """Upload 60x44 -> the first export's scale (55x40) -> the hinted second's (50x36): the map follows the image."""
    first = pair[0]
    second = make_pix2pix_export(tmp_path / "hinted" / "export", 1, "model.in_channels=1", "data.load_size=36",
                                 "data.crop_size=32", *HINTED)
    drawing = Image.fromarray(np.random.default_rng(0).integers(0, 256, (44, 60, 3), dtype=np.uint8))
    hints = Image.new("RGBA", (60, 44), (0, 0, 0, 0))
    hints.paste((30, 60, 220, 255), (20, 10, 40, 30))
    app, _ = make_app(exports=[second], before=first)
    client = connect(app)

    def served(with_hints: bool) -> np.ndarray:
        files = {"image": ("a.png", png(drawing))} | ({"hints": ("h.png", png(hints))} if with_hints else {})
        answer = client.post("/api/translate", files=files, data={"model": "hinted/export", "net": "G"})
        assert answer.status_code == 200, answer.text
        return np.asarray(Image.open(io.BytesIO(answer.content)))

    middle = Translator.from_export(first, device="cpu")(drawing)  # the edges the second export reads, 55x40
    expected = Translator.from_export(second, device="cpu")(middle, hints=fit_hint_map(hints, (60, 44), middle.size))
    with_hints = served(True)
    assert with_hints.shape == (36, 50, 3) and np.array_equal(with_hints, np.asarray(expected))
    assert not np.array_equal(with_hints, served(False))

    chain = Chain(Translator.from_export(first, device="cpu"), Translator.from_export(pair[1], device="cpu"), 1)
    with pytest.raises(HintError, match="this model reads no colour hints"):  # the second export of `pair`
        chain([np.asarray(drawing)], [hints])
    with pytest.raises(HintError, match="2 hint maps for 1 images"):
        chain([np.asarray(drawing)], [hints, None])
