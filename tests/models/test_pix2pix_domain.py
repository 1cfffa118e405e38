"""pix2pix with DANN on G's encoder (model.domain_weight): the target inputs reach the encoder and the domain
classifier only, the reversed gradient reaches the encoder and never the decoder, and lambda_p = 0 changes nothing."""

import pytest
import torch

from tests.helpers import FakeAccelerator, tiny_model, write_images
from translate.models.common import Progress

LITE = ["model.generator=unet_lite1", "model.ngf=8", "model.norm=instance", "model.dropout=false",
        "model.lambda_perceptual=1"]  # as the handbag preset: its frozen network beside the domain features


def twins(tmp_path, *extra):
    """(adapted, baseline) models with the same G and D weights and the same batch, which carries T."""
    target = tmp_path / "drawn"
    write_images(target, 3, (32, 32), seed=5)
    adapted = tiny_model("pix2pix", tmp_path / "a", *LITE, *extra, "model.domain_weight=1", f"data.target={target}")
    baseline = tiny_model("pix2pix", tmp_path / "b", *LITE, *extra)
    assert torch.equal(adapted[2]["A"], baseline[2]["A"]) and "T" in adapted[2] and "T" not in baseline[2]
    return adapted[1], baseline[1], adapted[2]


def grads(net, part: str) -> dict:
    return {k: p.grad.clone() for k, p in net.named_parameters() if k.startswith(part) and p.grad is not None}


def g_gradients(model, batch, step: int) -> tuple[dict, dict]:
    model.optimizers["G"].step = lambda *a, **k: None  # keep the weights: compare the gradients of one step
    losses = model.train_step(batch, FakeAccelerator(), Progress(step, 4))
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    return grads(model.raw["G"], "encoder"), grads(model.raw["G"], "decoder")


def test_at_lambda_zero_the_domain_branch_leaves_g_as_the_baseline(tmp_path):
    adapted, baseline, batch = twins(tmp_path)
    enc_a, dec_a = g_gradients(adapted, batch, step=0)
    enc_b, dec_b = g_gradients(baseline, batch, step=0)
    assert all(torch.allclose(enc_a[k], enc_b[k], atol=1e-6) for k in enc_b)
    assert all(torch.allclose(dec_a[k], dec_b[k], atol=1e-6) for k in dec_b)


def test_later_the_reversed_gradient_reaches_the_encoder_and_never_the_decoder(tmp_path):
    adapted, baseline, batch = twins(tmp_path)
    before = {k: p.clone() for k, p in adapted.raw["domain"].named_parameters()}
    enc_a, dec_a = g_gradients(adapted, batch, step=2)
    enc_b, dec_b = g_gradients(baseline, batch, step=2)
    assert all(torch.allclose(dec_a[k], dec_b[k], atol=1e-6) for k in dec_b)
    assert any(not torch.allclose(enc_a[k], enc_b[k], atol=1e-6) for k in enc_b)
    assert any(not torch.equal(p, before[k]) for k, p in adapted.raw["domain"].named_parameters())


def test_the_export_is_g_alone_and_weight_zero_reads_no_target(tmp_path):
    adapted, baseline, _ = twins(tmp_path)
    assert set(adapted.export_nets()) == {"G"} and "domain" not in baseline.raw


def test_adaptation_needs_a_target_and_a_pretrained_encoder(tmp_path):
    with pytest.raises(ValueError, match="needs data.target"):
        tiny_model("pix2pix", tmp_path / "a", *LITE, "model.domain_weight=1")
    with pytest.raises(ValueError, match="pretrained encoder"):
        tiny_model("pix2pix", tmp_path / "b", "model.domain_weight=1", f"data.target={tmp_path}")
