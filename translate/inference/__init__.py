"""Running a generator on whole images: padding to its size multiple, tiling, batching, autocast, torch.compile."""

from translate.inference.batching import group_by_size
from translate.inference.model import Model, ModelError, load_model
from translate.inference.padding import crop, pad_to_multiple
from translate.inference.tiling import translate_tiled
from translate.inference.translator import MODES, PRECISIONS, Translator, prepare_for_inference

__all__ = [
    "MODES",
    "PRECISIONS",
    "Model",
    "ModelError",
    "Translator",
    "crop",
    "group_by_size",
    "load_model",
    "pad_to_multiple",
    "prepare_for_inference",
    "translate_tiled",
]
