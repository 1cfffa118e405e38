"""Small helpers every stage shares: atomic file writes and how this process was launched.

Atomic writes go to a temporary name beside the target, then rename, so a crash or a failed write never leaves a
half-written file under the final name, and readers see the old file or the new one, nothing between."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

_PR_SET_PDEATHSIG = 1


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write to; renamed onto `path` when the block ends normally, removed when it raises.
    It keeps `path`'s extension (writers that pick a format by extension see the right one) and carries the
    process id (two processes writing the same file never share a temporary)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_TEMPORARY = re.compile(r"\..+\.(?P<pid>\d+)\.partial(\.[^.]*)?")  # atomic_path's names


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Remove the temporaries of atomic_path under `folder` whose process has died: a SIGKILL mid-write skips the
    cleanup, and the hidden half file would only take space. A live process's temporary is left alone, so this is
    safe beside other processes still writing. Returns how many were removed."""
    removed = 0
    for path in Path(folder).rglob(".*.partial*"):
        match = _TEMPORARY.fullmatch(path.name)
        if match and path.is_file() and not _alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """UTF-8; file names that are not UTF-8 (held by Python as surrogates) are written back as their own bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")


def die_with_parent(*_) -> None:
    """For DataLoader's worker_init_fn: the worker is killed when its parent dies, even by SIGKILL (Linux), instead
    of lingering with its memory until it next polls for the parent."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # not glibc: the worker's own parent check remains
            return
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:  # it died before the line above: no signal will come
            os._exit(0)


def printable(name: str) -> str:
    """A file name for a message: a name that is not UTF-8 shows its odd bytes as \\x.. escapes instead of
    making print() fail."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def distributed_without_gpus() -> bool:
    """Launched as several processes (train, convert under `accelerate launch`) on a machine without CUDA:
    Accelerate only forms the (gloo) process group when told to use the CPU; otherwise every process would silently
    work alone as rank 0 of 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict | None = None) -> None:
    """safetensors' save_file, with the permissions every other file gets: it creates files 0600 whatever the
    umask, so an export copied to a shared folder or served by another user would be unreadable to them."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, 0o666 & ~current_umask())


def current_umask() -> int:
    """The process umask, read from /proc where it can be: setting it to read it back races with other threads
    creating files in that instant."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o22)
    os.umask(umask)
    return umask
