"""pix2pix through the model: the D sub-step trains D only (on detached fakes), the G sub-step trains G only (D
frozen, its gradients untouched), tricks.d_steps updates D that many times, R1 and WGAN-GP penalties reach D's loss."""

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
