"""What every image GAN of the toolkit shares: its options (GanOptions), the discriminator's construction and the
adversarial half of a step, with the optional stabilisers (GanTricks)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from translate import losses
from translate.data.diffaugment import diff_augment


@dataclass
class GanTricks:
    """Stabilisers from the GAN literature; each is off unless a recipe turns it on."""

    real_label: float = 1.0  # one-sided label smoothing (Salimans et al. 2016), e.g. 0.9
    label_flip_prob: float = 0.0  # swap a sample's real/fake targets with this probability
    instance_noise: float = 0.0  # sigma of Gaussian noise on D inputs (Sonderby et al. 2017), annealed to 0
    instance_noise_steps: int = 0  # ... over this many steps
    d_steps: int = 1  # discriminator updates per generator update (on the same batch, fresh fakes)
    diffaugment: str = ""  # DiffAugment policy on real and fake D inputs, e.g. "color,translation,cutout"
    r1_gamma: float = 0.0  # R1 penalty on real inputs (Mescheder et al. 2018)
    gp_weight: float = 10.0  # WGAN-GP penalty weight, used when gan_mode is wgangp
    ema_decay: float = 0.0  # > 0: keep an EMA of generator weights and export it


@dataclass
class GanOptions:
    """The fields every image GAN config has. A model's Config subclasses this and redeclares the fields whose paper
    default differs (pix2pix: U-Net, batch norm, vanilla GAN; CycleGAN: ResNet, instance norm, LSGAN); keys stay flat
    (`model.ngf`, not `model.gan.ngf`), so recipes and overrides read the same for every model."""

    name: str = ""
    generator: str = "resnet_9blocks"
    ngf: int = 64
    norm: str = "instance"
    dropout: bool = False
    discriminator: str = "patch"
    ndf: int = 64
    n_layers_d: int = 3  # 70x70 PatchGAN
    spectral_norm: bool = False
    minibatch_std: bool = False
    init_type: str = "normal"
    init_gain: float = 0.02
    gan_mode: str = "lsgan"
    lr: float = 2e-4
    beta1: float = 0.5
    inference_mode: str = "eval"  # how exports run: "eval", or "train" (pix2pix: dropout on, batch statistics)
    # fine-tune: an export folder or a reference *_net_G*.pth whose generator weights replace the initial ones
    # (same architecture; translate/training/init_from.py)
    init_from: str = ""
    tricks: GanTricks = field(default_factory=GanTricks)


def discriminator_kwargs(cfg: GanOptions, condition_channels: int = 0) -> dict:
    """Options every recipe shares for its discriminators; PatchGAN depth only where it applies.

    condition_channels: how many leading channels of D's input are a condition rather than the judged image
    (pix2pix: its input image). PatchGAN and PixelGAN judge all channels together and ignore the split; the projected
    D needs it, because its ImageNet features take one RGB image at a time. The projected D's heads are the
    official's (BatchNorm, always spectrally normalised), so `model.norm` and `model.spectral_norm` do not reach them.
    """
    kw = dict(ndf=cfg.ndf, init_type=cfg.init_type, init_gain=cfg.init_gain)
    if cfg.discriminator == "projected":
        if cfg.minibatch_std:
            raise ValueError("model.minibatch_std does not apply to model.discriminator=projected")
        return {**kw, "condition_channels": condition_channels}
    kw["norm"] = cfg.norm
    if cfg.discriminator == "patch":
        kw["n_layers"] = cfg.n_layers_d
    if cfg.spectral_norm:
        kw["spectral_norm"] = True
    if cfg.minibatch_std:
        kw["minibatch_std"] = True
    return kw


def discriminator_input(x: torch.Tensor, tricks: GanTricks, step: int) -> torch.Tensor:
    """What D sees: augmented (DiffAugment, same op for real and fake) and noised (instance noise)."""
    if tricks.diffaugment:
        x = diff_augment(x, tricks.diffaugment)
    return losses.instance_noise(x, tricks.instance_noise, step, tricks.instance_noise_steps)


def discriminator_loss(D, real, fake, gan_mode: str, tricks: GanTricks, step: int) -> torch.Tensor:
    """D's loss on one real and one (detached) fake batch, fake first as in the reference."""
    fake_in = discriminator_input(fake.detach(), tricks, step)
    real_in = discriminator_input(real, tricks, step)
    if tricks.r1_gamma:
        real_in = real_in.detach().requires_grad_(True)
    fake_logits = D(fake_in)
    real_logits = D(real_in)
    if gan_mode in ("vanilla", "lsgan"):
        real_target, fake_target = losses.smoothed_labels(real_logits, tricks.real_label, tricks.label_flip_prob)
        loss = losses.discriminator_loss(gan_mode, real_logits, fake_logits, real_target, fake_target)
    else:
        loss = losses.discriminator_loss(gan_mode, real_logits, fake_logits)
    if gan_mode == "wgangp":
        loss = loss + losses.gradient_penalty(D, real_in.detach(), fake_in.detach(), weight=tricks.gp_weight)
    if tricks.r1_gamma:
        loss = loss + losses.r1_penalty(real_logits, real_in, tricks.r1_gamma)
    return loss


def generator_loss(D, fake, gan_mode: str, tricks: GanTricks, step: int) -> torch.Tensor:
    """G's adversarial loss through a frozen D (D's parameters get no gradient)."""
    return losses.generator_loss(gan_mode, D(discriminator_input(fake, tricks, step)))
