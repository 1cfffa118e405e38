import math

import pytest
import torch
from torch import nn

from translate.backbones import (
    GENERATORS,
    PretrainedUnet,
    ResnetGenerator,
    UnetGenerator,
    UnetSkipConnectionBlock,
    build_generator,
)

from .reference_arch import RefResnetGenerator, RefUnetGenerator, ref_norm_layer


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def input_side(net):
    """Smallest multiple of the net's size_multiple that is at least 16 pixels."""
    m = net.size_multiple
    return m * math.ceil(16 / m)


@pytest.mark.parametrize(
    "name, norm, expected",
    [
        ("resnet_9blocks", "instance", 11_378_179),
        ("resnet_6blocks", "instance", 7_837_699),
        ("unet_256", "batch", 54_413_955),
        ("unet_128", "batch", 41_828_995),
    ],
)
def test_parameter_counts(name, norm, expected):
    with torch.device("meta"):  # shapes only, no allocation or init
        net = GENERATORS[name](3, 3, norm=norm)
    assert n_params(net) == expected


def test_default_norms_and_size_multiples():
    assert isinstance(ResnetGenerator(3, 3, ngf=4).model[2], nn.InstanceNorm2d)
    assert isinstance(UnetGenerator(3, 3, ngf=4).model.model[1].model[2], nn.BatchNorm2d)
    sizes = {name: ctor(3, 3, ngf=4).size_multiple for name, ctor in GENERATORS.items()}
    assert sizes == {"resnet_9blocks": 4, "resnet_6blocks": 4, "unet_256": 256, "unet_128": 128, "unet_lite1": 32,
                     "unet_lite2": 32}


# --- identity key mapping: reference state dicts load unchanged -------------------------------


def _randomise_batchnorm(net):
    """Give BatchNorm layers non-trivial affine parameters and running stats."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)


def _reference(name, norm, dropout, padding, ngf=8):
    norm_layer = ref_norm_layer(norm)
    if name.startswith("resnet"):
        n_blocks = {"resnet_9blocks": 9, "resnet_6blocks": 6}[name]
        return RefResnetGenerator(3, 2, ngf, norm_layer, dropout, n_blocks, padding)
    num_downs = {"unet_256": 8, "unet_128": 7}[name]
    return RefUnetGenerator(3, 2, num_downs, ngf, norm_layer, dropout)


CASES = [
    (name, norm, dropout, padding)
    for name in ("resnet_9blocks", "resnet_6blocks")
    for norm in ("batch", "instance")
    for dropout in (False, True)
    for padding in ("reflect", "replicate", "zero")
    if padding == "reflect" or (name == "resnet_6blocks" and not dropout)
] + [(name, norm, dropout, None) for name in ("unet_256", "unet_128") for norm in ("batch", "instance")
   for dropout in (False, True)]


@pytest.mark.parametrize("name, norm, dropout, padding", CASES)
def test_reference_state_dict_loads_with_identical_keys_and_outputs(name, norm, dropout, padding):
    torch.manual_seed(0)
    ref = _reference(name, norm, dropout, padding)
    _randomise_batchnorm(ref)
    kw = {} if padding is None else {"padding": padding}
    ours = GENERATORS[name](3, 2, ngf=8, norm=norm, dropout=dropout, **kw)

    ref_sd = ref.state_dict()
    assert list(ours.state_dict().keys()) == list(ref_sd.keys())
    ours.load_state_dict(ref_sd, strict=True)

    side = input_side(ours)
    x = torch.randn(2, 3, side, side)
    ref.eval(), ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x.clone()), atol=1e-6, rtol=0)
    if not dropout:  # training mode (batch statistics) must agree too
        ref.train(), ours.train()
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x.clone()), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["resnet_6blocks", "unet_128"])
def test_norm_none_deviation_only_adds_biases(name):
    """Documented deviation: with norm "none" the reference drops conv biases, we keep them.
    A reference "none" checkpoint loads with strict=False, missing only those biases."""
    ref = _reference(name, "none", False, "reflect")
    ours = GENERATORS[name](3, 2, ngf=8, norm="none")
    result = ours.load_state_dict(ref.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(k.endswith(".bias") for k in result.missing_keys)


def test_unet_skip_carries_leaky_relu_of_input_without_mutating_it():
    inner = UnetSkipConnectionBlock(8, 8, innermost=True, norm="instance")
    block = UnetSkipConnectionBlock(4, 8, submodule=inner, norm="instance").eval()
    x = torch.randn(2, 4, 8, 8)
    x_before = x.clone()
    y = block(x)
    assert y.shape == (2, 8, 8, 8)
    torch.testing.assert_close(y[:, :4], nn.functional.leaky_relu(x, 0.2))
    torch.testing.assert_close(x, x_before)


def test_no_inplace_activations():
    for ctor in GENERATORS.values():
        for m in ctor(3, 3, ngf=4, dropout=True).modules():
            assert not getattr(m, "inplace", False), m


# --- every registered generator at tiny width ----------------------------------------------------


@pytest.fixture(params=sorted(GENERATORS))
def tiny(request):
    torch.manual_seed(0)
    net = build_generator(request.param, in_channels=3, out_channels=2, ngf=8)
    side = input_side(net)
    return net, torch.randn(2, 3, side, side)


def test_output_shape_and_range(tiny):
    net, x = tiny
    y = net(x)
    assert y.shape == (2, 2, *x.shape[2:])
    assert y.abs().max() <= 1.0  # tanh output


def test_gradient_reaches_every_parameter(tiny):
    net, x = tiny
    net.train()
    net(x).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        if p.ndim > 1:
            assert p.grad.abs().sum() > 0, name


def test_float64(tiny):
    net, x = tiny
    y = net.double()(x.double())
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


def test_channels_last(tiny):
    net, x = tiny
    net.eval()
    with torch.no_grad():
        y = net(x)
        y_cl = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_norm_none(name):
    net = build_generator(name, ngf=4, norm="none")
    trained_here = net.decoder if isinstance(net, PretrainedUnet) else net  # a pretrained encoder keeps its layout
    convs = [m for m in trained_here.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(m.bias is not None for m in convs)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in net.modules())
    side = input_side(net)
    assert net(torch.randn(1, 3, side, side)).shape == (1, 3, side, side)


def test_build_errors():
    with pytest.raises(ValueError, match="resnet_9blocks.*unet_256"):
        build_generator("resnet_99blocks")
    with pytest.raises(ValueError, match="batch, instance, none"):
        build_generator("unet_128", ngf=4, norm="group")
    with pytest.raises(ValueError, match="normal"):
        build_generator("unet_128", ngf=4, init_type="uniform")
    with pytest.raises(ValueError, match="reflect"):
        build_generator("resnet_6blocks", ngf=4, padding="circular")
