"""DTN: each term of L_G reaches g, f never changes and stays out of the prepared nets, D's three classes."""

import pytest
import torch

from tests.helpers import CLASSIFIER_TINY, DTN_TINY, FakeAccelerator, make_classifier_export, write_labeled
from translate import config
from translate.export import load_generator, write_export
from translate.models import MODELS
from translate.models.classifier import build_classifier, classifier_spec
from translate.models.common import Progress
from translate.models.dtn import FAKE_SOURCE, FAKE_TARGET, REAL_TARGET, discriminator_loss, generator_loss
from translate.training.loop import train

TINY = DTN_TINY


@pytest.fixture
def setup(tmp_path):
    """A classifier export (f) and two tiny domains."""
    export = make_classifier_export(tmp_path / "f")
    source = write_labeled(tmp_path / "source", per_class=3, mode="RGB")
    target = write_labeled(tmp_path / "target", per_class=3, seed=2)
    return [f"model.encoder={export}", f"data.source={source}", f"data.target={target}"]


def build(setup, *overrides):
    cfg = config.load(None, [*TINY, *setup, *overrides])
    model = MODELS["dtn"].build(cfg.model)
    dataset = MODELS["dtn"].dataset(cfg.data, cfg.model)
    return model, torch.utils.data.default_collate([dataset[(i, i)] for i in range(3)])


def test_each_generator_term_sends_gradient_to_g(setup):
    model, batch = build(setup, "model.gamma=1")
    f_x = model.f(torch.cat([batch["source"], batch["target"]]))
    fake = model.raw["g"](f_x)
    terms = model.generator_losses(fake, f_x, batch["target"])
    assert set(terms) == {"loss_GANG", "loss_CONST", "loss_TID", "loss_TV"}
    g_params = list(model.raw["g"].parameters())
    for name, loss in terms.items():
        grads = torch.autograd.grad(loss, g_params, retain_graph=True, allow_unused=True)
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name


def test_f_is_frozen_and_never_changes(setup):
    model, batch = build(setup)
    assert model.f not in model.raw.values() and not any(p.requires_grad for p in model.f.parameters())
    before = {k: v.clone() for k, v in model.f.state_dict().items()}
    model.generator.train()  # a parent switching to train mode must leave f in eval mode
    assert not model.f.training
    for step in range(2):
        model.train_step(batch, FakeAccelerator(), Progress(step, 2))
    assert all(torch.equal(before[k], v) for k, v in model.f.state_dict().items())
    assert all(p.grad is None for p in model.f.parameters())
    assert all(p.grad is not None for p in model.raw["D"].parameters())


def test_discriminator_never_sees_real_and_fake_in_one_batch(setup):
    """With BatchNorm in D, a mixed batch would normalise the fakes unlike the G step, which shows D fakes only."""
    model, batch = build(setup)
    seen = []
    model.raw["D"].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    model.train_step(batch, FakeAccelerator(), Progress(0, 1))
    d_fake, d_real, g_fake = seen
    assert torch.equal(d_real, batch["target"])
    assert d_fake.shape == g_fake.shape == (6, *batch["target"].shape[1:])  # [G(source); G(target)] both times
    assert torch.allclose(d_fake, g_fake)


def test_discriminator_classes_are_the_papers(setup):
    """Through a train_step: which of D's outputs each kind of input is pushed towards. Cross-entropy's gradient on
    the logits is softmax - one_hot(target), so the one negative entry of each row is the class trained towards."""
    model, batch = build(setup)
    n = batch["source"].shape[0]
    pushed = []  # per call of D, in forward order (backward runs them in any order): the class each row is pushed to

    def record(module, inputs, output):
        call = len(pushed)
        pushed.append(None)
        output.register_hook(lambda grad: pushed.__setitem__(call, grad.argmin(1).tolist()))

    model.raw["D"].register_forward_hook(record)
    model.train_step(batch, FakeAccelerator(), Progress(0, 1))
    d_fake, d_real, g_fake = pushed
    # the D step (eq. 3): G(source) -> D1, G(target) -> D2, real target -> D3
    assert d_fake == [FAKE_SOURCE] * n + [FAKE_TARGET] * n and d_real == [REAL_TARGET] * n
    # the G step (eq. 2): every generated image, of source or target, towards D3
    assert g_fake == [REAL_TARGET] * 2 * n
    assert len({FAKE_SOURCE, FAKE_TARGET, REAL_TARGET}) == 3
    # sure and right is no loss, sure and wrong a large one
    sure = torch.eye(3)[[FAKE_SOURCE, FAKE_SOURCE, FAKE_TARGET, FAKE_TARGET, REAL_TARGET, REAL_TARGET]] * 20
    assert discriminator_loss(sure, 2, 2) < 1e-6
    assert discriminator_loss(sure[[2, 3, 0, 1, 4, 5]], 2, 2) > 10  # G(source) and G(target) swapped
    assert generator_loss(torch.eye(3)[[REAL_TARGET] * 4] * 20, 2) < 1e-6  # G wants D3 for every generated image
    assert generator_loss(sure[:4], 2) > 10


def test_needs_an_encoder(setup):
    with pytest.raises(ValueError, match="model.encoder"):
        build([s for s in setup if not s.startswith("model.encoder")])


@pytest.mark.parametrize("extra", [[], ["train.mixed_precision=bf16"]])
def test_export_is_a_generator_that_keeps_sizes(setup, tmp_path, extra):
    export = train(config.load(None, [*TINY, *setup, *extra]), tmp_path / "run")
    g = load_generator(export)
    assert not g.training
    assert g(torch.zeros(2, 3, 28, 28)).shape == (2, 3, 28, 28)


def test_timm_encoder_as_f(setup):
    model, batch = build([s for s in setup if not s.startswith("model.encoder")],
                         "model.encoder=timm:efficientnet_lite0",
                         "model.pretrained=", "model.image_size=16")
    assert model.f.embedding_dim == 1280 and not any(p.requires_grad for p in model.f.parameters())
    out = model.train_step(batch, FakeAccelerator(), Progress(0, 1))
    assert {"loss_GANG", "loss_CONST", "loss_TID", "loss_D"} <= set(out)


def test_grey_target_domain(tmp_path):
    """MNIST as the paper uses it: G draws 1-channel digits, f reads them repeated to RGB, D sees grey images."""
    cfg = config.load(None, [*CLASSIFIER_TINY, "model.encoder=dtn", "model.image_size=32"])
    net = build_classifier(cfg.model)
    f = write_export(tmp_path / "f", {"classifier": (net, classifier_spec(cfg.model, net))}, cfg)
    source = write_labeled(tmp_path / "source", per_class=3, mode="RGB")
    target = write_labeled(tmp_path / "target", per_class=3, seed=2, mode="L")
    setup = [f"model.encoder={f}", f"data.source={source}", f"data.target={target}", "model.target_channels=1",
             "data.load_size=32", "data.crop_size=32"]
    model, batch = build(setup)
    assert batch["source"].shape[1] == 3 and batch["target"].shape[1] == 1
    out = model.train_step(batch, FakeAccelerator(), Progress(0, 1))
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values())
    g = load_generator(train(config.load(None, [*TINY, *setup]), tmp_path / "run"))
    assert g(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 32, 32)
