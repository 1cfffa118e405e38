"""The studio under hostile uploads: thin images refused from their header, an allowed but slow one stopped at its
deadline and its worker process replaced, while normal clients beside them keep getting their translations."""

from __future__ import annotations

import io
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from translate.serve.limits import Limits


def png_of(width: int, height: int) -> bytes:
    """A valid black 8-bit gray PNG of any size, built without holding its pixels in Pillow: 39,000,000 x 1 is 38 kB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(bytes(width + 1) * height, 9)  # each row: filter byte 0, then zeros
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def sketch(seed: int) -> bytes:
    """16 x 12 px: small enough for the small lane even with 16 px tiles."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def post(client, data: bytes):
    return client.post("/api/translate", files={"image": ("a.png", data)},
                       data={"model": "studio/export", "net": "G_AB"})


def wait_until(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_thin_uploads_are_refused_from_their_header_beside_normal_clients(make_app, connect):
    """The hostile tester's 39,000,000 x 1 PNG stalled the old server for minutes; now it costs a header read."""
    client = connect(make_app()[0])
    thin, wide = png_of(39_000_000, 1), png_of(8_000, 1)
    Image.open(io.BytesIO(thin)).load()  # a valid image, under the 40 MP limit
    with ThreadPoolExecutor(4) as pool:
        normal = pool.map(lambda i: post(client, sketch(i)), range(12))
        start = time.perf_counter()
        refused = [post(client, thin), post(client, wide)]
        refusing_s = time.perf_counter() - start
        codes = [answer.status_code for answer in normal]
    assert codes == [200] * 12
    assert [answer.status_code for answer in refused] == [413, 422]
    assert "side over 8192 px" in refused[0].json()["detail"]
    assert "aspect ratio of 8000:1, the limit is 32:1" in refused[1].json()["detail"]
    assert refusing_s < 2  # no decoding: 39 megapixels would take seconds


def test_a_slow_upload_is_stopped_and_its_worker_replaced_while_normal_clients_are_answered(make_app, connect):
    """8192 x 256 is within every limit, but with 16 px tiles it takes ~14,000 forwards (many seconds): past the
    3 s timeout its process is killed and replaced; the small lane answers the normal clients all along."""
    app, worker = make_app(Limits(timeout=3.0), tile=16, overlap=4)
    large = worker.lanes["large"]
    large.open()  # started before the attack, so that the timeout measures the work, not the start
    client = connect(app)
    with ThreadPoolExecutor(5) as pool:
        attack = pool.submit(post, client, png_of(8192, 256))
        wait_until(lambda: large.health()["running_s"] is not None)
        normal = list(pool.map(lambda i: post(client, sketch(i)), range(12)))
        stopped = attack.result()
    assert [answer.status_code for answer in normal] == [200] * 12
    assert stopped.status_code == 504 and "longer than 3 s" in stopped.json()["detail"]
    seen = []
    # One answer's own count, not large.replacements read after it: the replacement may start in between.
    wait_until(lambda: seen.append(client.get("/healthz")) or seen[-1].status_code == 200
               and seen[-1].json()["workers"]["studio/export"]["large"]["replacements"] == 1)
    restarting = [answer.json() for answer in seen if answer.status_code == 503]
    assert restarting and restarting[0]["workers"]["studio/export"]["large"]["state"] == "restarting"
    assert "export large (restarting)" in restarting[0]["detail"]
    assert seen[-1].json()["workers"]["studio/export"]["large"]["replacements"] == 1
    assert post(client, png_of(64, 40)).status_code == 200  # the fresh process serves (64 px: the large lane)
    assert large.images == 1
