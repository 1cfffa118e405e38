"""Colour hints through the studio's API: the optional `hints` file (an RGBA map of the upload's size) reaches a
hinted model exactly as the Python API passes it, is bounded and checked like the image, and is refused, in one
line, by a model that reads none."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tests.helpers import HINTED, make_pix2pix_export
from tests.serve.test_api import png_header_claiming, wait_until
from translate.inference import Translator
from translate.serve.app import Limits, create_app
from translate.serve.worker import load_workers

SIZE = (48, 40)  # uploads; the export's training scale (shorter side 36) makes them 43x36 for the net


@pytest.fixture(scope="module")
def hinted(tmp_path_factory):
    return make_pix2pix_export(tmp_path_factory.mktemp("hints") / "bags" / "export", 0, *HINTED,
                               "data.load_size=36", "data.crop_size=32")


@pytest.fixture(scope="module")
def hinted_workers(hinted):
    workers = load_workers([hinted], torch.device("cpu"))
    yield workers
    for worker in workers.values():
        worker.close()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sketch(size=SIZE) -> Image.Image:
    """A bag-like outline: white, black strokes (a small PNG, as the page sends)."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((8, 14, size[0] - 9, size[1] - 5), outline="black", width=2)
    return image


def hint_map(size=SIZE, box=(18, 20, 28, 28), colour=(210, 30, 30)) -> Image.Image:
    """Transparent, with one opaque patch of `colour`."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle(box, fill=(*colour, 255))
    return image


def noise_rgba(size=SIZE) -> bytes:
    """An RGBA PNG that does not compress: larger than a small byte limit."""
    return png(Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)))


def rgba_header_claiming(width: int, height: int) -> bytes:
    return png_header_claiming(width, height, colour_type=6)


def post(client, image: bytes, hints: bytes | None = None, model="bags/export", net="G"):
    files = {"image": ("drawing.png", image, "image/png")} | (
        {"hints": ("hints.png", hints, "image/png")} if hints is not None else {})
    return client.post("/api/translate", files=files, data={"model": model, "net": net})


def pixels(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_hints_change_the_output_as_the_python_api_computes_it(hinted, hinted_workers, connect):
    client = connect(create_app(hinted_workers))
    (model,) = client.get("/api/models").json()["models"]
    assert model["card"]["hints"] is True and [net["hints"] for net in model["nets"]] == [True]
    drawing, hints = sketch(), hint_map()
    with_hints, without = pixels(post(client, png(drawing), png(hints))), pixels(post(client, png(drawing)))
    api = Translator.from_export(hinted, device="cpu")
    assert np.array_equal(with_hints, np.asarray(api(drawing, hints=hints)))  # fitted from 48x40 to 43x36 alike
    assert np.array_equal(without, np.asarray(api(drawing)))
    assert with_hints.shape == (36, 43, 3) and np.abs(with_hints.astype(int) - without).max() > 0


@pytest.mark.parametrize("hints, limits, code, words", [
    (png(hint_map((10, 10))), Limits(), 422, "the hint map is 10x10 but its image is 48x40"),
    (png(hint_map().convert("RGB")), Limits(), 422, "the hint map has no alpha channel (mode RGB)"),
    (noise_rgba(), Limits(max_bytes=4000), 413, "hint map too large"),
    (rgba_header_claiming(7_000, 7_000), Limits(), 413, "hint map: image too large: 7000x7000 is 49.0 megapixels"),
    (rgba_header_claiming(8_000, 1), Limits(), 422, "hint map: image too thin"),
    (b"just some text", Limits(), 415, "hint map: not an image"),
    (noise_rgba()[:1000], Limits(), 400, "corrupt hint map: cannot decode it"),
    (b"", Limits(), 400, "hint map: the uploaded file is empty"),
], ids=["size", "no-alpha", "bytes", "header-pixels", "header-aspect", "text", "truncated", "empty"])
def test_hint_map_refusals_name_the_problem(hinted_workers, connect, hints, limits, code, words):
    response = post(connect(create_app(hinted_workers, limits)), png(sketch()), hints)
    assert response.status_code == code, response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail, detail


def test_a_model_without_hints_refuses_a_hint_map(make_app, connect):
    response = post(connect(make_app()[0]), png(sketch()), png(hint_map()), model="studio/export",
                    net="G_AB")
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == ("model 'studio/export' (G_AB) reads no colour hints (it was trained without "
                                         "model.colour_hints): send the image without a hint map")
    (model,) = connect(make_app()[0]).get("/api/models").json()["models"]
    assert model["card"]["hints"] is False and {net["hints"] for net in model["nets"]} == {False}


def test_requests_with_and_without_hints_share_one_forward(hinted, connect, paused):
    """A hinted net reads images without hints too (all-zero planes): the lane batches the two kinds together."""
    workers = load_workers([hinted], torch.device("cpu"), queue_size=4)
    try:
        lane = workers["bags/export"].lanes["small"]
        client = connect(create_app(workers))
        drawing = png(sketch())
        with ThreadPoolExecutor(3) as pool:
            with paused(lane):
                first = pool.submit(post, client, drawing)
                wait_until(lambda: lane.health()["running_s"] is not None)  # the worker process holds the first
                later = [pool.submit(post, client, drawing, png(hint_map())), pool.submit(post, client, drawing)]
                wait_until(lambda: lane.health()["queued"] == 2)
            batched = [pixels(future.result()) for future in (first, *later)]
        assert (lane.images, lane.batches) == (3, 2)
        alone = [pixels(post(client, drawing)), pixels(post(client, drawing, png(hint_map())))]
        for ours, theirs in zip(batched[1:], alone[::-1]):  # as each alone (instance norm: per image), within rounding
            assert np.abs(ours.astype(int) - theirs).max() <= 1
        assert np.abs(batched[1].astype(int) - batched[2]).max() > 0
    finally:
        for worker in workers.values():
            worker.close()


def test_hint_maps_are_of_the_upright_image(hinted_workers, connect):
    """A phone photo stored 48x40 whose EXIF turns it by 90 degrees is 40x48 to the net, as in convert: so is its
    map."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show
    buffer = io.BytesIO()
    sketch().save(buffer, format="JPEG", exif=exif)
    client = connect(create_app(hinted_workers))
    upright = post(client, buffer.getvalue(), png(hint_map((40, 48), box=(10, 20, 20, 30))))
    assert pixels(upright).shape == (43, 36, 3)
    stored = post(client, buffer.getvalue(), png(hint_map()))
    assert stored.status_code == 422 and stored.json()["detail"].startswith(
        "the hint map is 48x40 but its image is 40x48"), stored.text
