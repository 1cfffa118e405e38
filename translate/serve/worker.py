"""One Worker per export: its generator nets served in two lanes, each a replaceable child process (lane.py).

Images that fit one tile (what the page draws, most photos) go to the "small" lane, which batches them; tiled ones
go to the "large" lane, whose child starts on the first such image and gets half the CPU cores. An expensive upload
therefore never waits in front of the page's drawings, and while it runs it leaves them cores to run on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from translate.export import read_export_config
from translate.inference.scale import resolve_size
from translate.inference.tiling import check_tile
from translate.serve.lane import Lane

UNTILED_SMALL_SIDE = 512  # without tiling, the longest side that still counts as small
HEALTHY = ("idle", "starting", "ready")  # lane states of a serving worker; restarting and down are not


@dataclass(frozen=True)
class Net:
    """What the page and the API need to know of a generator, from the export's config.json (no weights)."""

    arch: str
    in_channels: int
    out_channels: int
    size_multiple: int
    inference_mode: str
    hint_channels: int = 0  # > 0: it also reads colour hints (translate/data/hints.py)

    @classmethod
    def of(cls, spec: dict) -> Net:
        """The Net of a config.json entry; exports from before colour hints have no hint_channels."""
        return cls(**{f.name: spec[f.name] for f in fields(cls) if f.name in spec})


class Worker:
    """The generator nets of one export on `device`. `tile` and `overlap` are convert's --tile/--overlap; an image
    whose longest side is at most `tile` is small. `queue_size` and `large_queue_size` bound the requests waiting
    per lane; `max_batch` small requests of one size share a forward."""

    def __init__(self, path: str | Path, device: torch.device, precision: str = "fp32", tile: int | None = 512,
                 overlap: int = 32, queue_size: int = 16, large_queue_size: int = 2, max_batch: int = 8,
                 size: str = "train", before: str | Path | None = None):
        self.path = Path(path)
        self.description = read_export_config(self.path)
        # With `before` (an export, e.g. a sketch normaliser) every upload goes through it first, as convert
        # --before: uploads are read as that export reads its images.
        self.before = first_generator(Path(before)) if before else None
        self.scale = resolve_size(size, read_export_config(before) if before else self.description)
        self.models = {name: Net.of(spec) for name, spec in self.description["nets"].items()
                       if spec["role"] == "generator"}
        if not self.models:
            raise ValueError(f"{self.path} holds no generator net (only {', '.join(self.description['nets'])})")
        if tile is not None:
            check_tile(tile, overlap)
        self.small_side = tile or UNTILED_SMALL_SIDE
        args = (str(self.path), str(device), precision, tile, overlap, str(before) if before else None, size)
        large_threads = max(1, (os.cpu_count() or 2) // 2) if device.type == "cpu" else None
        self.lanes = {"small": Lane(f"{self.path.name} small", (*args, None), queue_size, max_batch),
                      "large": Lane(f"{self.path.name} large", (*args, large_threads), large_queue_size, 1)}
        try:
            self.lanes["small"].open()  # a model that cannot load stops the server at its start, not a request
        except BaseException:
            self.close()
            raise

    def input_channels(self, net: str) -> int:
        """The channels an upload is decoded to for `net` (the first export's, with --before)."""
        return (self.before or self.models[net]).in_channels

    def scaled(self, width: int, height: int) -> tuple[int, int]:
        """The size an upload of width x height is translated at."""
        return self.scale.size(width, height) if self.scale is not None else (width, height)

    def lane_for(self, width: int, height: int) -> Lane:
        """The lane for an upload of this size (as uploaded: it is resized on its way to the lane)."""
        return self.lanes["small" if max(self.scaled(width, height)) <= self.small_side else "large"]

    def health(self) -> dict:
        return {name: lane.health() for name, lane in self.lanes.items()}

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the batches in progress; requests still waiting are cancelled."""
        for lane in self.lanes.values():
            lane.close(timeout)


def first_generator(path: Path) -> Net:
    """The one generator of the export that runs before the served ones."""
    description = read_export_config(path)
    specs = [spec for spec in description["nets"].values() if spec["role"] == "generator"]
    if len(specs) != 1:
        raise ValueError(f"--before {path}: the export must hold one generator, it holds {len(specs)}")
    return Net.of(specs[0])


def export_names(paths: list[Path]) -> list[str]:
    """Short unique names: each folder's name with its run folder's (runs/horse2zebra/export is
    horse2zebra/export: the studio names a model by its run, not by "export"), and with as many more parent
    folders as it takes to tell them apart; never the absolute path."""
    parts = [Path(path).resolve().parts[1:] for path in paths]
    for depth in range(min(2, *(len(p) for p in parts)), max(len(p) for p in parts) + 1):
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
