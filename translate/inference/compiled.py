"""torch.compile where it pays: only for input shapes seen often enough, with a persistent cache and an eager fallback.

"auto" compiles on GPUs only. On CPUs it did not pay (resnet_9blocks, 256 px, `translate convert`, whole command):
on one 2-core x86-64 CPU the compiled loop was 8% faster than eager once cached, but the first compile cost 11 s;
on a 2-core AMD EPYC (AVX512-BF16) the compiled loop was 7% slower in fp32 and 17% slower in bf16, after a first
compile of about 30 s (docs/benchmarks/convert.md). "on" still compiles on a CPU, for a machine where it pays.
Weight freezing gave no further speed-up and bypasses inductor's FX graph cache (5 s on every run), so it is not
used. Each new input shape compiles anew, so "auto" waits until a shape has come `after` times and compiles at most
`max_shapes` shapes; a folder of all-different sizes simply runs eagerly. Nor does "auto" compile images smaller
than `min_pixels` (128 x 128): eager is already fast there and the compile cannot pay back (1,000 32-px digits:
21 s compiling, 3 s converting).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

COMPILE_MODES = ("auto", "on", "off")
AUTO_DEVICES = ("cuda",)  # where "auto" compiles (module docstring)


def persistent_cache_dir() -> Path:
    """Inductor's cache defaults to /tmp (gone after a reboot); keep it in the user cache unless one is set."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "translate" / "inductor"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(base))
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


class ShapeCompiled:
    """Call `net` eagerly, or through torch.compile for the shapes the mode selects ("on": every shape)."""

    def __init__(self, net: nn.Module, mode: str = "auto", after: int = 8, max_shapes: int = 4,
                 min_pixels: int = 128 * 128):
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
        self.net, self.mode = net, mode
        self.after = 1 if mode == "on" else after
        self.max_shapes = max_shapes
        self.min_pixels = 0 if mode == "on" else min_pixels
        self.seen: Counter = Counter()
        self.shapes: set = set()
        self._compiled = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype, x.device)
        self.seen[key] += 1
        if self._selected(key):
            try:
                return self._compiled(x)
            except Exception as error:  # no C++ compiler, unsupported op, ...: correctness first
                log.warning("torch.compile failed, running eagerly: %s", str(error).strip().splitlines()[0])
                self.mode = "off"
        return self.net(x)

    def _selected(self, key) -> bool:
        if self.mode == "off":
            return False
        if key not in self.shapes:
            if self.mode == "auto" and key[2].type not in AUTO_DEVICES:
                return False
            small = key[0][-1] * key[0][-2] < self.min_pixels
            if small or self.seen[key] < self.after or len(self.shapes) >= self.max_shapes:
                return False
            self.shapes.add(key)
        if self._compiled is None:
            persistent_cache_dir()
            self._compiled = torch.compile(self.net, dynamic=False)
        return True
