"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020): one generator G, one PatchGAN D, and PatchNCE instead of a
cycle: a patch of G(x), seen through G's own encoder and a small MLP H_l (the net `F`), should match the patch of x
at the same place rather than the other patches of x (eq. 2, 3). Objective (eq. 5):

    L_GAN(G, D, X, Y) + lambda_X L_PatchNCE(G, H, X) + lambda_Y L_PatchNCE(G, H, Y)

CUT: lambda_X = lambda_Y = 1, the second term (PatchNCE between y and G(y)) acting as an identity loss; the official
code averages the two terms. FastCUT: lambda_X = 10, lambda_Y = 0, and flip equivariance (the input is mirrored half
of the time and the PatchNCE queries mirrored back). Defaults are the official code's
(taesungp/contrastive-unpaired-translation: options/, models/cut_model.py, models/networks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from translate import losses
from translate.backbones import build_discriminator, build_generator, init_weights
from translate.backbones.generators import encoder_features
from translate.models import adversarial
from translate.models.adversarial import GanOptions, discriminator_kwargs
from translate.models.common import EMA, Progress, adam, averaged, set_requires_grad
from translate.models.export_spec import generator_spec
from translate.models.init_from import load_initial_weights

# Where PatchNCE taps G. The official nce_layers 0,4,8,12,16 index its anti-aliased ResNet, where each downsampling
# is conv (stride 1), norm, ReLU, blur-pool: 4 modules, not 3. By meaning they are the padded input (0), the first
# and the second downsampling conv (4, 8), and the first and the fifth residual block (12, 16), as the paper lists
# them. Our Sequential is pytorch-CycleGAN-and-pix2pix's: pad 0, conv 1, norm 2, ReLU 3, stride-2 convs 4
# and 7, residual blocks from 10; so the same meaning is 0, 4, 7, 10, 14. The downsampling convs here are the
# stride-2 ones, at half the resolution of the official taps (which blur-pool after the conv). The official list
# does not depend on the block count, so resnet_6blocks is tapped at its first and fifth block too.
NCE_LAYERS = {"resnet_9blocks": (0, 4, 7, 10, 14), "resnet_6blocks": (0, 4, 7, 10, 14)}

# What model.mode sets, for each of these fields left unset (None): the official cut_model.py's defaults per
# CUT_mode; FastCUT is CUT with lambda_X = 10, lambda_Y = 0 (eq. 5) and flip equivariance.
MODES = {"cut": {"lambda_nce": 1.0, "nce_idt": True, "flip_equivariance": False},
         "fastcut": {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True}}


@dataclass
class CUTConfig(GanOptions):
    """The official CUT defaults. `mode` picks the paper's setting; the fields it governs default to None and are
    resolved here, when the config is built, so the saved config.yaml holds plain values and a value the recipe sets
    wins over the mode's."""

    name: str = "cut"
    init_type: str = "xavier"  # official base_options: --init_type xavier, --init_gain 0.02 (G, D and F)
    mode: str = "cut"  # cut | fastcut
    lambda_gan: float = 1.0
    lambda_nce: float | None = None  # None: the mode's (1 for cut, 10 for fastcut)
    nce_idt: bool | None = None  # PatchNCE(y, G(y)) as an identity term; None: the mode's (on for cut)
    flip_equivariance: bool | None = None  # None: the mode's (on for fastcut)
    nce_layers: list[int] = field(default_factory=list)  # indices into G's Sequential; empty: NCE_LAYERS[generator]
    nce_t: float = 0.07  # the temperature tau of eq. 2
    num_patches: int = 256  # sampled locations per layer (all of them where a layer has fewer)
    netf_nc: int = 256  # output channels of each MLP H_l
    channels_a: int = 3
    channels_b: int = 3

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"model.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for key, value in MODES[self.mode].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if not self.lambda_nce > 0:
            raise ValueError(f"model.lambda_nce must be positive (without PatchNCE, F has nothing to learn), got "
                             f"{self.lambda_nce}")
        if self.generator not in NCE_LAYERS:
            raise ValueError(f"model.generator={self.generator}: CUT taps a ResNet generator's encoder; valid: "
                             f"{', '.join(NCE_LAYERS)}")
        self.nce_layers = list(self.nce_layers or NCE_LAYERS[self.generator])


class PatchMLP(nn.Module):
    """The paper's H_l (sec. 3.2), the official PatchSampleF ('mlp_sample'): per tapped layer, a 2-layer MLP
    (Linear, ReLU, Linear to `nc`) on the features at the sampled locations, then L2 normalisation. Built from known
    channel counts rather than lazily on the first batch, so that DDP, the optimizer and checkpoints all see it."""

    def __init__(self, channels: Sequence[int], nc: int = 256):
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)) for c in channels)

    def forward(self, features: list[torch.Tensor], patch_ids: list[torch.Tensor]) -> list[torch.Tensor]:
        """features: per layer (N, C, H, W); patch_ids: per layer, flat indices into H * W. Returns per layer
        (N * P, nc), grouped per image, as losses.patch_nce_loss takes them."""
        out = []
        for mlp, feature, ids in zip(self.mlps, features, patch_ids):
            x = mlp(feature.flatten(2)[:, :, ids].transpose(1, 2).flatten(0, 1))
            out.append(x / (x.norm(dim=1, keepdim=True) + 1e-7))  # the official Normalize(2)
        return out


def tap_channels(generator: nn.Module, in_channels: int, layers: Sequence[int]) -> list[int]:
    """Channels of each tapped layer, from a dry forward on a tiny input (eval mode, so no BatchNorm statistics
    move and no dropout draw is made)."""
    training = generator.training
    generator.eval()
    with torch.no_grad():
        side = 4 * generator.size_multiple  # large enough for every reflection pad of the residual blocks
        features = encoder_features(generator, torch.zeros(1, in_channels, side, side), layers)
    generator.train(training)
    return [f.shape[1] for f in features]


class CUT:
    """G: A -> B; F: the MLPs H_l; D judges domain-B images. Named as the official netG, netF, netD."""

    def __init__(self, cfg: CUTConfig):
        if cfg.nce_idt and cfg.channels_a != cfg.channels_b:
            raise ValueError("model.nce_idt needs channels_a == channels_b (G is fed B images)")
        self.cfg = cfg
        generator = build_generator(cfg.generator, cfg.channels_a, cfg.channels_b, ngf=cfg.ngf, norm=cfg.norm,
                                    dropout=cfg.dropout, init_type=cfg.init_type, init_gain=cfg.init_gain)
        mlp = PatchMLP(tap_channels(generator, cfg.channels_a, cfg.nce_layers), cfg.netf_nc)
        self.raw = {"G": generator, "F": init_weights(mlp, cfg.init_type, cfg.init_gain),
                    "D": build_discriminator(cfg.discriminator, cfg.channels_b, **discriminator_kwargs(cfg))}
        self.nets = dict(self.raw)
        # F gets G's Adam settings, as in the official code
        self.optimizers = {name: adam(net.parameters(), lr=cfg.lr, beta1=cfg.beta1) for name, net in self.raw.items()}
        load_initial_weights(cfg.init_from, {"G_AB": generator})  # exported as G_AB
        self.ema = {"G": EMA(generator, cfg.tricks.ema_decay)} if cfg.tricks.ema_decay > 0 else {}
        self.extra_state = {f"ema_{k}": v for k, v in self.ema.items()}

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        cfg = self.cfg
        real_a, real_b = batch["A"], batch["B"]
        # One G forward on [x; y] when the identity term is on, as the official does.
        real = torch.cat([real_a, real_b]) if cfg.nce_idt else real_a
        flipped = cfg.flip_equivariance and torch.rand(()).item() < 0.5
        with accelerator.autocast():  # the encoder taps run on the unwrapped G, outside the prepared forward
            fake = self.nets["G"](real.flip(3) if flipped else real)
            loss_d = self.discriminator_step(fake[:len(real_a)], real_b, accelerator, progress.step)
            out = self.generator_step(real_a, real_b, fake, flipped, accelerator, progress.step)
        return {"loss_D": loss_d.item(), **{k: v.item() for k, v in out.items()}}

    def discriminator_step(self, fake_b: torch.Tensor, real_b: torch.Tensor, accelerator, step: int) -> torch.Tensor:
        """D on real B and the detached G(x); tricks.d_steps updates on the same fakes."""
        cfg = self.cfg
        set_requires_grad(self.raw["D"], True)
        for _ in range(cfg.tricks.d_steps):
            self.optimizers["D"].zero_grad(set_to_none=True)
            loss = adversarial.discriminator_loss(self.nets["D"], real_b, fake_b, cfg.gan_mode, cfg.tricks, step)
            accelerator.backward(loss)
            self.optimizers["D"].step()
        return loss

    def generator_step(self, real_a: torch.Tensor, real_b: torch.Tensor, fake: torch.Tensor, flipped: bool,
                       accelerator, step: int) -> dict[str, torch.Tensor]:
        """G and F on eq. 5 for fake = G([x; y]) (or G(x)); D frozen and called unwrapped, so DDP never waits for
        its gradients. The losses are returned weighted."""
        cfg, n = self.cfg, real_a.shape[0]
        set_requires_grad(self.raw["D"], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        self.optimizers["F"].zero_grad(set_to_none=True)
        out = {"loss_G_GAN": cfg.lambda_gan * adversarial.generator_loss(self.raw["D"], fake[:n], cfg.gan_mode,
                                                                          cfg.tricks, step),
               "loss_NCE": cfg.lambda_nce * self.patch_nce(real_a, fake[:n], flipped)}
        nce = out["loss_NCE"]
        if cfg.nce_idt:
            out["loss_NCE_Y"] = cfg.lambda_nce * self.patch_nce(real_b, fake[n:], flipped)
            nce = (nce + out["loss_NCE_Y"]) / 2
        accelerator.backward(out["loss_G_GAN"] + nce)
        self.optimizers["G"].step()
        self.optimizers["F"].step()
        for name, ema in self.ema.items():
            ema.update(self.raw[name])
        return out

    def patch_nce(self, source: torch.Tensor, translated: torch.Tensor, flipped: bool) -> torch.Tensor:
        """L_PatchNCE (eq. 3) between images and their translations, averaged over the tapped layers: queries from
        G's encoder on the translations (mirrored back when the input was mirrored), keys from the sources at the
        same random locations. Keys are constants, so they are computed without a graph. The locations come from
        torch's global CPU RNG, which checkpoints carry."""
        cfg, G = self.cfg, self.raw["G"]
        queries = encoder_features(G, translated, cfg.nce_layers)
        if flipped:
            queries = [q.flip(3) for q in queries]
        patch_ids = [torch.randperm(q.shape[2] * q.shape[3])[:cfg.num_patches].to(q.device) for q in queries]
        queries = self.nets["F"](queries, patch_ids)
        with torch.no_grad():
            keys = self.raw["F"](encoder_features(G, source, cfg.nce_layers), patch_ids)
        return sum(losses.patch_nce_loss(q, k, source.shape[0], cfg.nce_t) for q, k in zip(queries, keys)) / len(keys)

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        G = self.raw["G"]
        out = {"real_A": batch["A"], "fake_B": G(batch["A"]), "real_B": batch["B"]}
        if self.cfg.nce_idt:
            out["idt_B"] = G(batch["B"])
        return out

    def export_nets(self) -> dict:
        cfg = self.cfg
        net = averaged(self.raw["G"], self.ema.get("G"))
        return {"G_AB": (net, generator_spec(net, cfg.generator, cfg.channels_a, cfg.channels_b, cfg.inference_mode,
                                             ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout))}
