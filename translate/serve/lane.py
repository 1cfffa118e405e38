"""One lane of a Worker: a child process (engine.py) holding an export's nets, a bounded queue of jobs in front, and
the thread that feeds one to the other, batching and enforcing deadlines.

- A job takes its queue slot when its upload's header is accepted, before decoding, so a flood is refused (Busy:
  503 + Retry-After) before it takes memory; a job whose caller gave up (timeout, closed connection) leaves the
  queue at once, so its slot is free for the next caller even while the child is busy.
- Jobs of one net and one image size that wait together run as one batch: concurrent users share forward passes.
- A batch that no caller waits for any more (every deadline passed or every caller gone) is not worth finishing:
  the child is killed and a fresh one started (`replacements` counts them), so one expensive upload costs at most
  one timeout, not minutes of everyone's. A child that dies on its own (out of memory) is replaced the same way.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import threading
import time
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from translate.serve import engine

STARTUP_S = 300.0  # loading the nets in a fresh interpreter: seconds on a CPU, longer on a first CUDA start
POLL_S = 0.05  # how often the feeding thread looks at the deadlines of the batch in the child
RETRY_S = 5.0  # the pause before starting a child again after a start failed

log = logging.getLogger(__name__)


class Busy(Exception):
    """The queue is full; `retry_after` is a guess in whole seconds at when it will have room."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy: its queue is full; retry in {retry_after} s")
        self.retry_after = retry_after


class WorkerError(ValueError):
    """A child process that could not load the export, failed a translation or died; the message says which."""


@dataclass(eq=False)
class Job:
    """One request's place in a lane: reserved before decoding, started with the decoded image, released by its
    caller when it stops waiting (answered or not)."""

    net: str
    deadline: float  # time.monotonic() after which nobody waits for the output
    lane: Lane
    future: Future = field(default_factory=Future)
    image: np.ndarray | None = None  # None while the upload is being decoded
    hints: np.ndarray | None = None  # the colour hint map fitted to `image`, if the request sent one
    gone: bool = False

    def start(self, image: np.ndarray, hints: np.ndarray | None = None) -> None:
        self.lane._start(self, image, hints)

    def release(self) -> None:
        """The caller no longer waits: the slot is freed at once, and a batch left with no caller is stopped."""
        self.lane._release(self)

    @property
    def unwanted(self) -> bool:
        return self.gone or time.monotonic() >= self.deadline


class Lane:
    """Jobs for one child process. The child starts on the first job, or at once with open()."""

    def __init__(self, name: str, engine_args: tuple, queue_size: int, max_batch: int):
        if queue_size < 1 or max_batch < 1:
            raise ValueError(f"queue size and batch size must be >= 1, got {queue_size} and {max_batch}")
        self.name, self._engine_args = name, engine_args
        self.queue_size, self.max_batch = queue_size, max_batch
        self.state = "idle"  # idle (no child yet), starting, ready, restarting (replacing one), down
        self.replacements = self.images = self.batches = 0
        self.process: multiprocessing.Process | None = None
        self._conn = None
        self._waiting: list[Job] = []
        self._changed = threading.Condition()
        self._closed = False
        self._running_since: float | None = None
        self._batch_seconds = 1.0  # running mean of one batch's time, for Retry-After
        self._thread = threading.Thread(target=self._run, name=f"serve {name}", daemon=True)
        self._thread.start()

    def open(self) -> None:
        """Start the child now and wait until its nets are loaded; WorkerError if they cannot be."""
        self._spawn()
        self.state = "ready"

    def reserve(self, net: str, deadline: float) -> Job:
        """A queue slot for a request about to be decoded; Busy when the queue is full."""
        with self._changed:
            if self._closed:
                raise WorkerError("the server is shutting down")
            if len(self._waiting) >= self.queue_size:
                waiting_batches = self.queue_size / self.max_batch + 1
                raise Busy(max(1, math.ceil(self._batch_seconds * waiting_batches)))
            job = Job(net, deadline, self)
            self._waiting.append(job)
            return job

    def health(self) -> dict:
        running = self._running_since
        replacements = self.replacements  # read before the state, which _restart sets before the count
        return {"state": self.state, "queued": len(self._waiting), "replacements": replacements,
                "running_s": round(time.monotonic() - running, 2) if running is not None else None,
                "images": self.images, "batches": self.batches}

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress; jobs still waiting are cancelled; the child exits."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _start(self, job: Job, image: np.ndarray, hints: np.ndarray | None) -> None:
        with self._changed:
            job.image, job.hints = image, hints
            self._changed.notify_all()

    def _release(self, job: Job) -> None:
        with self._changed:
            job.gone = True
            job.future.cancel()  # no effect once running or done
            if job in self._waiting:
                self._waiting.remove(job)

    def _take(self) -> list[Job] | None:
        """Up to max_batch decoded jobs in arrival order, leaving the queue; None once closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or any(job.image is not None for job in self._waiting))
            if self._closed:
                return None
            jobs = [job for job in self._waiting if job.image is not None][:self.max_batch]
            for job in jobs:
                self._waiting.remove(job)
            return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            groups: dict[tuple, list[Job]] = defaultdict(list)
            for job in jobs:
                groups[job.net, job.image.shape].append(job)
            for group in groups.values():
                self._run_group([job for job in group if job.future.set_running_or_notify_cancel()])
        with self._changed:
            waiting, self._waiting = self._waiting, []
        for job in waiting:
            job.future.cancel()
        self._stop_child()

    def _run_group(self, group: list[Job]) -> None:
        if not group:
            return
        if self._conn is None and not self._restart(replacing=False):  # the lazy first start, or after a failure
            self._fail(group, f"the worker process for {self.name} is down")
            return
        late = [job for job in group if job.unwanted]  # e.g. waited out a child's start: running it helps nobody
        if late:
            self._fail(late, "skipped: its request had timed out or left")
            group = [job for job in group if job not in late]
            if not group:
                return
        start = self._running_since = time.monotonic()
        try:
            kind, payload = self._translate(group)
        finally:
            self._running_since = None
        if kind == "ok":
            # counted before the answers go out: whoever has an answer sees it counted
            self.images, self.batches = self.images + len(group), self.batches + 1
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.monotonic() - start)
            for job, output in zip(group, payload):
                job.future.set_result(output)
        else:
            self._fail(group, payload)

    def _translate(self, group: list[Job]) -> tuple[str, object]:
        """("ok", outputs) or ("error", message), replacing the child when it died or nobody waits any more."""
        try:
            # A batch may mix requests with and without hints (a hinted net takes both); None: no hints at all.
            hints = [job.hints for job in group] if any(job.hints is not None for job in group) else None
            self._conn.send((group[0].net, [job.image for job in group], hints))
            for job in group:
                job.image = job.hints = None  # a 40-megapixel upload is 120 MB: the worker process has its own copy
            while not self._conn.poll(POLL_S):
                if all(job.unwanted for job in group):
                    self._restart(replacing=True, why="a batch outlived the deadline of every request in it")
                    return "error", "stopped: every request of the batch had timed out or left"
            return self._conn.recv()
        except (EOFError, OSError):  # the child died (killed from outside, out of memory)
            self.process.join(1)
            code = self.process.exitcode
            self._restart(replacing=True, why=f"the worker process died (exit code {code})")
            return "error", f"the worker process died (exit code {code}); try a smaller image"

    def _restart(self, replacing: bool, why: str = "") -> bool:
        """Start a child (a fresh one in place of the current when `replacing`), trying again every RETRY_S while
        starts fail; False if the lane closed meanwhile."""
        if replacing:
            self.state = "restarting"  # before the count: whoever sees the new count sees this state or a later one
            self.replacements += 1
            log.warning("serve %s: %s; starting a fresh worker process", self.name, why)
            self._stop_child(kill=True)
        while True:
            self.state = "restarting" if replacing else "starting"
            try:
                self._spawn()
                self.state = "ready"
                return True
            except WorkerError as error:
                self.state = "down"
                log.error("serve %s: %s", self.name, error)
                with self._changed:
                    if self._changed.wait_for(lambda: self._closed, RETRY_S):
                        return False

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=engine.main, args=(theirs, *self._engine_args),
                                  name=f"translate serve {self.name}", daemon=True)
        process.start()
        theirs.close()
        self.process, self._conn = process, ours
        try:
            if not ours.poll(STARTUP_S):
                raise WorkerError(f"{self.name}: the worker process did not load its nets in {STARTUP_S:g} s")
            kind, message = ours.recv()
        except (EOFError, OSError):
            kind, message = "error", f"{self.name}: the worker process died while loading its nets"
        if kind != "ready":
            self._stop_child(kill=True)
            raise WorkerError(message)

    def _stop_child(self, kill: bool = False) -> None:
        """Close the pipe (the child exits at its end) or kill the child outright; wait for it either way."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        self._conn.close()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process, self._conn = None, None

    @staticmethod
    def _fail(group: list[Job], message: str) -> None:
        for job in group:
            job.future.set_exception(WorkerError(message))
