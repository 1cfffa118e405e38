"""Running a generator on whole images: padding to its size multiple, tiling, batching, autocast, torch.compile.

translator.py is the one inference path (convert, periodic evaluation, load_generator, the studio); model.py loads
what `translate convert` accepts as MODEL; portable.py writes ONNX / TorchScript.
"""

from translate.inference.batching import group_by_size
from translate.inference.padding import crop, pad_to_multiple
from translate.inference.tiling import translate_tiled
from translate.inference.translator import (
    MODES,
    PRECISIONS,
    Translator,
    emulated_precision,
    prepare_for_inference,
)

__all__ = [
    "MODES",
    "PRECISIONS",
    "Translator",
    "crop",
    "emulated_precision",
    "group_by_size",
    "pad_to_multiple",
    "prepare_for_inference",
    "translate_tiled",
]
