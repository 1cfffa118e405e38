"""model.discriminator=projected in pix2pix and CycleGAN: a train_step with finite losses, the heads trained, the
fixed projection outside the optimizers and checkpoints and never changed, pix2pix's D conditioned on its input."""

import pytest
import torch

from tests.helpers import CYCLEGAN_TINY, PIX2PIX_TINY, FakeAccelerator
from translate import config
from translate.backbones import ProjectedDiscriminator
from translate.models import MODELS
from translate.models.adversarial import discriminator_kwargs
from translate.models.common import Progress

PROJECTED = ["model.discriminator=projected", "model.gan_mode=hinge",
             "model.tricks.diffaugment=color,translation,cutout"]  # the paper's loss and augmentation


def build(overrides: list[str]):
    cfg = config.load(None, [*overrides, *PROJECTED])
    entry = MODELS[cfg.model.name]
    dataset = entry.dataset(cfg.data, cfg.model)
    return entry.build(cfg.model), torch.utils.data.default_collate([dataset[(i, i)] for i in range(2)])


def check_step(model, batch, d_names):
    heads = {name: {k: v.clone() for k, v in model.raw[name].state_dict().items()} for name in d_names}
    fixed = {name: {k: v.clone() for k, v in model.raw[name].projection.state_dict().items()} for name in d_names}
    out = model.train_step(batch, FakeAccelerator(), Progress(0, 1))
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values()), out
    optimized = {id(p) for group in model.optimizers["D"].param_groups for p in group["params"]}
    for name in d_names:
        d = model.raw[name]
        assert isinstance(d, ProjectedDiscriminator)
        assert optimized >= {id(p) for p in d.parameters()}
        assert not optimized & {id(p) for p in d.projection.parameters()}
        assert all(p.grad is None for p in d.projection.parameters())
        assert all(key.startswith("heads.") for key in d.state_dict())  # what a checkpoint of D holds
        assert any(not torch.equal(heads[name][k], v) for k, v in d.state_dict().items())
        assert all(torch.equal(fixed[name][k], v) for k, v in d.projection.state_dict().items())
    return out


def test_pix2pix_step(aligned_root):
    model, batch = build([*PIX2PIX_TINY, f"data.root={aligned_root}"])
    assert model.raw["D"].condition_channels == 3  # D judges the output, conditioned on the input
    out = check_step(model, batch, ["D"])
    assert set(out) == {"loss_D", "loss_G_GAN", "loss_G_L1"}


def test_cyclegan_step(unaligned_root):
    model, batch = build([*CYCLEGAN_TINY, f"data.root={unaligned_root}"])
    assert model.raw["D_A"].condition_channels == model.raw["D_B"].condition_channels == 0
    out = check_step(model, batch, ["D_A", "D_B"])
    assert {"loss_D_A", "loss_D_B", "loss_G_AB", "loss_G_BA"} <= set(out)


def test_discriminator_kwargs_for_projected():
    cfg = config.load(None, ["model.name=pix2pix", *PROJECTED]).model
    assert discriminator_kwargs(cfg, condition_channels=3) == dict(ndf=64, init_type="normal", init_gain=0.02,
                                                                   condition_channels=3)
    cfg.minibatch_std = True
    with pytest.raises(ValueError, match="minibatch_std"):
        discriminator_kwargs(cfg)
