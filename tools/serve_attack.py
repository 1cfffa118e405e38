"""Does `translate serve` shed hostile load instead of stalling? `python tools/serve_attack.py [--model EXPORT]`.

Starts the studio in a subprocess (`--queue-size 4 --timeout 10`, the hostile tester's settings) and, at the same
time, has an attacker send hostile uploads (an extreme aspect ratio, the most pixels allowed, a truncated image, a
decompression-bomb header, a long thin image within the limits) while normal clients send 128 px sketches. Prints
one JSON object: every normal answer's status and p50/p95/max latency against the goal, each hostile upload's
answer, whether /healthz is 200 afterwards (waiting for replaced worker processes to come back), how many worker
processes were replaced, and the server's memory. Without --model it serves an untrained pix2pix U-Net-128 at ngf 32
(latency does not depend on the weights). Exit code 0 when the goal is met.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from serve_load import HEADERS, sketch_export, sketch_png, studio  # tools/serve_load.py

SERVER_FLAGS = ("--queue-size", "4", "--timeout", "10")
MAX_SQUARE = 6324  # 6324^2 = 39.99 megapixels: the most the default --max-megapixels 40 lets through


def png(width: int, height: int, idat: bytes) -> bytes:
    """An 8-bit gray PNG whose header says width x height, with `idat` as its compressed rows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_of(width: int, height: int) -> bytes:
    """A valid black PNG, compressed row by row: 39,000,000 x 1 is a 38 kB file, 6324 x 6324 a 40 kB one."""
    compressor, row = zlib.compressobj(9), bytes(width + 1)  # filter byte 0, then the pixels
    return png(width, height, b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush())


def hostile_uploads() -> dict[str, bytes]:
    biggest = png_of(MAX_SQUARE, MAX_SQUARE)
    return {
        "extreme-aspect": png_of(39_000_000, 1),  # the tester's 39 MP x 1 px PNG
        "max-pixels": biggest,  # allowed; tiled in the large lane, stopped at the timeout
        "truncated": biggest[: len(biggest) // 2],  # a valid header over half the data
        "bomb-header": png(100_000, 100_000, zlib.compress(b"\0")),  # 10 gigapixels claimed by a 60-byte file
        "long-thin": png_of(8192, 256),  # within every limit: 8192 px side, aspect 32
    }


def rss_mb(pid: int | None) -> dict[str, int] | None:
    """Resident memory of the studio's process and of its worker processes, MiB."""
    if pid is None:
        return None
    server = psutil.Process(pid)
    children = server.children(recursive=True)
    return {"server": round(server.memory_info().rss / 2**20),
            "workers": round(sum(child.memory_info().rss for child in children) / 2**20)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="export folder (default: an untrained U-Net-128 pix2pix)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=25, help="per normal client")
    parser.add_argument("--hostile", type=int, default=10, help="hostile uploads, cycling through the kinds")
    parser.add_argument("--recovery-s", type=float, default=120, help="how long to wait for /healthz afterwards")
    parser.add_argument("--goal-p95", type=float, default=2.0, help="seconds")
    parser.add_argument("--url", help="attack a server already running here instead (e.g. an older build started "
                        "with --queue-size 4 --timeout 10); its memory is then not measured")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    uploads = hostile_uploads()
    if args.url:
        result = attack(args.url.rstrip("/"), None, uploads, args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model = args.model or sketch_export(Path(tmp) / "export")
            with studio(model, *SERVER_FLAGS) as (base, pid):
                result = attack(base, pid, uploads, args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if result["goal_met"] else 1


def attack(base: str, pid: int | None, uploads: dict[str, bytes], args) -> dict:
    client = httpx.Client(timeout=120, headers=HEADERS)
    model = client.get(f"{base}/api/models").json()["models"][0]
    form = {"model": model["name"], "net": model["nets"][0]["name"]}
    size = model["size"]
    kinds = [list(uploads)[i % len(uploads)] for i in range(args.hostile)]
    rss_before = rss_mb(pid)
    origin = time.perf_counter()

    def hostile(kind: str) -> dict:
        start = time.perf_counter()
        answer = client.post(f"{base}/api/translate", data=form, files={"image": (f"{kind}.png", uploads[kind])})
        detail = answer.json().get("detail", "") if answer.headers.get("content-type") == "application/json" else ""
        return {"kind": kind, "status": answer.status_code, "sent_at_s": round(start - origin, 2),
                "seconds": round(time.perf_counter() - start, 2), "detail": detail[:120]}

    def normal(client_index: int) -> list[tuple[int, float]]:
        answers = []
        for i in range(args.requests):
            png = sketch_png(client_index * args.requests + i, size)
            start = time.perf_counter()
            answer = client.post(f"{base}/api/translate", data=form, files={"image": ("sketch.png", png)})
            answers.append((answer.status_code, time.perf_counter() - start))
        return answers

    with ThreadPoolExecutor(2 + args.clients) as pool:
        attackers = [pool.submit(lambda part: [hostile(kind) for kind in part], kinds[i::2]) for i in range(2)]
        time.sleep(1.0)  # the attack is under way (decoding, tiling) when the normal clients start
        normal_window = [time.perf_counter() - origin]
        normals = [pool.submit(normal, i) for i in range(args.clients)]
        answers = [answer for future in normals for answer in future.result()]
        normal_window.append(time.perf_counter() - origin)
        hostile_answers = [answer for future in attackers for answer in future.result()]
    rss_after_attack = rss_mb(pid)
    healthy, waited = wait_healthy(client, base, args.recovery_s)
    rss_after_recovery = rss_mb(pid)
    health = client.get(f"{base}/healthz").json()
    start = time.perf_counter()  # /healthz can say ok while nothing gets translated: ask for a translation too
    probe = client.post(f"{base}/api/translate", data=form, files={"image": ("probe.png", sketch_png(10**6, size))})
    probe_s = time.perf_counter() - start
    latencies = sorted(seconds for status, seconds in answers if status == 200)
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else None
    replacements = sum(lane["replacements"] for lanes in health.get("workers", {}).values() for lane in lanes.values())
    ok = len(latencies) == len(answers)
    return {
        "model": model["name"], "size": size, "server_flags": " ".join(SERVER_FLAGS),
        "normal": {"clients": args.clients, "requests": len(answers), "ok": len(latencies),
                   "codes": sorted({status for status, _ in answers}),
                   "latency_s": {"p50": round(statistics.median(latencies), 3), "p95": round(p95, 3),
                                 "max": round(latencies[-1], 3)} if latencies else None},
        "hostile": hostile_answers,
        "normal_window_s": [round(t, 2) for t in normal_window],
        "hostile_in_flight_during_normal": sum(a["sent_at_s"] < normal_window[1] and
                                               a["sent_at_s"] + a["seconds"] > normal_window[0]
                                               for a in hostile_answers),
        "healthy_after": healthy, "waited_for_health_s": waited,
        "translation_after": {"status": probe.status_code, "seconds": round(probe_s, 3)},
        "worker_replacements": replacements,
        "rss_mb": {"before": rss_before, "after_attack": rss_after_attack, "after_recovery": rss_after_recovery},
        "goal_p95_s": args.goal_p95,
        "goal_met": ok and p95 is not None and p95 <= args.goal_p95 and healthy and probe.status_code == 200,
    }


def wait_healthy(client: httpx.Client, base: str, seconds: float = 120) -> tuple[bool, float]:
    """Whether, within `seconds`, /healthz is 200 with nothing left running or queued (work stopped at its deadline
    has been noticed and its worker process replaced); and how long that took."""
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        answer = client.get(f"{base}/healthz")
        lanes = [lane for lanes in answer.json().get("workers", {}).values() for lane in lanes.values()]
        if answer.status_code == 200 and all(lane["running_s"] is None and not lane["queued"] for lane in lanes):
            return True, round(time.perf_counter() - start, 2)
        time.sleep(0.25)
    return False, round(time.perf_counter() - start, 2)


if __name__ == "__main__":
    sys.exit(main())
