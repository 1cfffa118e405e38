"""A bounded load test of `translate serve` on loopback: `python tools/bench.py serve [--model EXPORT] ...`.

Starts the studio server in a subprocess, sends `--requests` sketches from `--clients` concurrent clients and then
`--malformed` bad uploads (text, truncated PNG, a header claiming a huge image, no image field), and writes JSON:
every answer's status, p50/p95/max latency of the good ones, and the server's resident memory after the first 20
and after all requests; with --pen N also how closely the page's output follows the pen. Without --model it
serves an untrained pix2pix U-Net-128 at ngf 32 (train-mode inference): latency and memory do not depend on the
weights. The README's figures come from the trained sketch2handbag `cpu` preset, passed with --model.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from PIL import Image, ImageDraw
from serve_pen import pen_follow  # tools/serve_pen.py

from translate import config
from translate.export import write_export
from translate.models import MODELS
from translate.serve.guard import SCRIPT_HEADER

HEADERS = {SCRIPT_HEADER: "serve_load"}  # the server refuses a POST that neither its page nor a script sent


def add_arguments(parser) -> None:
    parser.add_argument("--model", type=Path, help="export folder (default: an untrained U-Net-128 pix2pix)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--malformed", type=int, default=50)
    parser.add_argument("--size", type=int, default=128, help="side of the sketches, pixels")
    parser.add_argument("--pen", type=int, default=0, help="afterwards, draw this many strokes in headless Chromium "
                        "and time pen-up to output shown (tools/serve_pen.py)")
    parser.add_argument("--json", type=Path, help="also write the result here")


def sketch_export(folder: Path) -> Path:
    cfg = config.load(None, ["model.name=pix2pix", "model.generator=unet_128", "model.ngf=32", "model.ndf=32",
                             "data.load_size=128", "data.crop_size=128"])
    return write_export(folder, MODELS["pix2pix"].build(cfg.model).export_nets(), cfg)


def sketch_png(seed: int, size: int) -> bytes:
    """A few random black strokes on white, like a drawing from the page's canvas."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        draw.line([tuple(rng.integers(0, size, 2)) for _ in range(4)], fill="black", width=int(rng.integers(1, 5)))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def malformed(i: int) -> tuple[dict, dict]:
    """(files, form) of the i-th bad upload, cycling through the kinds of mistakes."""
    good = sketch_png(i, 32)
    huge = bytearray(good)
    huge[16:24] = (60000).to_bytes(4, "big") * 2  # the IHDR claims 60000 x 60000, with a valid checksum
    huge[29:33] = zlib.crc32(bytes(huge[12:29])).to_bytes(4, "big")
    kinds = [{"image": ("notes.txt", b"not an image at all", "text/plain")},
             {"image": ("cut.png", good[: len(good) // 2], "image/png")},
             {"image": ("huge.png", bytes(huge), "image/png")},
             {"photo": ("wrong_field.png", good, "image/png")}]
    return kinds[i % len(kinds)], {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def studio(model: Path, *flags: str):
    """`translate serve MODEL FLAGS` in a subprocess on a free loopback port: yields (base URL, pid), answering."""
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "translate", "serve", str(model), "--port", str(port), *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until the server answers
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=60)


def run(args) -> int:
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or sketch_export(Path(tmp) / "export")
        with studio(model) as (base, pid):
            result = load(httpx, base, pid, args)
            if args.pen:
                result["pen"] = pen_follow(base, args.pen)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if result["failed"] == 0 and result["malformed_not_4xx"] == 0 else 1


def load(httpx, base: str, pid: int, args) -> dict:
    client = httpx.Client(timeout=120, headers=HEADERS)
    models = client.get(f"{base}/api/models").json()["models"]
    name, net = models[0]["name"], models[0]["nets"][0]["name"]
    payloads = [sketch_png(i, args.size) for i in range(args.requests)]
    memory: dict[str, int] = {}

    def translate(i: int) -> tuple[int, float]:
        start = time.perf_counter()
        answer = client.post(f"{base}/api/translate", data={"model": name, "net": net},
                             files={"image": (f"s{i}.png", payloads[i], "image/png")})
        ok = answer.status_code == 200 and Image.open(io.BytesIO(answer.content)).size == (args.size, args.size)
        if i == 19:
            memory["after_20"] = psutil.Process(pid).memory_info().rss
        return (200 if ok else answer.status_code), time.perf_counter() - start

    with ThreadPoolExecutor(args.clients) as pool:
        answers = list(pool.map(translate, range(args.requests)))
    memory["after_all"] = psutil.Process(pid).memory_info().rss
    bad = []
    for i in range(args.malformed):
        files, form = malformed(i)
        answer = client.post(f"{base}/api/translate", data={"model": name, "net": net, **form}, files=files)
        bad.append((answer.status_code, str(answer.json().get("detail", ""))[:160] if answer.content else ""))
    still_up = client.get(f"{base}/healthz").status_code == 200
    latencies = sorted(t for code, t in answers if code == 200)
    return {
        "model": name, "net": net, "requests": args.requests, "clients": args.clients, "size": args.size,
        "ok": len(latencies), "failed": args.requests - len(latencies),
        "latency_s": {"p50": round(statistics.median(latencies), 3),
                      "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
                      "max": round(latencies[-1], 3)} if latencies else None,
        "rss_mb": {k: round(v / 2**20) for k, v in memory.items()},
        "malformed": args.malformed, "malformed_not_4xx": sum(not 400 <= code < 500 for code, _ in bad),
        "malformed_codes": sorted({code for code, _ in bad}), "malformed_examples": sorted({d for _, d in bad})[:4],
        "answers_after": still_up,
    }
