"""CycleGAN through the model: the G sub-step trains both generators only (both Ds frozen, without gradient), the D
sub-step trains the Ds only, D's fakes come from the image pools fed with G's fakes, tricks.d_steps updates D that
many times, R1 and WGAN-GP penalties reach both D losses."""

import math

import pytest
import torch

from tests.helpers import FakeAccelerator, changed_parameters, net_state, spy_optimizer_steps, tiny_model
from translate.models.common import Progress

GENERATORS, DISCRIMINATORS = ("G_AB", "G_BA"), ("D_A", "D_B")


def test_g_substep_trains_g_only_and_d_substep_trains_d_only(tmp_path):
    _, model, batch = tiny_model("cyclegan", tmp_path)
    start = net_state(model.raw)
    calls = spy_optimizer_steps(model)
    model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert [(opt, when) for opt, when, _ in calls] == [("G", "before"), ("G", "after"), ("D", "before"),
                                                      ("D", "after")]
    (_, _, g_before), (_, _, g_after), (_, _, d_before), (_, _, d_after) = calls
    for d in DISCRIMINATORS:  # G sub-step: the Ds are frozen, get no gradient and do not move
        assert all(grad is None and not requires_grad for _, grad, requires_grad in g_before[d].values()), d
        assert not changed_parameters(start, g_after, d), d
    for g in GENERATORS:
        assert changed_parameters(g_before, g_after, g) == set(start[g]), g
    for g in GENERATORS:  # D sub-step: pooled fakes are detached, so G's gradients and weights stay as they were
        assert all(torch.equal(grad, g_before[g][k][1]) for k, (_, grad, _) in d_before[g].items()), g
        assert not changed_parameters(g_after, d_after, g), g
    for d in DISCRIMINATORS:
        assert all(requires_grad for _, _, requires_grad in d_before[d].values()), d
        assert changed_parameters(d_before, d_after, d) == set(start[d]), d


def test_discriminators_judge_what_the_pools_return(tmp_path):
    cfg, model, batch = tiny_model("cyclegan", tmp_path)
    assert cfg.model.pool_size > 0
    generated = {"G_AB": [], "G_BA": []}
    for g in GENERATORS:
        model.raw[g].register_forward_hook(lambda module, inputs, output, g=g: generated[g].append(output.detach()))
    queried, judged = {}, {"D_A": [], "D_B": []}
    for domain, pool in model.pools.items():
        def query(images, domain=domain):
            queried[domain] = images.detach().clone()
            return torch.full_like(images, 0.25 if domain == "A" else -0.5)  # what no generator outputs

        pool.query = query
    for d in DISCRIMINATORS:
        model.raw[d].register_forward_hook(lambda module, inputs, output, d=d: judged[d].append(inputs[0].detach()))
    model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    # G's fakes go into the pools: fake_B = G_AB(real_A) is G_AB's first forward, fake_A = G_BA(real_B) G_BA's second
    assert torch.equal(queried["B"], generated["G_AB"][0])
    assert torch.equal(queried["A"], generated["G_BA"][1])
    # each D: once in the G step on the fresh fake, then in the D step on the pool's answer (fake first) and the real
    for d, domain, value in (("D_A", "A", 0.25), ("D_B", "B", -0.5)):
        fresh, pooled, real = judged[d]
        assert torch.equal(fresh, queried[domain])
        assert (pooled == value).all(), d
        assert torch.equal(real, batch[domain])


def test_d_steps_two_updates_d_twice_per_step(tmp_path):
    _, model, batch = tiny_model("cyclegan", tmp_path, "model.tricks.d_steps=2")
    calls = spy_optimizer_steps(model)
    model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert [(opt, when) for opt, when, _ in calls if when == "after"] == [("G", "after"), ("D", "after"),
                                                                          ("D", "after")]
    first, second = (state for opt, when, state in calls if opt == "D" and when == "after")
    for d in DISCRIMINATORS:
        assert changed_parameters(first, second, d) == set(first[d]), d  # the second update is a real one


@pytest.mark.parametrize("penalty, off, on", [
    ("r1", ["model.tricks.r1_gamma=0"], ["model.tricks.r1_gamma=10"]),
    ("wgangp", ["model.gan_mode=wgangp", "model.tricks.gp_weight=0"], ["model.gan_mode=wgangp"]),
], ids=["r1", "wgangp"])
def test_gradient_penalties_add_to_both_d_losses(penalty, off, on, tmp_path):
    """Same seed: the same G step and the same fakes, so each D loss differs by its penalty alone (positive)."""
    losses = {}
    for setting, overrides in (("off", off), ("on", on)):
        _, model, batch = tiny_model("cyclegan", tmp_path / setting, *overrides, seed=3)
        losses[setting] = model.train_step(batch, FakeAccelerator(), Progress(0, 4))
        assert all(math.isfinite(v) for v in losses[setting].values()), (penalty, setting, losses[setting])
    for key in ("loss_D_A", "loss_D_B"):
        assert losses["on"][key] > losses["off"][key] + 1e-4, (key, losses)
    assert losses["on"]["loss_cycle_A"] == losses["off"]["loss_cycle_A"]  # the G step did not see the penalty
