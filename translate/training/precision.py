"""train.mixed_precision=auto: bf16 where the machine computes it natively, fp32 elsewhere.

Why: bf16 pays only on hardware that has it. On a CPU with AVX512-BF16 the horse2zebra budget presets ran 1.38-1.55x
more steps in the same minutes with no loss of zebra top-1 or FID over two seeds (docs/benchmarks/cpu_speed.md);
on a CPU without it oneDNN emulates bf16 several times slower than fp32. A preset sized in minutes therefore asks for
`auto`, and the run resolves it once, before anything is built:

  CUDA     bf16 when torch.cuda.is_bf16_supported(), else no
  CPU      bf16 when oneDNN reports native bf16 (AVX512-BF16 or AMX), else no; a torch without that probe: no

The resolved value replaces `auto` in the run's config, so config.yaml records what ran. A resume keeps the value
its run chose (read from the run's config.yaml), whatever this machine would choose: the saved optimizer state and
the rest of the schedule belong to that precision, and the resume stays bit-exact.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from translate import config as config_lib
from translate.inference.translator import cpu_has_native

log = logging.getLogger(__name__)
AUTO = "auto"


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware (see the module docstring for the rule)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(cpu_has_native("bf16"))  # a torch without the probe: no
    return False


def resolve_auto_precision(cfg, device: torch.device, saved_config: Path | None = None) -> None:
    """Replace train.mixed_precision=auto in `cfg` by bf16 or no, and log the choice and its reason; with
    `saved_config` (a resume), by the value that run chose. Any other value is left as it is."""
    if cfg.train.mixed_precision != AUTO:
        return
    if saved_config is not None:
        cfg.train.mixed_precision = config_lib.load(saved_config).train.mixed_precision
        log.info("train.mixed_precision=auto: %s, as the run being resumed chose", cfg.train.mixed_precision)
    elif native_bf16(device):
        cfg.train.mixed_precision = "bf16"
        log.info("train.mixed_precision=auto: bf16, as this %s computes bf16 natively", device.type.upper())
    else:
        cfg.train.mixed_precision = "no"
        log.info("train.mixed_precision=auto: fp32, as this %s has no native bf16 (it would be emulated, slower)",
                 device.type.upper())
