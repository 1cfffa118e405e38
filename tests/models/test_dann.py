"""DANN: gradient reversal sign and schedule, the annealed lr, per-domain BatchNorm, the source-only baseline."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

from tests.helpers import DANN_TINY, FakeAccelerator, write_labeled
from translate import config
from translate.backbones import build_discriminator
from translate.export import load_classifier
from translate.losses import grl_lambda
from translate.models import MODELS
from translate.models.common import Progress
from translate.models.dann import DomainBatchNorm, pseudo_label_loss
from translate.training.loop import lr_factor, train

TINY = DANN_TINY


@pytest.fixture
def domains(tmp_path):
    return write_labeled(tmp_path / "source", per_class=4), write_labeled(tmp_path / "target", mode="RGB", seed=3)


def build(domains, *overrides):
    cfg = config.load(None, [*TINY, f"data.source={domains[0]}", f"data.target={domains[1]}", *overrides])
    entry = MODELS["dann"]
    model = entry.build(cfg.model)
    dataset = entry.dataset(cfg.data, cfg.model)
    batch = torch.utils.data.default_collate([dataset[(i, i)] for i in range(4)])
    return model, batch


def test_gradient_reversal_flips_and_scales_the_domain_gradient():
    d = build_discriminator("domain", 5, hidden=4, layers=1)
    d.eval()  # no dropout, so both passes compute the same function
    features = torch.randn(6, 5, requires_grad=True)
    is_target = torch.tensor([0.0, 0, 0, 1, 1, 1])
    d.grl.lambd = 0.3
    (reversed_grad,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(d(features).squeeze(1), is_target),
                                           features)
    (plain,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(d.net(features).squeeze(1), is_target),
                                   features)
    torch.testing.assert_close(reversed_grad, -0.3 * plain)


def test_grl_schedule_rises_from_zero_to_one():
    values = [grl_lambda(p / 10) for p in range(11)]
    assert values[0] == 0 and all(a < b for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert grl_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)


def test_train_step_sets_lambda(domains):
    model, batch = build(domains)
    out = model.train_step(batch, FakeAccelerator(), Progress(5, 10))
    assert model.raw["domain"].grl.lambd == pytest.approx(grl_lambda(0.5))
    assert {"loss_cls", "loss_domain", "grl_lambda"} <= set(out)


def test_the_loop_runs_the_papers_annealed_lr_in_place_of_its_decay(domains):
    model, _ = build(domains)
    train_cfg = config.load(None, [*TINY, "train.max_steps=10", "train.decay_steps=5"]).train
    optimizer = model.optimizers["dann"]
    scheduler = LambdaLR(optimizer, lr_factor(model, train_cfg))
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 / (1 + 10 * 0.5) ** 0.75)
    model.cfg.lr_schedule = "loop"  # the loop's linear decay: constant for 5 steps, then down
    assert lr_factor(model, train_cfg)(4) == 1 and lr_factor(model, train_cfg)(9) == pytest.approx(1 / 6)


def test_the_domain_loss_trains_d_and_reaches_f_reversed(domains):
    model, batch = build(domains, "model.domain_weight=1")
    features = model.raw["classifier"].encoder
    model.train_step(batch, FakeAccelerator(), Progress(5, 10))
    assert all(p.grad is not None for p in model.raw["domain"].parameters())
    assert all(p.grad is not None for p in features.parameters())


def test_domain_weight_zero_is_source_only(domains):
    model, batch = build(domains, "model.domain_weight=0", "model.pseudo_weight=1", "model.bn_per_domain=true")
    assert set(model.nets) == {"classifier"} and not model.domain_bns
    out = model.train_step(batch, FakeAccelerator(), Progress(0, 10))
    assert set(out) == {"loss_cls", "acc_source"}


def test_batchnorm_statistics_per_domain(domains):
    model, batch = build(domains, "model.bn_per_domain=true")
    assert model.domain_bns and all(isinstance(bn, DomainBatchNorm) for bn in model.domain_bns)
    batch["target"] = batch["target"] * 0.1 + 0.5  # a clearly different target distribution
    model.train_step(batch, FakeAccelerator(), Progress(0, 10))
    first = model.domain_bns[0]
    assert not torch.allclose(first.source.running_mean, first.target.running_mean)
    net, spec = model.export_nets()["classifier"]
    assert not any(isinstance(m, DomainBatchNorm) for m in net.modules())
    exported_bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    torch.testing.assert_close(exported_bn.running_mean, first.target.running_mean)


def test_pseudo_labels_use_confident_predictions_only():
    logits = torch.tensor([[9.0, 0.0], [0.1, 0.0], [0.0, 9.0]], requires_grad=True)
    loss, kept = pseudo_label_loss(logits, 0.95)
    assert kept.item() == pytest.approx(2 / 3)
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad[1].abs().sum() == 0 and grad[0].abs().sum() > 0


@pytest.mark.parametrize("extra", [[], ["train.mixed_precision=bf16", "model.ema_decay=0.9",
                                        "model.pseudo_weight=1", "model.pseudo_threshold=0"]])
def test_training_exports_a_classifier(domains, tmp_path, extra):
    cfg = config.load(None, [*TINY, f"data.source={domains[0]}", f"data.target={domains[1]}", *extra])
    export = train(cfg, tmp_path / "run")
    net, spec = load_classifier(export, with_spec=True)
    assert spec["classes"] == ["0", "1"] and spec["role"] == "classifier"
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 2)
