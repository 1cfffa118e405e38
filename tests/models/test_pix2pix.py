"""pix2pix through the model: the D sub-step trains D only (on detached fakes), the G sub-step trains G only (D
frozen, its gradients untouched), tricks.d_steps updates D that many times, R1 and WGAN-GP penalties reach D's loss,
the perceptual loss trains G through a frozen network that is nobody's net."""

import math

import pytest
import torch

from tests.helpers import FakeAccelerator, changed_parameters, net_state, spy_optimizer_steps, tiny_model
from translate.models.common import Progress


def test_d_substep_trains_d_only_and_g_substep_trains_g_only(tmp_path):
    _, model, batch = tiny_model("pix2pix", tmp_path)
    start = net_state(model.raw)
    calls = spy_optimizer_steps(model)
    model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert [(opt, when) for opt, when, _ in calls] == [("D", "before"), ("D", "after"), ("G", "before"),
                                                      ("G", "after")]
    (_, _, d_before), (_, _, d_after), (_, _, g_before), (_, _, g_after) = calls
    # D sub-step: D judges detached fakes, so G gets no gradient and stays as it was
    assert all(grad is None for _, grad, _ in d_before["G"].values())
    assert not changed_parameters(start, d_after, "G")
    assert changed_parameters(d_before, d_after, "D") == set(start["D"])
    # G sub-step: D frozen; G's backward adds nothing to the gradients D's step left, and D's weights stay
    assert not any(requires_grad for _, _, requires_grad in g_before["D"].values())
    assert all(torch.equal(grad, d_before["D"][k][1]) for k, (_, grad, _) in g_before["D"].items())
    assert not changed_parameters(d_after, g_after, "D")
    assert changed_parameters(g_before, g_after, "G") == set(start["G"])
    assert all(grad is not None for _, grad, _ in g_before["G"].values())


def test_d_steps_two_updates_d_twice_per_step(tmp_path):
    _, model, batch = tiny_model("pix2pix", tmp_path, "model.tricks.d_steps=2")
    calls = spy_optimizer_steps(model)
    model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert [(opt, when) for opt, when, _ in calls if when == "after"] == [("D", "after"), ("D", "after"),
                                                                          ("G", "after")]
    first, second = (state for opt, when, state in calls if opt == "D" and when == "after")
    assert changed_parameters(first, second, "D") == set(first["D"])  # the second update is a real one
    assert not changed_parameters(first, second, "G")


@pytest.mark.parametrize("penalty, off, on", [
    ("r1", ["model.tricks.r1_gamma=0"], ["model.tricks.r1_gamma=10"]),
    ("wgangp", ["model.gan_mode=wgangp", "model.tricks.gp_weight=0"], ["model.gan_mode=wgangp"]),
], ids=["r1", "wgangp"])
def test_gradient_penalties_add_to_the_d_loss(penalty, off, on, tmp_path):
    """Same seed, same weights, same dropout draws: the D loss differs by the penalty alone, which is positive."""
    losses = {}
    for setting, overrides in (("off", off), ("on", on)):
        _, model, batch = tiny_model("pix2pix", tmp_path / setting, *overrides, seed=3)
        losses[setting] = model.train_step(batch, FakeAccelerator(), Progress(0, 4))
        assert all(math.isfinite(v) for v in losses[setting].values()), (penalty, setting, losses[setting])
    assert losses["on"]["loss_D"] > losses["off"]["loss_D"] + 1e-4, losses


def test_the_perceptual_loss_trains_g_through_a_frozen_network_that_is_not_a_net(tmp_path):
    _, model, batch = tiny_model("pix2pix", tmp_path, "model.lambda_perceptual=10", seed=3)
    features = model.perceptual
    before = {k: v.clone() for k, v in features.state_dict().items()}
    g_grads = []
    model.optimizers["G"].register_step_pre_hook(
        lambda *_: g_grads.append([p.grad.clone() for p in model.raw["G"].parameters()]))
    torch.manual_seed(7)  # the same dropout draws in both runs (building the frozen net drew from the RNG)
    out = model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert out["loss_G_perceptual"] > 0
    assert all(p.grad is None and not p.requires_grad for p in features.parameters())
    assert all(torch.equal(v, features.state_dict()[k]) for k, v in before.items())  # BN statistics too
    assert not any(p is q for q in features.parameters() for net in model.raw.values() for p in net.parameters())
    # the same step without the loss gives G other gradients: the loss reaches G
    _, plain, _ = tiny_model("pix2pix", tmp_path / "plain", seed=3)
    plain_grads = []
    plain.optimizers["G"].register_step_pre_hook(
        lambda *_: plain_grads.append([p.grad.clone() for p in plain.raw["G"].parameters()]))
    torch.manual_seed(7)
    plain_out = plain.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert plain_out["loss_G_L1"] == out["loss_G_L1"]  # everything else equal
    assert any(not torch.allclose(a, b) for a, b in zip(g_grads[0], plain_grads[0]))


def test_the_judge_cannot_be_the_perceptual_loss(tmp_path):
    with pytest.raises(ValueError, match="evaluation network never trains"):
        tiny_model("pix2pix", tmp_path, "model.lambda_perceptual=10", "model.perceptual_encoder=efficientnet_lite0")
