"""The model contract and the registry: name -> (its Config dataclass with the paper's defaults, build, dataset).

Adding a model is one file in this folder plus one line in MODELS. A model is a plain object that THE loop
(translate/training/loop.py) drives; `Model` below is everything the loop relies on, written down once.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Protocol

import torch
from torch import nn

from translate.models import classifier, crossmatch, cut, cyclegan, dann, dtn, pix2pix
from translate.models.common import Progress


class Model(Protocol):
    """What the loop uses of a model."""

    nets: dict[str, nn.Module]  # trainable networks by name; the loop replaces each with its Accelerate-prepared one
    raw: dict[str, nn.Module]  # the same modules unwrapped: checkpoints, EMA, frozen forwards, export
    optimizers: dict[str, torch.optim.Optimizer]  # prepared by the loop; one LambdaLR schedule each
    extra_state: dict  # name -> object with state_dict()/load_state_dict() to checkpoint (pools, EMA)

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        """One optimisation step on `batch` (already on the device); returns the losses to log."""

    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        """Named image batches in [-1, 1] for the sample grid (empty: nothing to show)."""

    def export_nets(self) -> dict[str, tuple[nn.Module, dict]]:
        """name -> (module, spec) for translate.export.write_export; EMA weights where enabled (common.averaged)."""

    # Optional: lr_factor(max_steps) -> Callable[[int], float] | None, the model's own lr schedule (DANN).


class ModelEntry(NamedTuple):
    config: type
    build: Callable[..., Model]
    dataset: Callable  # (data_cfg, model_cfg, train) -> Dataset


MODELS: dict[str, ModelEntry] = {
    "pix2pix": ModelEntry(pix2pix.Pix2PixConfig, pix2pix.Pix2Pix, pix2pix.make_dataset),
    "cyclegan": ModelEntry(cyclegan.CycleGANConfig, cyclegan.CycleGAN, cyclegan.make_dataset),
    "cut": ModelEntry(cut.CUTConfig, cut.CUT, cyclegan.make_dataset),  # the same unpaired folders as CycleGAN
    "classifier": ModelEntry(classifier.ClassifierConfig, classifier.Classifier, classifier.make_dataset),
    "dann": ModelEntry(dann.DANNConfig, dann.DANN, dann.make_dataset),
    "dtn": ModelEntry(dtn.DTNConfig, dtn.DTN, dtn.make_dataset),
    "crossmatch": ModelEntry(crossmatch.CrossMatchConfig, crossmatch.CrossMatch, crossmatch.make_dataset),
}
