"""Model registry: name -> (its Config dataclass with the paper's defaults, the model class, its dataset)."""

from typing import Callable, NamedTuple

from translate.models import classifier, cyclegan, dann, dtn, pix2pix


class ModelEntry(NamedTuple):
    config: type
    build: Callable
    dataset: Callable  # (data_cfg, model_cfg, train) -> Dataset


MODELS = {
    "pix2pix": ModelEntry(pix2pix.Pix2PixConfig, pix2pix.Pix2Pix, pix2pix.make_dataset),
    "cyclegan": ModelEntry(cyclegan.CycleGANConfig, cyclegan.CycleGAN, cyclegan.make_dataset),
    "classifier": ModelEntry(classifier.ClassifierConfig, classifier.Classifier, classifier.make_dataset),
    "dann": ModelEntry(dann.DANNConfig, dann.DANN, dann.make_dataset),
    "dtn": ModelEntry(dtn.DTNConfig, dtn.DTN, dtn.make_dataset),
}
