"""pix2pix with colour hints: the hints reach G (and only G), a pretrained encoder starts as it was, and an export
computes what the trained G computes, with and without hints."""

import numpy as np
import pytest
import torch

from tests.helpers import HINTED, FakeAccelerator, tiny_model
from translate.backbones import build_generator
from translate.export import write_export
from translate.inference import Translator
from translate.inference.translator import to_uint8
from translate.models.common import Progress


def test_hints_change_gs_output_and_ds_input_stays_sketch_and_photo(tmp_path):
    _, model, batch = tiny_model("pix2pix", tmp_path, *HINTED, "model.dropout=false")
    assert batch["hints"].shape[1] == 4 and batch["hints"][:, 3].sum() > 0
    G = model.raw["G"].eval()
    with torch.no_grad():
        hinted = G(model.generator_input(batch))
        unhinted = G(torch.cat([batch["A"], torch.zeros_like(batch["hints"])], 1))
    assert not torch.allclose(hinted, unhinted)
    first_d = next(m for m in model.raw["D"].modules() if isinstance(m, torch.nn.Conv2d))
    assert first_d.in_channels == 6  # (sketch, photo), as without hints
    losses = model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert all(np.isfinite(v) for v in losses.values())


def test_a_pretrained_encoder_ignores_the_hint_planes_at_first_and_learns_from_them():
    net = build_generator("unet_lite1", 7, 3, ngf=8)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    planes = torch.rand(2, 4, 64, 64)
    rgb = net.normalize((x + 1) / 2)
    with torch.no_grad():
        with_planes = net.encoder(torch.cat([rgb, planes], 1))
        without = net.encoder(torch.cat([rgb, torch.zeros_like(planes)], 1))
    assert all(torch.equal(a, b) for a, b in zip(with_planes, without))
    net(torch.cat([x, planes], 1)).square().mean().backward()
    assert net.encoder.conv_stem.weight.grad[:, 3:].abs().sum() > 0


def test_the_export_reads_hint_maps_as_the_trained_g_reads_hint_planes(tmp_path):
    cfg, model, batch = tiny_model("pix2pix", tmp_path, *HINTED, "model.dropout=false",
                                   "model.norm=instance")
    export = write_export(tmp_path / "export", model.export_nets(), cfg)
    # the net's own output: hint propagation after it has its own tests (tests/inference/test_hint_propagation.py)
    translator = Translator.from_export(export, size="keep", propagate_hints=False)
    sketch = ((batch["A"][0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    hints = np.zeros((*sketch.shape[:2], 4), np.uint8)
    hints[4:12, 6:14] = (250, 20, 30, 255)
    planes = torch.zeros(1, 4, *sketch.shape[:2])
    planes[0, :3, 4:12, 6:14] = torch.tensor([250, 20, 30]).view(3, 1, 1) / 127.5 - 1
    planes[0, 3, 4:12, 6:14] = 1
    x = torch.from_numpy(sketch).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = model.raw["G"].eval()(torch.cat([x, planes], 1))
        bare = model.raw["G"](torch.cat([x, torch.zeros_like(planes)], 1))
    image = lambda y: to_uint8(y[0]).permute(1, 2, 0).numpy()  # noqa: E731
    assert np.abs(translator(sketch, hints=hints).astype(int) - image(expected)).max() <= 1
    assert np.abs(translator(sketch).astype(int) - image(bare)).max() <= 1


def test_every_decoder_level_reads_the_hints_pooled_to_its_stride_and_the_bottleneck_their_mean():
    net = build_generator("unet_lite1", 7, 3, ngf=8)
    planes = torch.zeros(1, 4, 64, 64)
    planes[0, :, 30:34, 30:34] = torch.tensor([1.0, -1.0, -1.0, 1.0]).view(4, 1, 1)
    net(torch.cat([torch.rand(1, 3, 64, 64) * 2 - 1, planes], 1)).square().mean().backward()
    channels = net.encoder.feature_info.channels()
    below = channels[-1] + 4  # the bottleneck and the global hint
    for up, skip in zip(net.decoder.ups[:4], reversed(channels[:-1])):
        first = up.block[0]  # its input: the upsampled level below, the encoder skip, then the 4 hint planes
        assert first.in_channels == below + skip + 4 and first.weight.grad[:, -4:].abs().sum() > 0
        below = first.out_channels
    global_hint = slice(channels[-1], channels[-1] + 4)
    assert net.decoder.ups[0].block[0].weight.grad[:, global_hint].abs().sum() > 0


def test_hints_need_eval_mode_inference_which_keeps_a_uniform_colour(tmp_path):
    """Train-mode inference normalises each image by its own statistics: a shift common to the whole image, as a
    global colour is, does not survive it."""
    with pytest.raises(ValueError, match="inference_mode=eval"):
        tiny_model("pix2pix", tmp_path, "model.colour_hints=true")
