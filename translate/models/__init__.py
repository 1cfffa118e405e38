"""Model registry: name -> (its Config dataclass with the paper's defaults, the model class, its dataset)."""

from typing import Callable, NamedTuple

from translate.models import cyclegan, pix2pix


class ModelEntry(NamedTuple):
    config: type
    build: Callable
    dataset: Callable  # (data_cfg, model_cfg, train) -> Dataset


MODELS = {
    "pix2pix": ModelEntry(pix2pix.Pix2PixConfig, pix2pix.Pix2Pix, pix2pix.make_dataset),
    "cyclegan": ModelEntry(cyclegan.CycleGANConfig, cyclegan.CycleGAN, cyclegan.make_dataset),
}
