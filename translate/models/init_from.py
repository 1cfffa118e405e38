"""model.init_from: start a GAN's generators from trained weights (fine-tuning) instead of random ones.

The source is an export folder (of this toolkit, or made by `translate import` / `translate pretrained`) or a
reference `*_net_G*.pth` file. Generators are matched by name (G, G_AB, G_BA); a source holding a single generator
starts the model's first one (a published horse2zebra G starts CycleGAN's G_AB), and the others keep their random
initialisation. The architecture must be the same: a mismatch is one line saying what does not fit.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from translate.export import (
    read_checkpoint,
    read_export_config,
    read_weights,
    reference_state_dict,
    state_dict_problems,
)

log = logging.getLogger(__name__)


def load_initial_weights(source: str, generators: dict[str, nn.Module]) -> None:
    """Copy the source's generator weights into `generators` (export name -> module), in place, before the model
    makes its optimizers' state or EMA copies."""
    if not source:
        return
    found = _source_generators(Path(source), generators)
    first = next(iter(generators))
    loaded = []
    for name, module in generators.items():
        weights = found.get(name) or (next(iter(found.values())) if len(found) == 1 and name == first else None)
        if weights is None:
            continue
        problems = state_dict_problems(module.state_dict(), weights)
        if problems:
            raise ValueError(f"model.init_from={source}: its weights do not fit generator {name}: "
                             f"{'; '.join(problems)}; use the source's model.generator, ngf, norm and channels")
        module.load_state_dict(weights)
        loaded.append(name)
    if not loaded:
        raise ValueError(f"model.init_from={source}: none of its generators ({', '.join(found)}) matches this "
                         f"model's ({', '.join(generators)})")
    log.info("model.init_from: %s starts from %s%s", ", ".join(loaded), source,
             "" if len(loaded) == len(generators) else
             f" ({', '.join(n for n in generators if n not in loaded)} from random weights)")


def _source_generators(path: Path, generators: dict[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    if path.is_dir():
        description = read_export_config(path)
        return {name: read_weights(path / f"{name}.safetensors")
                for name, spec in description["nets"].items() if spec["role"] == "generator"}
    if not path.is_file():
        raise FileNotFoundError(f"model.init_from={path} does not exist (an export folder or a .pth file)")
    try:
        state = read_checkpoint(path)
    except ValueError as error:
        raise ValueError(f"model.init_from: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"model.init_from={path} does not hold a generator state dict (name -> tensor)")
    return {"G": reference_state_dict(state, next(iter(generators.values())))}
