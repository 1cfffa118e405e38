"""The studio's HTTP API in-process: convert's pixels, every refusal and its code, the queue and its batching, work
stopped at its deadline, the static folder's confinement, graceful shutdown, no server path in any answer."""

from __future__ import annotations

import argparse
import io
import json
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_cyclegan_export
from translate import cli
from translate.serve import command
from translate.serve.app import STATIC, Limits


def png_bytes(size=(24, 16), mode="RGB", seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_claiming(width: int, height: int, colour_type: int = 2) -> bytes:
    """A tiny PNG whose header says width x height (colour type 2: RGB, 6: RGBA); its pixel data is three bytes of
    nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0\0\0")) + chunk(b"IEND", b"")


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def post(client, data: bytes, model="studio/export", net="G_AB", name="image.png"):
    """POST one upload as the studio's page does (the client says who it is, see the `connect` fixture)."""
    fields = {"model": model} | ({"net": net} if net else {})
    return client.post("/api/translate", files={"image": (name, data, "application/octet-stream")}, data=fields)


def test_outputs_equal_translate_convert(export_dir, make_app, connect, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    images = {"odd.png": ((41, 33), "RGB"), "gray.png": ((24, 24), "L"), "alpha.png": ((30, 17), "RGBA"),
              "wide.png": ((600, 20), "RGB")}  # wide: through --tile 512, as convert, in the large lane
    for seed, (name, (size, mode)) in enumerate(images.items()):
        (inputs / name).write_bytes(png_bytes(size, mode, seed))
    app, _ = make_app()
    client = connect(app)
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


def test_models_list_each_generator_and_the_card(make_app, connect, tmp_path):
    app, _ = make_app()
    client = connect(app)
    health = client.get("/healthz").json()
    assert (health["status"], health["models"]) == ("ok", ["studio/export"])
    assert health["workers"]["studio/export"].keys() == {"small", "large"}
    (model,) = client.get("/api/models").json()["models"]
    assert model["name"] == "studio/export" and model["card"]["model"] == "cyclegan"
    assert model["card"]["scores"] is None
    assert [(n["name"], n["direction"], n["in_channels"], n["out_channels"]) for n in model["nets"]] == [
        ("G_AB", "A to B", 3, 1), ("G_BA", "B to A", 1, 3)]
    assert {n["size_multiple"] for n in model["nets"]} == {4} and {n["inference_mode"] for n in model["nets"]} == {
        "eval"}

    best = make_cyclegan_export(tmp_path / "run" / "export_best")  # as periodic evaluation writes it
    (best / "best.json").write_text('{"step": 400, "metric": "fid", "fid": 81.5}')
    other = make_cyclegan_export(tmp_path / "other" / "export_best")
    models = connect(make_app(exports=[best, other])[0]).get("/api/models").json()["models"]
    assert [m["name"] for m in models] == ["run/export_best", "other/export_best"]  # told apart by their parents
    assert models[0]["card"]["scores"] == {"step": 400, "metric": "fid", "fid": 81.5}
    assert (models[0]["card"]["steps"], models[1]["card"]["steps"]) == (400, 200000)  # else its config's max_steps


def strings_in(answer) -> list[str]:
    """Every string in a JSON answer, keys included."""
    if isinstance(answer, dict):
        return [text for key, value in answer.items() for text in (key, *strings_in(value))]
    if isinstance(answer, list):
        return [text for value in answer for text in strings_in(value)]
    return [answer] if isinstance(answer, str) else []


def test_no_answer_holds_a_path_on_the_server(make_app, connect, tmp_path):
    export = make_cyclegan_export(tmp_path / "runs" / "h2z" / "export")
    config = json.loads((export / "config.json").read_text())
    config["training_config"]["data"]["root"] = str(tmp_path / "data" / "horse2zebra")  # as a run resolves it
    (export / "config.json").write_text(json.dumps(config))
    (export / "best.json").write_text(json.dumps({"step": 10, "fid": 80.0, "stats": str(tmp_path / "ref.npz")}))
    client = connect(make_app(exports=[export])[0])
    (model,) = client.get("/api/models").json()["models"]
    assert model["card"]["data"] == "horse2zebra"  # the data set's name, not where it lies
    assert model["card"]["scores"] == {"step": 10, "fid": 80.0}
    answers = [client.get("/healthz"), client.get("/api/models"), post(client, png_bytes((64, 64))[:300],
               model="h2z/export"), post(client, b"text", model="h2z/export"), post(client, png_bytes(), model="x")]
    assert [answer.status_code for answer in answers] == [200, 200, 400, 415, 404]
    for answer in answers:
        for text in strings_in(answer.json()):
            assert str(tmp_path) not in text and not text.startswith("/") and "/tmp" not in text, text


@pytest.mark.parametrize("data, limits, code, words", [
    (png_bytes((64, 64)), Limits(max_bytes=1000), 413, "upload too large"),
    (b"\0" * 200_000, Limits(max_bytes=1000), 413, "upload too large"),  # refused by Content-Length, unread
    (png_header_claiming(100_000, 100_000), Limits(), 413, "image too large"),  # Pillow's bomb guard
    (png_header_claiming(7_000, 7_000), Limits(), 413, "49.0 megapixels, the limit is 40"),
    (png_header_claiming(39_000_000, 1), Limits(), 413, "39000000x1 has a side over 8192 px"),
    (png_header_claiming(8_000, 1), Limits(), 422, "aspect ratio of 8000:1, the limit is 32:1"),
    (png_header_claiming(300, 10), Limits(max_aspect=10), 422, "aspect ratio of 30:1, the limit is 10:1"),
    (png_header_claiming(600, 600), Limits(max_side=512), 413, "600x600 has a side over 512 px"),
    (png_bytes((64, 64)), Limits(max_pixels=1000), 413, "image too large"),
    (b"just some text, not a picture", Limits(), 415, "not an image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", Limits(), 415, "not an image"),  # never to Ghostscript
    (png_bytes((64, 64))[:300], Limits(), 400, "corrupt image"),
    (b"", Limits(), 400, "empty"),
], ids=["file-bytes", "body-bytes", "pillow-bomb", "header-pixels", "header-side", "header-aspect", "aspect-option",
        "side-option", "pixels", "text", "eps", "truncated", "empty"])
def test_refusals_name_the_problem(make_app, connect, data, limits, code, words):
    """The header-only files would be 400 "corrupt" if decoded: their limit is found before any decoding."""
    app, _ = make_app(limits)
    response = post(connect(app), data)
    assert response.status_code == code, response.text
    assert words in response.json()["detail"]


def test_every_error_body_is_one_string(make_app, connect):
    """FastAPI answers a malformed form with a list of problems; the API promises {"detail": "<one string>"}."""
    client = connect(make_app()[0])
    response = client.post("/api/translate", data={"net": "G_AB"})
    assert response.status_code == 422
    assert response.json() == {"detail": "missing form field 'image'; missing form field 'model'"}
    wrong_field = client.post("/api/translate", files={"photo": ("a.png", png_bytes())},
                              data={"model": "studio/export"})
    assert wrong_field.status_code == 422 and wrong_field.json() == {"detail": "missing form field 'image'"}
    for answer in [client.get("/api/nothing"), client.get("/api/translate"), client.delete("/api/models")]:
        assert answer.status_code in (404, 405) and isinstance(answer.json()["detail"], str), answer.text


def test_unknown_model_or_net_is_404_and_a_missing_choice_400(make_app, connect):
    client = connect(make_app()[0])
    for model, net, code, words in [("nope", "G_AB", 404, "unknown model 'nope'; served: studio/export"),
                                    ("studio/export", "G_XY", 404, "no generator 'G_XY'; it has G_AB, G_BA"),
                                    ("studio/export", None, 400, "choose one")]:
        response = post(client, png_bytes(), model=model, net=net)
        assert (response.status_code, words in response.json()["detail"]) == (code, True), response.text


def test_a_full_queue_is_503_with_retry_after(make_app, connect, paused):
    app, worker = make_app(queue_size=1)
    lane = worker.lanes["small"]
    client = connect(app)
    with ThreadPoolExecutor(2) as pool, paused(lane):
        running = pool.submit(post, client, png_bytes())
        wait_until(lambda: lane.health()["running_s"] is not None)  # the worker process holds the first request
        waiting = pool.submit(post, client, png_bytes())
        wait_until(lambda: lane.health()["queued"] == 1)  # the second fills the queue
        refused = post(client, png_bytes())
    assert (running.result().status_code, waiting.result().status_code) == (200, 200)
    assert refused.status_code == 503 and "busy" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) >= 1


def test_concurrent_same_size_requests_share_one_forward(make_app, connect, paused):
    app, worker = make_app(queue_size=4)
    lane = worker.lanes["small"]
    client = connect(app)
    with ThreadPoolExecutor(3) as pool:
        with paused(lane):
            first = pool.submit(post, client, png_bytes(seed=0))
            wait_until(lambda: lane.health()["running_s"] is not None)
            later = [pool.submit(post, client, png_bytes(seed=s)) for s in (1, 2)]
            wait_until(lambda: lane.health()["queued"] == 2)
        batched = [future.result() for future in (first, *later)]
    assert [r.status_code for r in batched] == [200, 200, 200]
    assert (lane.images, lane.batches) == (3, 2)  # the two that waited together ran as one batch
    for seed, response in enumerate(batched):  # as each alone (instance norm: per image), within rounding
        single = np.asarray(Image.open(io.BytesIO(post(client, png_bytes(seed=seed)).content)), dtype=int)
        assert np.abs(single - np.asarray(Image.open(io.BytesIO(response.content)), dtype=int)).max() <= 1


def test_a_timed_out_request_frees_its_slot_at_once_and_its_work_is_stopped(make_app, connect, paused):
    app, worker = make_app(Limits(timeout=1.5), queue_size=1)
    lane = worker.lanes["small"]
    client = connect(app)
    with ThreadPoolExecutor(1) as pool, paused(lane):  # a forward that never ends
        running = pool.submit(post, client, png_bytes())
        wait_until(lambda: lane.health()["running_s"] is not None)
        waiting = post(client, png_bytes())  # queued behind the held one past its timeout
        assert waiting.status_code == 504 and "longer than 1.5 s" in waiting.json()["detail"]
        assert lane.health()["queued"] == 0  # its slot is free at once, not when the worker gets to it
        assert running.result().status_code == 504
        wait_until(lambda: lane.replacements == 1 and lane.state == "ready", 60)  # the stuck process was replaced
    assert post(client, png_bytes()).status_code == 200
    assert (lane.images, lane.batches) == (1, 1)  # only the last ran to its end; the queued one never started


def test_a_request_whose_caller_left_is_skipped(make_app, live_server, paused):
    app, worker = make_app(queue_size=4)
    lane = worker.lanes["small"]
    _, url = live_server(app)
    files, form = {"image": ("a.png", png_bytes())}, {"model": "studio/export", "net": "G_AB"}
    headers = {"X-Requested-With": "tests"}
    with ThreadPoolExecutor(1) as pool:
        with paused(lane):
            running = pool.submit(httpx.post, f"{url}/api/translate", files=files, data=form, headers=headers)
            wait_until(lambda: lane.health()["running_s"] is not None)
            with pytest.raises(httpx.ReadTimeout):  # the page's AbortController does the same to a superseded drawing
                httpx.post(f"{url}/api/translate", files=files, data=form, headers=headers, timeout=0.3)
            wait_until(lambda: lane.health()["queued"] == 0)  # the server looks for its caller every POLL_S
        assert running.result().status_code == 200
    assert httpx.post(f"{url}/api/translate", files=files, data=form, headers=headers).status_code == 200
    assert (lane.images, lane.batches, lane.replacements) == (2, 2, 0)


def test_shutdown_finishes_the_requests_in_flight(make_app, live_server, paused):
    app, worker = make_app(fresh=True)
    lane = worker.lanes["small"]
    server, url = live_server(app)
    with ThreadPoolExecutor(1) as pool:
        with paused(lane):
            running = pool.submit(httpx.post, f"{url}/api/translate", files={"image": ("a.png", png_bytes())},
                                  data={"model": "studio/export", "net": "G_AB"}, headers={"X-Requested-With": "tests"},
                                  timeout=20)
            wait_until(lambda: lane.health()["running_s"] is not None)
            server.should_exit = True  # what uvicorn's SIGINT / SIGTERM handler does
            threading.Event().wait(0.3)
        response = running.result()
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    wait_until(lambda: lane.process is None)  # then the lifespan's end stops the worker processes


def test_static_files_only_from_the_package_folder(make_app, connect):
    client = connect(make_app()[0])
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
    assert (args.max_side, args.max_aspect, args.allowed_host, args.queue_size, args.large_queue_size) == (
        8192, 32, [], 16, 2)
