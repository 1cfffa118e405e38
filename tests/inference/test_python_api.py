"""Translator.from_export: PIL images or arrays in, the same kind out, at the training scale unless told to keep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate import config
from translate.export import write_export
from translate.inference import Translator
from translate.inference.model import load_model
from translate.inference.scale import TrainingScale, training_scale
from translate.models import MODELS


def tiny_export(path: Path, *overrides: str) -> Path:
    """An untrained CycleGAN export trained (nominally) at load_size 36: G_AB reads RGB, G_BA reads gray."""
    cfg = config.load(None, ["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
                             "model.channels_b=1", "model.lambda_identity=0", "data.load_size=36",
                             "data.crop_size=32", *overrides])
    torch.manual_seed(0)
    return write_export(path, MODELS["cyclegan"].build(cfg.model).export_nets(), cfg)


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def engine(export: Path, net: str) -> Translator:
    """The Translator convert builds for this export: arrays only, no resizing."""
    model = load_model(export, net)
    return Translator(model.net, model.size_multiple, "cpu")


def test_a_pil_image_comes_back_as_a_pil_image_at_the_training_scale(tmp_path):
    export = tiny_export(tmp_path / "export")
    out = Translator.from_export(export, "G_AB")(Image.fromarray(photo(72, 48)))
    assert isinstance(out, Image.Image) and out.mode == "L" and out.size == (54, 36)  # shorter side: load_size
    resized = np.asarray(Image.fromarray(photo(72, 48)).resize((54, 36), Image.Resampling.BICUBIC))
    assert np.array_equal(np.asarray(out), engine(export, "G_AB")([resized])[0][:, :, 0])


def test_keep_runs_at_the_image_size_and_computes_what_convert_computes(tmp_path):
    export = tiny_export(tmp_path / "export")
    image = photo(40, 28)
    out = Translator.from_export(export, "G_AB", size="keep")(image)
    assert isinstance(out, np.ndarray) and out.shape == (28, 40, 1)
    assert np.array_equal(out, engine(export, "G_AB")([image])[0])


def test_a_list_of_mixed_sizes_comes_back_in_order(tmp_path):
    export = tiny_export(tmp_path / "export")
    translator = Translator.from_export(export, "G_AB", size="keep", batch_size=2)
    images = [photo(40, 28, 0), photo(32, 32, 1), photo(40, 28, 2)]
    outputs = translator(images)
    assert [o.shape[:2] for o in outputs] == [(28, 40), (32, 32), (28, 40)]
    for image, output in zip(images, outputs):
        assert np.array_equal(output, translator(image))


def test_inputs_are_converted_to_the_net_channels_or_refused_naming_them(tmp_path):
    export = tiny_export(tmp_path / "export")
    gray_reader = Translator.from_export(export, "G_BA", size="keep")
    out = gray_reader(Image.fromarray(photo(32, 32)))  # RGB photo -> the net's gray input
    assert out.mode == "RGB" and out.size == (32, 32)
    with pytest.raises(ValueError, match="reads 1-channel images; the array has 3 channels"):
        gray_reader(photo(32, 32))
    with pytest.raises(ValueError, match="size must be 'train' or 'keep'"):
        Translator.from_export(export, "G_AB", size="256")


def test_the_training_scale_follows_the_preprocess_mode(tmp_path):
    describe = {"preprocess": {"load_size": 143}, "training_config": {"data": {"preprocess": "resize_and_crop"}}}
    assert training_scale(describe) == TrainingScale(143, "shorter")
    describe["training_config"]["data"]["preprocess"] = "scale_width_and_crop"
    assert training_scale(describe) == TrainingScale(143, "width")
    assert TrainingScale(143, "width").size(286, 572) == (143, 286)
    describe["training_config"]["data"]["preprocess"] = "crop"
    assert training_scale(describe) is None
