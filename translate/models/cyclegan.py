"""CycleGAN (Zhu, Park, Isola, Efros, ICCV 2017): two generators, two PatchGAN Ds, cycle + identity losses, pools.

Names: G_AB maps domain A to B (the reference's netG_A), G_BA maps B to A (netG_B); D_B judges domain-B images
(the reference's netD_A), D_A judges domain-A images (netD_B).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from translate import losses
from translate.backbones import build_discriminator, build_generator
from translate.data import UnpairedDataset
from translate.models import adversarial
from translate.models.adversarial import GanOptions, discriminator_kwargs
from translate.models.common import EMA, ImagePool, Progress, adam, averaged, set_requires_grad
from translate.models.export_spec import generator_spec
from translate.models.init_from import load_initial_weights


@dataclass
class CycleGANConfig(GanOptions):
    """The paper's and reference implementation's defaults (horse2zebra, monet2photo, ...)."""

    name: str = "cyclegan"
    lambda_a: float = 10.0  # cycle A -> B -> A
    lambda_b: float = 10.0  # cycle B -> A -> B
    lambda_identity: float = 0.5  # identity loss weight, relative to lambda_a / lambda_b (paper sec. 5.2)
    pool_size: int = 50
    channels_a: int = 3
    channels_b: int = 3


class CycleGAN:
    def __init__(self, cfg: CycleGANConfig):
        if cfg.lambda_identity > 0 and cfg.channels_a != cfg.channels_b:
            raise ValueError("model.lambda_identity > 0 needs channels_a == channels_b (G_AB is fed B images)")
        self.cfg = cfg
        g_kw = dict(ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout, init_type=cfg.init_type,
                    init_gain=cfg.init_gain)
        self.raw = {
            "G_AB": build_generator(cfg.generator, cfg.channels_a, cfg.channels_b, **g_kw),
            "G_BA": build_generator(cfg.generator, cfg.channels_b, cfg.channels_a, **g_kw),
            "D_A": build_discriminator(cfg.discriminator, cfg.channels_a, **discriminator_kwargs(cfg)),
            "D_B": build_discriminator(cfg.discriminator, cfg.channels_b, **discriminator_kwargs(cfg)),
        }
        self.nets = dict(self.raw)
        r = self.raw
        self.optimizers = {
            "G": adam(itertools.chain(r["G_AB"].parameters(), r["G_BA"].parameters()), lr=cfg.lr, beta1=cfg.beta1),
            "D": adam(itertools.chain(r["D_A"].parameters(), r["D_B"].parameters()), lr=cfg.lr, beta1=cfg.beta1),
        }
        self.pools = {"A": ImagePool(cfg.pool_size), "B": ImagePool(cfg.pool_size)}
        load_initial_weights(cfg.init_from, {k: r[k] for k in ("G_AB", "G_BA")})
        self.ema = {k: EMA(r[k], cfg.tricks.ema_decay) for k in ("G_AB", "G_BA")} if cfg.tricks.ema_decay > 0 else {}
        self.extra_state = {"pool_A": self.pools["A"], "pool_B": self.pools["B"],
                            **{f"ema_{k}": v for k, v in self.ema.items()}}

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        cfg, tricks, n, step = self.cfg, self.cfg.tricks, self.nets, progress.step
        real_a, real_b = batch["A"], batch["B"]
        fake_b = n["G_AB"](real_a)
        rec_a = n["G_BA"](fake_b)
        fake_a = n["G_BA"](real_b)
        rec_b = n["G_AB"](fake_a)

        # Generators: whole discriminators frozen, called unwrapped so DDP never waits for their gradients.
        set_requires_grad([self.raw["D_A"], self.raw["D_B"]], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        out = {}
        if cfg.lambda_identity > 0:
            out["loss_idt_A"] = losses.identity_loss(n["G_AB"](real_b), real_b) * cfg.lambda_b * cfg.lambda_identity
            out["loss_idt_B"] = losses.identity_loss(n["G_BA"](real_a), real_a) * cfg.lambda_a * cfg.lambda_identity
        out["loss_G_AB"] = adversarial.generator_loss(self.raw["D_B"], fake_b, cfg.gan_mode, tricks, step)
        out["loss_G_BA"] = adversarial.generator_loss(self.raw["D_A"], fake_a, cfg.gan_mode, tricks, step)
        out["loss_cycle_A"] = losses.cycle_loss(rec_a, real_a) * cfg.lambda_a
        out["loss_cycle_B"] = losses.cycle_loss(rec_b, real_b) * cfg.lambda_b
        accelerator.backward(sum(out.values()))
        self.optimizers["G"].step()
        for name, ema in self.ema.items():
            ema.update(self.raw[name])

        set_requires_grad([self.raw["D_A"], self.raw["D_B"]], True)
        pooled_b, pooled_a = self.pools["B"].query(fake_b), self.pools["A"].query(fake_a)
        for _ in range(tricks.d_steps):
            self.optimizers["D"].zero_grad(set_to_none=True)
            loss_d_b = adversarial.discriminator_loss(n["D_B"], real_b, pooled_b, cfg.gan_mode, tricks, step)
            accelerator.backward(loss_d_b)
            loss_d_a = adversarial.discriminator_loss(n["D_A"], real_a, pooled_a, cfg.gan_mode, tricks, step)
            accelerator.backward(loss_d_a)
            self.optimizers["D"].step()
        out["loss_D_B"], out["loss_D_A"] = loss_d_b, loss_d_a
        return {k: v.item() for k, v in out.items()}

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        g_ab, g_ba = self.raw["G_AB"], self.raw["G_BA"]
        fake_b, fake_a = g_ab(batch["A"]), g_ba(batch["B"])
        return {"real_A": batch["A"], "fake_B": fake_b, "rec_A": g_ba(fake_b),
                "real_B": batch["B"], "fake_A": fake_a, "rec_B": g_ab(fake_a)}

    def export_nets(self) -> dict:
        cfg = self.cfg
        channels = {"G_AB": (cfg.channels_a, cfg.channels_b), "G_BA": (cfg.channels_b, cfg.channels_a)}
        exported = {}
        for name, (c_in, c_out) in channels.items():
            net = averaged(self.raw[name], self.ema.get(name))
            exported[name] = (net, generator_spec(net, cfg.generator, c_in, c_out, cfg.inference_mode,
                                                  ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout))
        return exported


def make_dataset(data_cfg, cfg: CycleGANConfig, train: bool = True) -> UnpairedDataset:
    return UnpairedDataset(data_cfg.root, phase=data_cfg.phase, channels_a=cfg.channels_a,
                           channels_b=cfg.channels_b, direction=data_cfg.direction, load_size=data_cfg.load_size,
                           crop_size=data_cfg.crop_size, preprocess=data_cfg.preprocess, flip=data_cfg.flip,
                           train=train)
