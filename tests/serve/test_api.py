"""The studio's HTTP API in-process: convert's pixels, every refusal and its code, the queue and its batching, the
static folder's confinement, graceful shutdown."""

from __future__ import annotations

import argparse
import io
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.helpers import make_cyclegan_export
from translate import cli
from translate.serve import command
from translate.serve.app import STATIC, Limits


class Gate:
    """Stands in for a Translator's forward: records each call's batch size and holds it until opened."""

    def __init__(self, translator, opened: bool = False):
        self.forward, self.sizes = translator.forward, []
        self.entered, self.opened = threading.Event(), threading.Event()
        if opened:
            self.opened.set()
        translator.forward = self

    def __call__(self, x):
        self.sizes.append(len(x))
        self.entered.set()
        assert self.opened.wait(20), "the test never opened the gate"
        return self.forward(x)


def png_bytes(size=(24, 16), mode="RGB", seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header says width x height; its pixel data is three bytes of nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0\0\0")) + chunk(b"IEND", b"")


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def post(client, data: bytes, model="export", net="G_AB", name="image.png"):
    fields = {"model": model} | ({"net": net} if net else {})
    return client.post("/api/translate", files={"image": (name, data, "application/octet-stream")}, data=fields)


def test_outputs_equal_translate_convert(export_dir, make_app, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    images = {"odd.png": ((41, 33), "RGB"), "gray.png": ((24, 24), "L"), "alpha.png": ((30, 17), "RGBA"),
              "wide.png": ((600, 20), "RGB")}  # wide: through --tile 512, as convert
    for seed, (name, (size, mode)) in enumerate(images.items()):
        (inputs / name).write_bytes(png_bytes(size, mode, seed))
    app, _ = make_app()
    client = TestClient(app)
    for net in ("G_AB", "G_BA"):
        out = tmp_path / net
        assert cli.main(["convert", str(export_dir), str(inputs), str(out), "--net", net, "--tile", "512",
                         "--workers", "0"]) == 0
        for name in images:
            response = post(client, (inputs / name).read_bytes(), net=net, name=name)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "image/png"
            ours, theirs = Image.open(io.BytesIO(response.content)), Image.open(out / name)
            assert (ours.mode, ours.size) == (theirs.mode, theirs.size), (net, name)
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=f"{net} {name}")


def test_models_list_each_generator_and_the_card(make_app, tmp_path):
    app, _ = make_app()
    client = TestClient(app)
    assert client.get("/healthz").json() == {"status": "ok", "models": ["export"]}
    (model,) = client.get("/api/models").json()["models"]
    assert model["name"] == "export" and model["card"]["model"] == "cyclegan" and model["card"]["scores"] is None
    assert [(n["name"], n["direction"], n["in_channels"], n["out_channels"]) for n in model["nets"]] == [
        ("G_AB", "A to B", 3, 1), ("G_BA", "B to A", 1, 3)]
    assert {n["size_multiple"] for n in model["nets"]} == {4} and {n["inference_mode"] for n in model["nets"]} == {
        "eval"}

    best = make_cyclegan_export(tmp_path / "run" / "export_best")  # as periodic evaluation writes it
    (best / "best.json").write_text('{"step": 400, "metric": "fid", "fid": 81.5}')
    other = make_cyclegan_export(tmp_path / "other" / "export_best")
    models = TestClient(make_app(exports=[best, other])[0]).get("/api/models").json()["models"]
    assert [m["name"] for m in models] == ["run/export_best", "other/export_best"]  # told apart by their parents
    assert models[0]["card"]["scores"] == {"step": 400, "metric": "fid", "fid": 81.5}
    assert (models[0]["card"]["steps"], models[1]["card"]["steps"]) == (400, 200000)  # else its config's max_steps


@pytest.mark.parametrize("data, limits, code, words", [
    (png_bytes((64, 64)), Limits(max_bytes=1000), 413, "upload too large"),
    (b"\0" * 200_000, Limits(max_bytes=1000), 413, "upload too large"),  # refused by Content-Length, unread
    (png_header_claiming(100_000, 100_000), Limits(), 413, "image too large"),  # Pillow's bomb guard
    (png_header_claiming(7_000, 7_000), Limits(), 413, "49.0 megapixels, the limit is 40"),
    (png_bytes((64, 64)), Limits(max_pixels=1000), 413, "image too large"),
    (b"just some text, not a picture", Limits(), 415, "not an image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", Limits(), 415, "not an image"),  # never to Ghostscript
    (png_bytes((64, 64))[:300], Limits(), 400, "corrupt image"),
    (b"", Limits(), 400, "empty"),
], ids=["file-bytes", "body-bytes", "pillow-bomb", "header-pixels", "pixels", "text", "eps", "truncated", "empty"])
def test_refusals_name_the_problem(make_app, data, limits, code, words):
    app, _ = make_app(limits)
    response = post(TestClient(app), data)
    assert response.status_code == code, response.text
    assert words in response.json()["detail"]


def test_unknown_model_or_net_is_404_and_a_missing_choice_400(make_app):
    client = TestClient(make_app()[0])
    for model, net, code, words in [("nope", "G_AB", 404, "unknown model 'nope'; served: export"),
                                    ("export", "G_XY", 404, "no generator 'G_XY'; it has G_AB, G_BA"),
                                    ("export", None, 400, "choose one")]:
        response = post(client, png_bytes(), model=model, net=net)
        assert (response.status_code, words in response.json()["detail"]) == (code, True), response.text


def test_a_full_queue_is_503_with_retry_after(make_app):
    app, worker = make_app(queue_size=1)
    gate = Gate(worker.translators["G_AB"])
    client = TestClient(app)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(post, client, png_bytes())
        assert gate.entered.wait(10)  # the worker holds the first request
        waiting = pool.submit(post, client, png_bytes())
        wait_until(lambda: worker.queue.qsize() == 1)  # the second fills the queue
        refused = post(client, png_bytes())
        gate.opened.set()
        assert (running.result().status_code, waiting.result().status_code) == (200, 200)
    assert refused.status_code == 503 and "busy" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) >= 1


def test_concurrent_same_size_requests_share_one_forward(make_app):
    app, worker = make_app(queue_size=4)
    gate = Gate(worker.translators["G_AB"])
    client = TestClient(app)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(post, client, png_bytes(seed=0))
        assert gate.entered.wait(10)
        later = [pool.submit(post, client, png_bytes(seed=s)) for s in (1, 2)]
        wait_until(lambda: worker.queue.qsize() == 2)
        gate.opened.set()
        batched = [future.result() for future in (first, *later)]
    assert [r.status_code for r in batched] == [200, 200, 200]
    assert gate.sizes == [1, 2]  # the two that waited together ran as one batch
    for seed, response in enumerate(batched):  # as each alone (instance norm: per image), within rounding
        single = np.asarray(Image.open(io.BytesIO(post(client, png_bytes(seed=seed)).content)), dtype=int)
        assert np.abs(single - np.asarray(Image.open(io.BytesIO(response.content)), dtype=int)).max() <= 1


def test_a_timed_out_request_is_504_and_never_runs(make_app):
    app, worker = make_app(Limits(timeout=0.5), queue_size=4)
    gate = Gate(worker.translators["G_AB"])
    client = TestClient(app)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(post, client, png_bytes())
        assert gate.entered.wait(10)
        waiting = post(client, png_bytes())  # queued behind the held one past its timeout
        assert waiting.status_code == 504 and "longer than 0.5 s" in waiting.json()["detail"]
        assert running.result().status_code == 504  # already running: its output is dropped
    gate.opened.set()
    assert post(client, png_bytes()).status_code == 200
    assert gate.sizes == [1, 1]  # the first and the last; the cancelled one was skipped


def test_a_request_whose_caller_left_is_skipped(make_app, live_server):
    app, worker = make_app(queue_size=4)
    gate = Gate(worker.translators["G_AB"])
    _, url = live_server(app)
    files = {"image": ("a.png", png_bytes())}
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(httpx.post, f"{url}/api/translate", files=files, data={"model": "export", "net": "G_AB"})
        assert gate.entered.wait(10)
        with pytest.raises(httpx.ReadTimeout):  # the page's AbortController does the same to a superseded drawing
            httpx.post(f"{url}/api/translate", files=files, data={"model": "export", "net": "G_AB"}, timeout=0.3)
        (left,) = worker.queue.queue
        wait_until(left.future.cancelled)  # the server looks for its caller every POLL_S
        gate.opened.set()
        assert running.result().status_code == 200
    assert httpx.post(f"{url}/api/translate", files=files, data={"model": "export", "net": "G_AB"}).status_code == 200
    assert gate.sizes == [1, 1]


def test_shutdown_finishes_the_requests_in_flight(make_app, live_server):
    app, worker = make_app()
    gate = Gate(worker.translators["G_AB"])
    server, url = live_server(app)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(httpx.post, f"{url}/api/translate", files={"image": ("a.png", png_bytes())},
                              data={"model": "export", "net": "G_AB"}, timeout=20)
        assert gate.entered.wait(10)
        server.should_exit = True  # what uvicorn's SIGINT / SIGTERM handler does
        threading.Event().wait(0.3)
        gate.opened.set()
        response = running.result()
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    wait_until(lambda: not worker._thread.is_alive())  # then the lifespan's end closes the workers


def test_static_files_only_from_the_package_folder(make_app):
    client = TestClient(make_app()[0])
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/studio.js").status_code == 200
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e%2fapp.py",
                 "/static/..%5capp.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/../../cli.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "import" not in response.text and "root:" not in response.text, path


def test_the_page_loads_nothing_from_elsewhere():
    for file in Path(STATIC).iterdir():
        text = file.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, file.name


def test_binds_loopback_by_default(export_dir):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([str(export_dir)])
    assert (args.host, args.port, args.tile, args.max_upload_mb, args.max_megapixels) == ("127.0.0.1", 7860, 512,
                                                                                           20, 40)
