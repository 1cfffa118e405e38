"""One worker per export: its generator nets loaded once, one thread running them, a bounded queue in front.

Requests from many connections meet in the queue; the thread takes whatever waits there (up to `max_batch`) and runs
the requests of one net and one image size as one batch, so concurrent users share forward passes instead of
waiting behind each other. The queue is bounded so that a flood is refused at once (Busy: 503 with Retry-After)
rather than answered minutes late, and a request whose caller gave up (timeout, closed connection) is cancelled
and skipped if it has not started. Every image goes through the same Translator as `translate convert`.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from translate.export import read_export_config
from translate.inference import Translator, prepare_for_inference
from translate.inference.model import Model, load_model


class Busy(Exception):
    """The queue is full; `retry_after` is a guess in whole seconds at when it will have room."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy: its queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Job:
    net: str
    image: np.ndarray  # HxWxC uint8, C = the net's input channels
    future: Future


class Worker:
    """The generator nets of one export on `device`, translating queued images on their own thread.

    `tile` and `overlap` are convert's --tile/--overlap; tiles per forward are 1 on the CPU and 8 on a GPU, as
    convert's default --batch-size. torch.compile stays off: a first compile stalls every waiting request for seconds.
    """

    def __init__(self, path: str | Path, device: torch.device, precision: str = "fp32", tile: int | None = 512,
                 overlap: int = 32, queue_size: int = 16, max_batch: int = 8):
        if queue_size < 1 or max_batch < 1:
            raise ValueError(f"queue size and batch size must be >= 1, got {queue_size} and {max_batch}")
        self.path = Path(path)
        self.description = read_export_config(self.path)
        nets = [name for name, spec in self.description["nets"].items() if spec["role"] == "generator"]
        if not nets:
            raise ValueError(f"{self.path} holds no generator net (only {', '.join(self.description['nets'])})")
        self.models: dict[str, Model] = {net: load_model(self.path, net) for net in nets}
        tiles_per_forward = 1 if device.type == "cpu" else 8
        self.translators = {
            net: Translator(prepare_for_inference(model.net, model.inference_mode), model.size_multiple, device,
                            precision, tile, overlap, tiles_per_forward, compile="off")
            for net, model in self.models.items()}
        self.max_batch = max_batch
        self.queue: queue.Queue[Job] = queue.Queue(queue_size)
        self._batch_seconds = 1.0  # running mean of one batch's time, for Retry-After
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"serve {self.path.name}", daemon=True)
        self._thread.start()

    def check_room(self) -> None:
        """Busy when the queue is full: called before decoding too, so a flood is refused before it takes memory."""
        if self.queue.full():
            raise self._busy()

    def submit(self, net: str, image: np.ndarray) -> Future:
        """Queue one image for `net`; its Future gives the HxWxC' uint8 output. Busy when the queue is full."""
        if self._closed.is_set():
            raise RuntimeError("the worker is shutting down")
        job = Job(net, image, Future())
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise self._busy() from None
        return job.future

    def _busy(self) -> Busy:
        waiting_batches = self.queue.maxsize / self.max_batch + 1
        return Busy(max(1, math.ceil(self._batch_seconds * waiting_batches)))

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress; requests still waiting are cancelled."""
        self._closed.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                jobs = [self.queue.get(timeout=0.1)]
            except queue.Empty:
                continue
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._run_jobs([job for job in jobs if job.future.set_running_or_notify_cancel()])
        while True:
            try:
                self.queue.get_nowait().future.cancel()
            except queue.Empty:
                return

    def _run_jobs(self, jobs: list[Job]) -> None:
        groups: dict[tuple, list[Job]] = defaultdict(list)
        for job in jobs:
            groups[job.net, job.image.shape].append(job)
        for (net, _), group in groups.items():
            start = time.perf_counter()
            try:
                outputs = self.translators[net]([job.image for job in group])
            except Exception as error:  # e.g. out of memory: these requests fail, the worker goes on
                for job in group:
                    job.future.set_exception(error)
                continue
            for job, output in zip(group, outputs):
                job.future.set_result(output)
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.perf_counter() - start)


def export_names(paths: list[Path]) -> list[str]:
    """Short unique names: each folder's name, with as many parent folders as it takes to tell them apart
    (runs/a/export and runs/b/export are a/export and b/export)."""
    parts = [Path(path).resolve().parts for path in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    raise ValueError(f"an export is given more than once: {' '.join(str(p) for p in paths)}")


def load_workers(paths: list[Path], device: torch.device, **options) -> dict[str, Worker]:
    """name -> Worker for each export folder (options: Worker's)."""
    workers: dict[str, Worker] = {}
    try:
        for name, path in zip(export_names(paths), paths):
            workers[name] = Worker(path, device, **options)
    except BaseException:
        for worker in workers.values():
            worker.close()
        raise
    return workers
