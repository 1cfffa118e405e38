import math

import pytest
import torch
from torch import nn

from translate.backbones import GradientReversal, MinibatchStd, init_weights, norm_layer, uses_bias

# --- norm_layer / uses_bias ---------------------------------------------------------------------


def test_norm_layer_kinds():
    bn = norm_layer("batch")(5)
    assert isinstance(bn, nn.BatchNorm2d) and bn.affine and bn.track_running_stats
    inorm = norm_layer("instance")(5)
    assert isinstance(inorm, nn.InstanceNorm2d) and not inorm.affine and not inorm.track_running_stats
    assert dict(inorm.state_dict()) == {}
    assert isinstance(norm_layer("none")(5), nn.Identity)


def test_uses_bias():
    assert (uses_bias("batch"), uses_bias("instance"), uses_bias("none")) == (False, True, True)


@pytest.mark.parametrize("fn", [norm_layer, uses_bias])
def test_unknown_norm(fn):
    with pytest.raises(ValueError, match="'group'.*batch, instance, none"):
        fn("group")


# --- init_weights -------------------------------------------------------------------------------


def _net():
    return nn.Sequential(
        nn.Conv2d(64, 64, 3),
        nn.BatchNorm2d(20000),
        nn.ConvTranspose2d(64, 64, 3),
        nn.Linear(256, 256),
        nn.InstanceNorm2d(8),
    )


def _check_biases_and_batchnorm(net, gain):
    for m in (net[0], net[2], net[3]):
        assert torch.count_nonzero(m.bias) == 0
    bn = net[1]
    assert torch.count_nonzero(bn.bias) == 0
    assert abs(bn.weight.mean().item() - 1.0) < 3 * gain / math.sqrt(bn.num_features) + 1e-6
    assert abs(bn.weight.std().item() - gain) < 0.05 * gain


@pytest.mark.parametrize("gain", [0.02, 0.5])
def test_init_normal(gain):
    torch.manual_seed(0)
    net = init_weights(_net(), "normal", gain)
    for m in (net[0], net[2], net[3]):
        assert abs(m.weight.mean().item()) < 0.05 * gain
        assert abs(m.weight.std().item() - gain) < 0.05 * gain
    _check_biases_and_batchnorm(net, gain)


def test_init_xavier():
    torch.manual_seed(0)
    gain = 0.5
    net = init_weights(_net(), "xavier", gain)
    # Conv 64->64 3x3: fan_in = fan_out = 576; Linear 256->256: 256 each.
    for m, fan in ((net[0], 576), (net[2], 576), (net[3], 256)):
        expected = gain * math.sqrt(2.0 / (2 * fan))
        assert abs(m.weight.std().item() - expected) < 0.05 * expected
    _check_biases_and_batchnorm(net, gain)


def test_init_kaiming_ignores_gain():
    torch.manual_seed(0)
    net = init_weights(_net(), "kaiming", 0.02)
    for m, fan_in in ((net[0], 576), (net[2], 576), (net[3], 256)):
        # ConvTranspose2d weights are (in, out, k, k); torch's fan_in is dim 1 * k * k = 576 too.
        expected = math.sqrt(2.0 / fan_in)
        assert abs(m.weight.std().item() - expected) < 0.05 * expected
    _check_biases_and_batchnorm(net, 0.02)


def test_init_orthogonal():
    torch.manual_seed(0)
    gain = 0.5
    net = init_weights(_net(), "orthogonal", gain)
    for m in (net[0], net[2], net[3]):
        w = m.weight.flatten(1)
        rows = min(w.shape)
        w = w if w.shape[0] <= w.shape[1] else w.T
        torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(rows), atol=1e-5, rtol=0)
    _check_biases_and_batchnorm(net, gain)


def test_init_unknown_type():
    with pytest.raises(ValueError, match="normal, xavier, kaiming, orthogonal"):
        init_weights(nn.Identity(), "uniform")


def test_init_spectral_norm_initialises_original_weight():
    torch.manual_seed(0)
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(64, 64, 3))
    init_weights(conv, "normal", 0.02)
    original = conv.parametrizations.weight.original
    assert abs(original.std().item() - 0.02) < 0.001
    assert torch.count_nonzero(conv.bias) == 0
    old_style = nn.utils.spectral_norm(nn.Conv2d(64, 64, 3))
    init_weights(old_style, "normal", 0.5)
    assert abs(old_style.weight_orig.std().item() - 0.5) < 0.025


# --- GradientReversal ---------------------------------------------------------------------------


def test_gradient_reversal_forward_and_backward():
    grl = GradientReversal()
    assert grl.lambd == 1.0
    grl.lambd = 0.3
    x = torch.randn(4, 5, requires_grad=True)
    y = grl(x)
    torch.testing.assert_close(y, x)
    upstream = torch.randn(4, 5)
    y.backward(upstream)
    torch.testing.assert_close(x.grad, -0.3 * upstream)
    grl(x).relu_()  # the output is not a view of x, so in-place ops on it are allowed
    assert dict(grl.state_dict()) == {}


def test_gradient_reversal_gradcheck():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 4, dtype=torch.float64)

    def f(t):
        return torch.sin(t @ w)

    # With lambd = -1 the layer is an honest identity, so its backward must pass gradcheck.
    assert torch.autograd.gradcheck(lambda t: f(GradientReversal(-1.0)(t)), (x,))
    # Otherwise the analytical Jacobian is exactly -lambd times the true one.
    jac = torch.autograd.functional.jacobian
    torch.testing.assert_close(jac(lambda t: f(GradientReversal(0.3)(t)), x), -0.3 * jac(f, x))


# --- MinibatchStd -------------------------------------------------------------------------------


def test_minibatch_std_adds_one_channel():
    y = MinibatchStd()(torch.randn(8, 5, 4, 4))
    assert y.shape == (8, 6, 4, 4)


def test_minibatch_std_known_value():
    x = torch.zeros(8, 2, 3, 3)
    x[2:4, 0] = 2.0  # group 1, channel 0: [0, 0, 2, 2] -> std 1 at every pixel
    x[:4, 1] = 5.0  # group 1, channel 1: constant -> std 0
    x[4:, :] = 7.0  # group 2: constant -> std 0
    y = MinibatchStd(group_size=4)(x)
    torch.testing.assert_close(y[:, :2], x)
    eps = 1e-8  # std is sqrt(var + eps), averaged over channels and pixels
    group1 = (math.sqrt(1 + eps) + math.sqrt(eps)) / 2
    torch.testing.assert_close(y[:4, 2], torch.full((4, 3, 3), group1))
    torch.testing.assert_close(y[4:, 2], torch.full((4, 3, 3), math.sqrt(eps)))


def test_minibatch_std_group_choice():
    x = torch.randn(6, 3, 2, 2)
    # 6 is not a multiple of 4: groups of gcd(6, 4) = 2.
    y = MinibatchStd(4)(x)[:, 3, 0, 0]
    pair = (x[:2].var(0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[:2], pair.expand(2))
    assert not torch.allclose(y[0], y[2])
    # 5 samples: gcd is 1, so the whole batch is one group.
    y5 = MinibatchStd(4)(x[:5])[:, 3, 0, 0]
    whole = (x[:5].var(0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y5, whole.expand(5))


def test_minibatch_std_batch_of_one_is_finite():
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    y = MinibatchStd()(x)
    assert torch.isfinite(y).all()
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_minibatch_std_dtypes_and_channels_last():
    x = torch.randn(4, 3, 4, 4, dtype=torch.float64)
    assert MinibatchStd()(x).dtype == torch.float64
    y = MinibatchStd()(x.float())
    y_cl = MinibatchStd()(x.float().to(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y)
