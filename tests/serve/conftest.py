"""Fixtures of the studio tests: one tiny CycleGAN export, apps over it whose workers are closed afterwards, and
a real uvicorn server on a free loopback port in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import torch
import uvicorn

from tests.helpers import make_cyclegan_export
from translate.serve.app import create_app
from translate.serve.worker import load_workers


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    """G_AB: RGB -> gray, G_BA: gray -> RGB, so both channel conversions are exercised."""
    return make_cyclegan_export(tmp_path_factory.mktemp("serve") / "export", channels_a=3, channels_b=1)


@pytest.fixture
def make_app(export_dir):
    """make_app(limits=None, exports=[export_dir], **worker_options) -> (app, the first export's Worker)."""
    made = []

    def make(limits=None, exports=None, **options):
        workers = load_workers(exports or [export_dir], torch.device("cpu"), **options)
        made.extend(workers.values())
        return create_app(workers, limits), next(iter(workers.values()))

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def live_server():
    """live_server(app) -> (uvicorn.Server, base URL): serving on 127.0.0.1 until the test ends."""
    running = []

    def start(app):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread, sock))
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return server, f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(10)
        sock.close()
