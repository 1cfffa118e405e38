"""pix2pix with output-space adaptation (model.target_gan_weight, Tsai et al. 2018): D_T learns to tell G's outputs
from the paired inputs from its outputs from data.target's, G's loss gains weight * L_adv on the target outputs
alone, and weight 0 is the plain model."""

import pytest
import torch

from tests.helpers import HINTED, FakeAccelerator, spy_optimizer_steps, tiny_model, write_images
from translate.models.common import Progress

# instance norm and no dropout: each sample's output is its own, so a joint forward equals two separate ones
PLAIN = ["model.norm=instance", "model.dropout=false"]


def adapted(tmp_path, weight: float, *extra):
    target = tmp_path / "drawn"
    write_images(target, 3, (32, 32), seed=5)
    return tiny_model("pix2pix", tmp_path / str(weight), *PLAIN, *extra, f"model.target_gan_weight={weight}",
                      f"data.target={target}")


def g_gradients(model, batch) -> dict:
    model.optimizers["G"].step = lambda *a, **k: None  # keep G's weights: compare the gradients of one step
    losses = model.train_step(batch, FakeAccelerator(), Progress(1, 4))
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    return {k: p.grad.clone() for k, p in model.raw["G"].named_parameters()}


def test_the_target_term_adds_to_g_gradient_in_proportion_to_its_weight(tmp_path):
    _, baseline, plain_batch = tiny_model("pix2pix", tmp_path / "b", *PLAIN)
    _, one, batch = adapted(tmp_path, 1)
    _, two, batch_two = adapted(tmp_path, 2)
    assert torch.equal(batch["A"], plain_batch["A"]) and torch.equal(batch["T"], batch_two["T"])
    g0, g1, g2 = g_gradients(baseline, plain_batch), g_gradients(one, batch), g_gradients(two, batch)
    # G's gradient is the plain model's plus weight x the gradient of L_adv(G(target)), and that term is not zero
    assert all(torch.allclose(g2[k] - g1[k], g1[k] - g0[k], atol=1e-4) for k in g0)  # float32 sums: ~3e-5
    assert any(not torch.allclose(g1[k], g0[k], atol=1e-5) for k in g0)


def test_d_t_learns_from_outputs_alone_before_g_is_judged_by_it(tmp_path):
    _, model, batch = adapted(tmp_path, 1)
    calls = spy_optimizer_steps(model)
    losses = model.train_step(batch, FakeAccelerator(), Progress(1, 4))
    assert {"loss_D_T", "loss_G_T"} <= set(losses)
    assert [(name, when) for name, when, _ in calls][::2] == [("D", "before"), ("D_T", "before"), ("G", "before")]
    before_d_t, after_d_t = calls[2][2], calls[3][2]
    assert all(grad is None for _, grad, _ in after_d_t["G"].values())  # D_T's loss sends G nothing
    assert any(not torch.equal(before_d_t["D_T"][k][0], after_d_t["D_T"][k][0]) for k in after_d_t["D_T"])
    first_conv = next(p for p in model.raw["D_T"].parameters() if p.dim() == 4)
    assert first_conv.shape[1] == 3  # the output alone, not (input, output) as D


def test_the_export_is_g_alone_and_weight_zero_reads_no_target(tmp_path):
    _, model, batch = adapted(tmp_path, 1)
    _, baseline, plain_batch = tiny_model("pix2pix", tmp_path / "b", *PLAIN)
    assert set(model.export_nets()) == {"G"} and "T" in batch
    assert "D_T" not in baseline.raw and "T" not in plain_batch


def test_adaptation_on_outputs_needs_a_target_and_is_one_way_at_a_time(tmp_path):
    with pytest.raises(ValueError, match="target_gan_weight needs data.target"):
        tiny_model("pix2pix", tmp_path / "a", "model.target_gan_weight=1")
    with pytest.raises(ValueError, match="set one of them"):
        tiny_model("pix2pix", tmp_path / "b", "model.target_gan_weight=1", "model.domain_weight=1",
                   f"data.target={tmp_path}")


def test_with_colour_hints_d_t_compares_outputs_made_without_hints(tmp_path):
    """The target carries no hints, so D_T's source side must not either: its step is the same whatever hints the
    paired batch carries (instance norm: the hinted rows of the joint forward do not reach the others)."""
    _, model, batch = adapted(tmp_path, 1, "model.generator=unet_lite1", *HINTED)
    _, twin, _ = adapted(tmp_path / "twin", 1, "model.generator=unet_lite1", *HINTED)
    recoloured = {**batch, "hints": torch.rand_like(batch["hints"]) * (batch["hints"][:, 3:] > 0)}
    assert not torch.equal(recoloured["hints"], batch["hints"])
    for m, b in ((model, batch), (twin, recoloured)):
        m.train_step(b, FakeAccelerator(), Progress(1, 4))
    assert all(torch.equal(p, q) for p, q in zip(model.raw["D_T"].parameters(), twin.raw["D_T"].parameters()))
