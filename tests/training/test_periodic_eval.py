"""One inference path: what periodic evaluation scores is what `translate convert` writes, and load_generator's
output does not depend on the batch."""

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import write_images
from translate import config
from translate.convert import folder
from translate.export import load_generator, write_export
from translate.models import MODELS
from translate.training.periodic_eval import load_eval_images, translate_eval_set


@pytest.mark.parametrize("model", [
    ["model.name=pix2pix", "model.generator=unet_128"],  # BatchNorm in train mode, dropout on, as the paper runs it
    ["model.name=pix2pix", "model.generator=resnet_6blocks"],
    ["model.name=cyclegan", "model.generator=resnet_6blocks"],  # InstanceNorm, eval mode
])
def test_periodic_eval_outputs_equal_translate_convert_outputs(model, tmp_path):
    root = tmp_path / "data"
    if "model.name=pix2pix" in model:
        write_images(root / "val", 5, (64, 32), seed=3)
    else:
        write_images(root / "valA", 5, (32, 32), seed=3)
        write_images(root / "valB", 5, (32, 32), seed=4)
    cfg = config.load(None, [*model, "model.ngf=4", "model.ndf=4", f"data.root={root}", "data.load_size=32",
                             "data.crop_size=32", "eval.batch_size=2"])
    entry = MODELS[cfg.model.name]
    torch.manual_seed(0)
    trained = entry.build(cfg.model)
    eval_set = load_eval_images(cfg, entry)
    scored = translate_eval_set(trained, cfg, eval_set, "cpu")

    export = write_export(tmp_path / "export", trained.export_nets(), cfg)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i, image in enumerate(eval_set.inputs):
        Image.fromarray(image).save(inputs / f"{i:03d}.png")
    parser = argparse.ArgumentParser()
    folder.add_arguments(parser)
    net = "G" if "model.name=pix2pix" in model else "G_AB"
    args = parser.parse_args([str(export), str(inputs), str(tmp_path / "out"), "--net", net, "--batch-size", "2",
                              "--workers", "0", "--compile", "off"])
    assert folder.run(args) == 0
    converted = np.stack([np.asarray(Image.open(tmp_path / "out" / f"{i:03d}.png")) for i in range(5)])
    assert scored.dtype == np.uint8 and scored.shape == converted.shape == (5, 32, 32, 3)
    assert np.array_equal(scored, converted)


def test_load_generator_output_does_not_depend_on_the_batch(tmp_path):
    cfg = config.load(None, ["model.name=pix2pix", "model.generator=unet_128", "model.ngf=4", "model.ndf=4",
                             "model.dropout=false"])
    export = write_export(tmp_path / "export", MODELS["pix2pix"].build(cfg.model).export_nets(), cfg)
    generator = load_generator(export)  # train mode (the paper's inference), BatchNorm made per-image
    x = torch.rand(3, 3, 128, 128) * 2 - 1
    together = generator(x)
    alone = torch.cat([generator(image[None]) for image in x])
    assert torch.allclose(together, alone, atol=1e-5)
    assert not any(p.requires_grad for p in generator.parameters())
