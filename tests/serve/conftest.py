"""Fixtures of the studio tests: one tiny CycleGAN export, apps over it whose workers are closed afterwards, clients
that talk as the studio's page does, a way to hold a worker process still, and a real uvicorn server on a free
loopback port in a background thread."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time

import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient

from tests.helpers import make_cyclegan_export
from translate.serve.app import create_app
from translate.serve.guard import LOOPBACK
from translate.serve.worker import load_workers


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    """G_AB: RGB -> gray, G_BA: gray -> RGB, so both channel conversions are exercised. Served as studio/export
    (a model is named by its run folder and its own)."""
    return make_cyclegan_export(tmp_path_factory.mktemp("serve") / "studio" / "export", channels_a=3, channels_b=1)


@pytest.fixture(scope="session")
def shared_workers(export_dir):
    """Workers with the default options, shared by the tests that neither hold nor count their processes: each
    Worker starts a Python process, seconds on a busy CPU."""
    workers = load_workers([export_dir], torch.device("cpu"))
    yield workers
    for worker in workers.values():
        worker.close()


@pytest.fixture
def make_app(export_dir, shared_workers):
    """make_app(limits=None, exports=None, hosts=loopback, fresh=False, **worker_options) -> (app, the first
    export's Worker). Without exports and options the app runs on the shared workers, unless `fresh` (a live
    server closes its app's workers when it stops); otherwise on new ones, closed afterwards."""
    made = []

    def make(limits=None, exports=None, hosts=frozenset(LOOPBACK), fresh=False, **options):
        if exports is None and not options and not fresh:
            workers = shared_workers
        else:
            workers = load_workers(exports or [export_dir], torch.device("cpu"), **options)
            made.extend(workers.values())
        return create_app(workers, limits, hosts), next(iter(workers.values()))

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def connect():
    """connect(app) -> a TestClient that talks as a script does: Host localhost and an X-Requested-With header."""
    return lambda app: TestClient(app, base_url="http://localhost", headers={"X-Requested-With": "tests"})


@pytest.fixture
def paused():
    """paused(lane): while inside, the lane's worker process is stopped (SIGSTOP), as during a forward pass that
    takes that long; the process is started first if it was not yet."""

    @contextlib.contextmanager
    def pause(lane):
        if lane.process is None:
            lane.open()
        pid = lane.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):  # replaced meanwhile
                os.kill(pid, signal.SIGCONT)

    return pause


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
