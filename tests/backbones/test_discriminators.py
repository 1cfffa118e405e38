import pytest
import torch
from torch import nn

from translate.backbones import (
    DISCRIMINATORS,
    ClassDiscriminator,
    DomainClassifier,
    MinibatchStd,
    NLayerDiscriminator,
    PixelDiscriminator,
    ProjectedDiscriminator,
    build_discriminator,
)
from translate.losses import discriminator_loss

from .reference_arch import RefNLayerDiscriminator, RefPixelDiscriminator, ref_norm_layer


def n_params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "name, in_channels, norm, expected",
    [
        ("patch", 3, "instance", 2_764_737),
        ("patch", 6, "batch", 2_768_705),
        ("pixel", 3, "instance", 8_705),
    ],
)
def test_parameter_counts(name, in_channels, norm, expected):
    with torch.device("meta"):
        net = DISCRIMINATORS[name](in_channels, norm=norm)
    assert n_params(net) == expected


# --- identity key mapping: reference state dicts load unchanged -------------------------------


def _randomise_batchnorm(net):
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.5, 2.0)


def _check_same(ref, ours, x):
    _randomise_batchnorm(ref)
    ref_sd = ref.state_dict()
    assert list(ours.state_dict().keys()) == list(ref_sd.keys())
    ours.load_state_dict(ref_sd, strict=True)
    for train in (False, True):
        ref.train(train), ours.train(train)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x.clone()), atol=1e-6, rtol=0)


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("n_layers", [1, 3, 5])  # 5 exercises the 8x width cap
def test_patch_matches_reference(norm, n_layers):
    torch.manual_seed(0)
    ref = RefNLayerDiscriminator(6, ndf=8, n_layers=n_layers, norm_layer=ref_norm_layer(norm))
    ours = NLayerDiscriminator(6, ndf=8, n_layers=n_layers, norm=norm)
    _check_same(ref, ours, torch.randn(2, 6, 128, 128))


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_pixel_matches_reference(norm):
    torch.manual_seed(0)
    ref = RefPixelDiscriminator(3, ndf=8, norm_layer=ref_norm_layer(norm))
    ours = PixelDiscriminator(3, ndf=8, norm=norm)
    _check_same(ref, ours, torch.randn(2, 3, 16, 16))


def test_patch_receptive_field_is_70():
    """Gradient of one interior output logit w.r.t. the input is nonzero on a 70x70 square."""
    torch.manual_seed(0)
    net = NLayerDiscriminator(1, ndf=4, n_layers=3, norm="batch").double().eval()
    x = torch.randn(1, 1, 128, 128, dtype=torch.float64, requires_grad=True)
    y = net(x)
    assert y.shape == (1, 1, 14, 14)
    y[0, 0, 7, 7].backward()
    rows, cols = (x.grad[0, 0] != 0).nonzero(as_tuple=True)
    height = rows.max() - rows.min() + 1
    width = cols.max() - cols.min() + 1
    assert (height.item(), width.item()) == (70, 70)
    assert rows.min() > 0 and rows.max() < 127  # interior: not clipped by the image border


# --- every registered discriminator at tiny width ------------------------------------------------

# name -> (constructor kwargs, input shape, output shape)
TINY = {
    "patch": (dict(ndf=8), (2, 3, 32, 32), (2, 1, 2, 2)),
    "pixel": (dict(ndf=8), (2, 3, 8, 8), (2, 1, 8, 8)),
    "class_d": (dict(ndf=8, num_classes=3), (2, 3, 32, 32), (2, 3)),
    "domain": (dict(hidden=16), (2, 12), (2, 1)),
    "projected": (dict(ndf=8), (2, 3, 32, 32), (2, 64)),  # resized to 224 px: four heads of 4x4 logits
}


def test_every_registered_name_has_a_tiny_case():
    assert set(TINY) == set(DISCRIMINATORS)


@pytest.fixture(params=sorted(DISCRIMINATORS))
def tiny(request):
    torch.manual_seed(0)
    kw, in_shape, out_shape = TINY[request.param]
    net = build_discriminator(request.param, in_shape[1], **kw)
    return net, torch.randn(in_shape), out_shape


def test_output_shape(tiny):
    net, x, out_shape = tiny
    assert net(x).shape == out_shape


def test_gradient_reaches_every_parameter(tiny):
    net, x, _ = tiny
    net.train()
    net(x).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        if p.ndim > 1:
            assert p.grad.abs().sum() > 0, name


def test_float64(tiny):
    net, x, _ = tiny
    y = net.double()(x.double())
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


def test_channels_last(tiny):
    net, x, _ = tiny
    if x.ndim != 4:
        pytest.skip("feature-vector input")
    net.eval()
    with torch.no_grad():
        y = net(x)
        y_cl = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["patch", "pixel", "class_d"])
def test_norm_none(name):
    kw, in_shape, out_shape = TINY[name]
    net = build_discriminator(name, in_shape[1], norm="none", **kw)
    assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in net.modules())
    assert net(torch.randn(in_shape)).shape == out_shape


def test_build_errors():
    with pytest.raises(ValueError, match="patch, pixel, class_d, domain"):
        build_discriminator("basic", 3)
    with pytest.raises(ValueError, match="batch, instance, none"):
        build_discriminator("patch", 3, ndf=4, norm="layer")
    with pytest.raises(ValueError, match="orthogonal"):
        build_discriminator("pixel", 3, init_type="he")


# --- optional extras ----------------------------------------------------------------------------


def test_patch_spectral_norm():
    torch.manual_seed(0)
    net = build_discriminator("patch", 3, ndf=8, spectral_norm=True, init_gain=0.02)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        original = conv.parametrizations.weight.original
        assert abs(original.std().item() - 0.02) < 0.004  # init hit the raw weight
    assert "model.0.parametrizations.weight.original" in net.state_dict()
    # After init the power-iteration vectors were refreshed, so even in eval mode (no further
    # iterations) the effective weight has spectral norm close to 1.
    net.eval()
    for conv in convs:
        w = conv.weight.detach().flatten(1)
        assert 0.9 < torch.linalg.matrix_norm(w, ord=2).item() < 1.3
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 1, 2, 2)


def test_patch_minibatch_std():
    net = build_discriminator("patch", 3, ndf=8, minibatch_std=True)
    assert isinstance(net.model[-2], MinibatchStd)
    assert net.model[-1].in_channels == 8 * 8 + 1
    for batch in (1, 3, 4):
        y = net(torch.randn(batch, 3, 32, 32))
        assert y.shape == (batch, 1, 2, 2) and torch.isfinite(y).all()


def test_class_discriminator_layout():
    net = ClassDiscriminator(1, num_classes=5, ndf=4, n_layers=4)
    assert isinstance(net.model[-1], nn.Linear) and net.model[-1].out_features == 5
    assert net.model[-1].in_features == 4 * 8
    assert net(torch.randn(3, 1, 16, 16)).shape == (3, 5)


def test_domain_classifier_reverses_gradient():
    torch.manual_seed(0)
    net = DomainClassifier(6, hidden=8, layers=2).eval()  # eval: dropout off
    assert [type(m) for m in net.net] == [nn.Linear, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]
    x = torch.randn(4, 6, requires_grad=True)
    net.net(x).sum().backward()
    plain = x.grad.clone()
    x.grad = None
    net.grl.lambd = 0.25
    net(x).sum().backward()
    torch.testing.assert_close(x.grad, -0.25 * plain)
    assert "grl" not in "".join(net.state_dict())  # lambd is not state


# --- projected discriminator --------------------------------------------------------------------


@pytest.fixture(scope="module")
def projected():
    torch.manual_seed(0)
    return build_discriminator("projected", 3, ndf=8)


def _fixed_parameters(net):
    return list(net.projection.parameters())


def test_projected_heads_are_the_only_parameters_and_state(projected):
    projection = projected.projection
    assert len(_fixed_parameters(projected)) > 100 and not any(p.requires_grad for p in _fixed_parameters(projected))
    assert all(name.startswith("heads.") for name, _ in projected.named_parameters())
    assert all(key.startswith("heads.") for key in projected.state_dict())
    assert sum(v.numel() for v in projected.state_dict().values()) < 600_000  # Lite1 alone holds 3.7 M
    assert projection not in list(projected.modules())
    fresh = ProjectedDiscriminator(3, ndf=8)
    fresh.load_state_dict(projected.state_dict())  # a resume: heads from the checkpoint, the rest rebuilt


@pytest.mark.parametrize("ndf, condition_channels, expected", [(64, 0, 10_331_328), (64, 3, 13_149_376)])
def test_projected_heads_match_the_official_size(ndf, condition_channels, expected):
    """10,331,328: the official MultiScaleD (four non-separable SingleDisc on 64, 64, 128, 256 channels)."""
    net = ProjectedDiscriminator(3 + condition_channels, ndf=ndf, condition_channels=condition_channels)
    assert n_params(net) == expected


def test_projected_gradient_reaches_heads_and_input_but_not_the_projection(projected):
    projected.train()
    projected.zero_grad(set_to_none=True)
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    projected(x * 2 - 1).mean().backward()
    assert all(p.grad is None for p in _fixed_parameters(projected))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projected.parameters() if p.ndim > 1)
    assert x.grad.abs().sum() > 0  # G learns through the fixed features
    assert not any(m.training for m in projected.projection.modules())  # its BatchNorm statistics never drift


def test_projected_heads_learn_a_fixed_pair():
    torch.manual_seed(0)
    net = ProjectedDiscriminator(3, ndf=8).train()
    before = {k: v.clone() for k, v in net.projection.state_dict().items()}
    real, fake = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 0.2
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.0, 0.99))
    history = []
    for _ in range(8):
        optimizer.zero_grad(set_to_none=True)
        loss = discriminator_loss("hinge", net(real), net(fake))
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.5 * history[0], history
    assert all(torch.equal(before[k], v) for k, v in net.projection.state_dict().items())


@pytest.mark.parametrize("size, logits", [(32, 64), (64, 64), (240, 64), (256, 100)])
def test_projected_output_shapes(projected, size, logits):
    """Below 224 px the input is resized to 224 (4x4 logits per head); from 224 on it is used as it is."""
    with torch.no_grad():
        assert projected.eval()(torch.rand(3, 3, size, size)).shape == (3, logits)


def test_projected_projection_is_rebuilt_identically():
    torch.manual_seed(1)
    a = ProjectedDiscriminator(3, ndf=4)
    torch.manual_seed(2)
    b, other = ProjectedDiscriminator(3, ndf=4), ProjectedDiscriminator(3, ndf=4, seed=1)
    for pa, pb in zip(a.projection.parameters(), b.projection.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.projection.ccm[0].weight, other.projection.ccm[0].weight)


def test_projected_conditioning_sees_the_condition():
    """pix2pix: cat(condition, image); the heads see both images' features, so another condition, another score."""
    torch.manual_seed(0)
    net = ProjectedDiscriminator(6, ndf=4, condition_channels=3).eval()
    image, a, b = (torch.rand(2, 3, 32, 32) * 2 - 1 for _ in range(3))
    with torch.no_grad():
        with_a, with_b = net(torch.cat([a, image], 1)), net(torch.cat([b, image], 1))
    assert with_a.shape == (2, 64) and not torch.allclose(with_a, with_b)
    gray = ProjectedDiscriminator(4, ndf=4, condition_channels=1)  # a grayscale condition is repeated to RGB
    assert gray(torch.rand(2, 4, 32, 32)).shape == (2, 64)


def test_projected_refuses_lite0_and_odd_channels():
    with pytest.raises(ValueError, match="evaluation network"):
        ProjectedDiscriminator(3, encoder="efficientnet_lite0")
    with pytest.raises(ValueError, match="in_channels 6, condition_channels 0"):
        ProjectedDiscriminator(6)
    with pytest.raises(ValueError, match="in_channels 5, condition_channels 2"):
        ProjectedDiscriminator(5, condition_channels=2)


@pytest.mark.parametrize("n_layers", [1, 3])
def test_patchgan_min_side_is_the_smallest_input_it_takes(n_layers):
    net = NLayerDiscriminator(3, ndf=4, n_layers=n_layers, norm="instance")
    assert net(torch.zeros(1, 3, net.min_side, net.min_side)).shape[-2:] == (1, 1)
    with pytest.raises(ValueError, match="more than 1 spatial element"):  # the side below: a 1 x 1 normalised map
        net(torch.zeros(1, 3, net.min_side - 2 ** n_layers, net.min_side - 2 ** n_layers))
