"""Padding keeps sizes, tiles blend without seams in bounded memory, batching and train mode do not change results,
compile falls back to eager."""

import numpy as np
import pytest
import torch
from torch import nn

from translate.backbones import build_generator
from translate.inference import (
    Translator,
    crop,
    emulated_precision,
    group_by_size,
    pad_to_multiple,
    prepare_for_inference,
)
from translate.inference import compiled as compiled_module
from translate.inference.tiling import ramp_weights, tile_starts


def small_conv_net() -> nn.Module:
    """Fully convolutional with a 7 px receptive field: tiles overlapping by more than that are exact inside."""
    torch.manual_seed(0)
    layers = []
    for c_in, c_out in ((3, 8), (8, 8), (8, 3)):
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3), nn.ReLU()]
    layers[-1] = nn.Tanh()
    return nn.Sequential(*layers).eval()


class ShapeRecorder(nn.Module):
    """Wraps a net and keeps the shape of everything fed to it."""

    def __init__(self, net):
        super().__init__()
        self.net, self.shapes = net, []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.net(x)


@pytest.mark.parametrize("height, width, multiple", [(257, 513, 4), (33, 47, 128), (3, 5, 256), (1, 7, 4), (64, 64, 4)])
def test_pad_to_multiple_then_crop_restores_the_image(height, width, multiple):
    x = torch.rand(2, 3, height, width)
    padded, pads = pad_to_multiple(x, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert padded.shape[-2] - height < multiple and padded.shape[-1] - width < multiple
    assert torch.equal(crop(padded, pads), x)


def test_padding_is_a_reflection():
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    padded, pads = pad_to_multiple(x[..., :3], 4)  # 4x3 -> 4x4: one column added on the right
    assert pads == (0, 1, 0, 0)
    assert torch.equal(padded[0, 0, 0], torch.tensor([0.0, 1.0, 2.0, 1.0]))


@pytest.mark.parametrize("arch, size", [("resnet_6blocks", (257, 513)), ("unet_128", (45, 70))])
def test_translator_keeps_odd_sizes(arch, size):
    net = prepare_for_inference(build_generator(arch, 3, 3, ngf=2, norm="instance"), "eval")
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    (out,) = Translator(net, net.size_multiple)([image])
    assert out.shape == (*size, 3) and out.dtype == np.uint8


def test_translator_matches_the_net_on_multiples():
    net = prepare_for_inference(build_generator("resnet_6blocks", 3, 3, ngf=4), "eval")
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    out = Translator(net, 4)(list(images))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    with torch.no_grad():
        expected = ((net(x) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    assert np.abs(np.stack(out) - expected).max() <= 0.5 + 1e-3  # rounding only


def test_tiled_equals_untiled_for_a_fully_convolutional_net():
    net = small_conv_net()
    image = np.random.default_rng(0).integers(0, 256, (150, 210, 3), dtype=np.uint8)
    (full,) = Translator(net, 1)([image])
    (tiled,) = Translator(net, 1, tile=64, overlap=16)([image])
    diff = np.abs(full.astype(int) - tiled.astype(int))
    assert full.std() > 4  # the net does something
    assert diff.max() <= 1 and (diff > 0).mean() < 0.02  # rounding differences only, no seams


def test_tiling_memory_is_bounded_by_the_tile():
    """The net never sees more than one tile (the output accumulator is the image's own size)."""
    largest = []
    for height, width in ((100, 150), (300, 450), (601, 333)):
        recorder = ShapeRecorder(small_conv_net())
        image = np.zeros((height, width, 3), np.uint8)
        (out,) = Translator(recorder, 4, tile=64, overlap=8)([image])
        assert out.shape == (height, width, 3)
        largest.append(max(recorder.shapes, key=lambda s: s[0] * s[2] * s[3]))
    assert largest == [(1, 3, 64, 64)] * 3


def test_tiles_cover_everything_and_weights_are_positive():
    for length, tile, overlap in ((150, 64, 16), (64, 64, 8), (65, 64, 32), (10, 64, 8)):
        starts = tile_starts(length, min(tile, length), overlap)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s:s + min(tile, length)] = True
        assert covered.all() and starts[-1] + min(tile, length) == length
    w = ramp_weights(64, 16, rise=True, fall=True)
    assert (w > 0).all() and w[16:48].eq(1).all()


def test_group_by_size_emits_every_item_once_in_uniform_batches():
    sizes = [(4, 4), (8, 8), (4, 4), (2, 2), (4, 4), (8, 8), (4, 4), (4, 4), (16, 16)] * 3
    items = list(enumerate(sizes))
    batches = list(group_by_size(items, lambda item: item[1], batch_size=3, max_pending=4))
    assert sorted(i for batch in batches for i, _ in batch) == list(range(len(items)))
    assert all(len({s for _, s in batch}) == 1 and len(batch) <= 3 for batch in batches)


def test_train_mode_results_do_not_depend_on_the_batch():
    """pix2pix runs in train mode (batch statistics): each image is normalised alone, as the reference's batch 1."""
    torch.manual_seed(0)
    net = build_generator("unet_128", 3, 3, ngf=4, norm="batch", dropout=False)
    reference = build_generator("unet_128", 3, 3, ngf=4, norm="batch", dropout=False)
    reference.load_state_dict(net.state_dict())
    reference.train()
    translator = Translator(prepare_for_inference(net, "train"), 128, batch_size=3)
    images = list(np.random.default_rng(2).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8))
    batched = translator(images)
    for image, out in zip(images, batched):
        assert np.array_equal(translator([image])[0], out)
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 * 2 - 1
        with torch.no_grad():
            expected = ((reference(x)[0] + 1) * 127.5).permute(1, 2, 0).numpy()
        assert np.abs(out - expected).max() <= 0.5 + 1e-3


def test_bf16_autocast_runs():
    net = prepare_for_inference(build_generator("resnet_6blocks", 3, 3, ngf=4), "eval")
    (out,) = Translator(net, 4, precision="bf16")([np.zeros((20, 24, 3), np.uint8)])
    assert out.shape == (20, 24, 3) and out.dtype == np.uint8


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken(*args, **kwargs):
        def fail(x):
            raise RuntimeError("no C++ compiler")
        return fail

    monkeypatch.setattr(compiled_module.torch, "compile", broken)
    net = small_conv_net()
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    (eager,) = Translator(net, 1)([image])
    (fallback,) = Translator(net, 1, compile="on")([image])
    assert np.array_equal(eager, fallback)


def test_auto_compiles_only_recurring_shapes_and_only_on_gpus(monkeypatch):
    compiled_calls = []

    def fake_compile(net, **kwargs):
        def run(x):
            compiled_calls.append(tuple(x.shape))
            return net(x)
        return run

    monkeypatch.setattr(compiled_module.torch, "compile", fake_compile)
    shapes = [(1, 3, 7, 7)] * 4 + [(1, 3, 8, 8)] * 4 + [(1, 3, 9, 9)] * 4
    on_cpu = compiled_module.ShapeCompiled(small_conv_net(), "auto", after=3, max_shapes=1, min_pixels=64)
    for shape in shapes:
        on_cpu(torch.zeros(shape))
    assert compiled_calls == []  # "auto" leaves CPUs eager, where compiling did not pay
    monkeypatch.setattr(compiled_module, "AUTO_DEVICES", ("cuda", "cpu"))  # the shape rules, as on a GPU
    runner = compiled_module.ShapeCompiled(small_conv_net(), "auto", after=3, max_shapes=1, min_pixels=64)
    for shape in shapes:
        runner(torch.zeros(shape))
    # 7x7 is under min_pixels; 8x8 from its 3rd call; the cap of one shape keeps 9x9 eager
    assert compiled_calls == [(1, 3, 8, 8)] * 2
    forced = compiled_module.ShapeCompiled(small_conv_net(), "on", min_pixels=64)
    forced(torch.zeros(1, 3, 7, 7))
    assert compiled_calls[-1] == (1, 3, 7, 7)  # "on" compiles whatever the size


@pytest.mark.parametrize("height, width", [(1, 1), (1, 300), (3, 2), (9, 1)])
def test_images_smaller_than_the_network_needs_are_padded_and_cropped_back(height, width):
    from translate.backbones import build_generator

    net = prepare_for_inference(build_generator("resnet_6blocks", 3, 3, ngf=4), "eval")
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    (out,) = Translator(net, net.size_multiple)([image])
    assert out.shape == (height, width, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("native", [True, False])
def test_half_precision_without_cpu_instructions_is_named_slow(native, monkeypatch, caplog):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_fp16_supported", lambda: native)
    for precision in ("bf16", "fp16"):
        warning = emulated_precision(precision, "cpu")
        assert (warning is None) == native
        assert native or warning.startswith(f"{precision} on this CPU is emulated")
        assert native or ("AVX512-BF16" in warning) == (precision == "bf16")  # each names its own instructions
    assert emulated_precision("fp32", "cpu") is None
    assert emulated_precision("bf16", "cuda") is None  # a GPU's own business: never probed on the CPU's flags
    caplog.set_level("WARNING")
    Translator(small_conv_net(), 1, "cpu", precision="bf16")
    Translator(small_conv_net(), 1, "cpu", precision="fp32")
    assert [r.getMessage() for r in caplog.records] == ([] if native else [emulated_precision("bf16", "cpu")])
