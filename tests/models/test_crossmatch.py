"""The cross-domain embedding (crossmatch): the symmetric InfoNCE against a direct re-implementation, where the
gradients of each loss go, the no-adaptation baseline, and an export that `translate eval retrieval` embeds with."""

import math

import pytest
import torch

from tests.helpers import FakeAccelerator, tiny_model
from translate.export import load_classifier, load_encoder, write_export
from translate.losses import cross_domain_nce
from translate.models.common import Progress


def test_cross_domain_nce_equals_a_direct_implementation():
    torch.manual_seed(0)
    q, g, tau = torch.randn(5, 7), torch.randn(5, 7), 0.1
    unit_q, unit_g = q / q.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(5):  # each sketch picks its photo among all photos, and each photo its sketch
        row = [math.exp(float(unit_q[i] @ unit_g[j]) / tau) for j in range(5)]
        col = [math.exp(float(unit_g[i] @ unit_q[j]) / tau) for j in range(5)]
        total += -math.log(row[i] / sum(row)) - math.log(col[i] / sum(col))
    assert cross_domain_nce(q, g, tau).item() == pytest.approx(total / 10, rel=1e-5)


def test_cross_domain_nce_is_lowest_when_pairs_coincide():
    torch.manual_seed(0)
    photos = torch.randn(8, 16)
    assert cross_domain_nce(photos, photos) < cross_domain_nce(photos, photos.roll(1, 0))


def test_step_trains_the_embedder_and_the_domain_classifier_through_reversal(tmp_path):
    _, model, batch = tiny_model("crossmatch", tmp_path)
    out = model.train_step(batch, FakeAccelerator(), Progress(5, 10))
    assert {"loss_match", "batch_recall@1", "loss_domain", "acc_domain", "grl_lambda"} <= set(out)
    assert all(p.grad is not None for p in model.raw["domain"].parameters())
    assert all(p.grad is not None for p in model.raw["embedder"].parameters())


def test_the_domain_gradient_reaches_the_embedder_reversed(tmp_path):
    """Only the domain loss (match loss scaled away): the embedder's gradient is -lambda times what it would get
    if it helped D, i.e. the gradient of +L_d with the reversal switched off, times -lambda."""
    grads, lambdas = [], []
    for reversal in (True, False):
        _, model, batch = tiny_model("crossmatch", tmp_path / str(reversal), "model.temperature=1e6")
        if not reversal:  # the same network without the reversal: an identity layer in its place
            model.raw["domain"].grl = torch.nn.Identity()
        model.train_step(batch, FakeAccelerator(), Progress(5, 10))
        lambdas.append(model.raw["domain"].grl.lambd)
        grads.append(torch.cat([p.grad.flatten() for p in model.raw["embedder"].head.parameters()]))
    assert 0 < lambdas[0] < 1
    assert torch.allclose(grads[0], -lambdas[0] * grads[1], atol=1e-6)


def test_domain_weight_zero_is_the_no_adaptation_baseline(tmp_path):
    _, model, batch = tiny_model("crossmatch", tmp_path, "model.domain_weight=0")
    assert set(model.nets) == {"embedder"}
    assert set(model.train_step(batch, FakeAccelerator(), Progress(0, 10))) == {"loss_match", "batch_recall@1"}


def test_export_embeds_with_encoder_and_head_and_is_no_classifier(tmp_path):
    cfg, model, batch = tiny_model("crossmatch", tmp_path)
    export = write_export(tmp_path / "export", model.export_nets(), cfg)
    embedder, spec = load_encoder(export, with_spec=True)
    net = model.raw["embedder"].eval()
    assert spec["role"] == "embedding" and spec["image_size"] == 16
    assert torch.allclose(embedder(batch["A"]), net(batch["A"]), atol=1e-6)
    assert embedder(batch["A"]).shape == (4, 8)
    with pytest.raises(ValueError, match="no classifier nets|classifier"):
        load_classifier(export)
