"""pix2pix (Isola, Zhu, Zhou, Efros, CVPR 2017): conditional GAN, U-Net G, PatchGAN D on (input, output), L1.

Off by default, `model.lambda_perceptual` adds pix2pixHD's perceptual loss (translate.losses.perceptual_loss; the
paper's weight is 10) on a frozen training EfficientNet (`model.perceptual_encoder`, Lite2 by default; never Lite0,
the judge). The frozen net is not one of the model's nets: no optimizer, no DDP, no checkpoint; rebuilt from its
package.

With `model.colour_hints`, G also reads sparse colour hints drawn from the target photo (translate/data/hints.py;
Zhang et al. 2017): 4 planes appended to the input, so G maps (sketch, hints) -> photo. D still judges (sketch,
photo): whether the output follows the hints is L1's and the perceptual loss's job, exactly as for the sketch. The
export records `hint_channels`, and every way of running it (convert, serve, the API) feeds zeros when no hint is
given: 1/8 of the training samples carry none. Such a model runs in eval mode (model.inference_mode=eval, required):
pix2pix's train-mode inference normalises each image by its own statistics, which removes whatever is uniform
across the image, a bag's colour first. Measured at step 1,000 of the handbag preset: ten hints moved the colour
error from 44.9 to 44.8 in train mode and from 41.8 to 35.6 in eval mode.

With `model.domain_weight` > 0, DANN (Ganin et al. 2016, JMLR eq. 9-10, the GRL of sec. 5) inside the translator:
a domain classifier behind a gradient reversal layer sees G's encoder features (`model.domain_stages` of a
pretrained-encoder U-Net, each averaged over positions) of the paired inputs (source: dataset edges) and of
`data.target` (unpaired inputs of the kind people give: hand-drawn sketches), and the reversed gradient pushes the
encoder to make the two alike, so that the decoder, trained on edges, meets drawn sketches as it met edges.
L_G += domain_weight * L_d, lambda_p = 2 / (1 + exp(-gamma p)) - 1 (sec. 5.2.2). domain_weight 0 is its own
baseline: no target is read, everything else is equal.

With `model.target_gan_weight` > 0, output-space adaptation (Tsai et al., CVPR 2018, "Learning to Adapt Structured
Output Space", eq. 2-4) instead: an unconditional discriminator D_T (same kind and size as D, on the output alone)
tells G's outputs from the paired inputs (source, eq. 4's label 1) from its outputs from `data.target`'s inputs, and
G gets  L_G += target_gan_weight * L_adv(G(target))  (eq. 2-3: the target outputs judged as source). The source
outputs are D_T's "real" side and get no gradient from it, so D_T measures only what tells the two kinds of input
apart in what G makes of them (white holes, smears), not what tells a translation from a photo: that is D's job.
A model that reads colour hints gets none on the target (there is no photo to draw them from), so D_T's source side
is then G's output from the same edges without hints: otherwise D_T would tell hinted colours from unhinted ones.
All batches go through G in one forward, so the decoder's batch statistics see every kind of input. Like
domain_weight, 0 is its own baseline and reads no target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from translate import losses
from translate.backbones import PRETRAINED_GENERATORS, build_discriminator, build_generator
from translate.backbones.encoders import FrozenFeatures
from translate.data import PairedDataset
from translate.data.hints import HINT_CHANNELS
from translate.models import adversarial
from translate.models.adversarial import GanOptions, discriminator_kwargs
from translate.models.common import EMA, Progress, adam, averaged, set_requires_grad
from translate.models.dann import domain_loss
from translate.models.export_spec import generator_spec
from translate.models.init_from import load_initial_weights


@dataclass
class Pix2PixConfig(GanOptions):
    """The paper's and reference implementation's defaults (facades, edges2handbags, ...)."""

    name: str = "pix2pix"
    generator: str = "unet_256"
    norm: str = "batch"
    dropout: bool = True
    gan_mode: str = "vanilla"
    inference_mode: str = "train"  # paper sec. 3.3: at test time dropout stays on and BN uses batch statistics
    lambda_l1: float = 100.0
    in_channels: int = 3
    out_channels: int = 3
    # unet_lite1/2: the pretrained encoder is not updated in the first N steps (backbones/pretrained_unet.py)
    freeze_encoder_steps: int = 0
    lambda_perceptual: float = 0.0  # pix2pixHD's perceptual loss (its weight: 10); 0 = off, as in pix2pix
    perceptual_encoder: str = "efficientnet_lite2"
    colour_hints: bool = False  # G also reads colour hints from the target photo (data/hints.py)
    domain_weight: float = 0.0  # > 0: DANN on G's encoder features against data.target's unpaired inputs
    domain_stages: list[int] = field(default_factory=lambda: [3, 4])  # encoder stages at strides 16 and 32
    domain_hidden: int = 256
    domain_layers: int = 1
    grl_gamma: float = 10.0
    target_gan_weight: float = 0.0  # > 0: output-space adaptation (D_T on G's outputs) against data.target's inputs


class Pix2Pix:
    """G: input -> output; D judges the concatenated (input, output) pair patch by patch."""

    def __init__(self, cfg: Pix2PixConfig):
        self.cfg = cfg
        if cfg.freeze_encoder_steps and cfg.generator not in PRETRAINED_GENERATORS:
            raise ValueError(f"model.freeze_encoder_steps needs a generator with a pretrained encoder "
                             f"({', '.join(PRETRAINED_GENERATORS)}), got {cfg.generator!r}")
        if cfg.colour_hints and cfg.generator in PRETRAINED_GENERATORS and cfg.in_channels != 3:
            raise ValueError(f"model.colour_hints with {cfg.generator} needs an RGB input (in_channels 3), got "
                             f"{cfg.in_channels}")
        if cfg.domain_weight > 0 and cfg.target_gan_weight > 0:
            raise ValueError("model.domain_weight and model.target_gan_weight are two ways to adapt to data.target "
                             "(on the encoder's features, on the outputs); set one of them")
        if cfg.colour_hints and cfg.inference_mode != "eval":
            raise ValueError("model.colour_hints needs model.inference_mode=eval: train-mode inference normalises "
                             "each image by its own statistics, which removes the colour the hints ask for")
        self.hint_channels = HINT_CHANNELS if cfg.colour_hints else 0
        generator = build_generator(cfg.generator, cfg.in_channels + self.hint_channels, cfg.out_channels,
                                    ngf=cfg.ngf, norm=cfg.norm,
                                    dropout=cfg.dropout, init_type=cfg.init_type, init_gain=cfg.init_gain)
        discriminator = build_discriminator(cfg.discriminator, cfg.in_channels + cfg.out_channels,
                                            **discriminator_kwargs(cfg, condition_channels=cfg.in_channels))
        self.raw = {"G": generator, "D": discriminator}  # unwrapped modules: export, EMA, frozen-D forwards
        self.nets = dict(self.raw)  # replaced by the Accelerate-prepared versions
        self.optimizers = {
            "G": adam(generator.parameters(), lr=cfg.lr, beta1=cfg.beta1),
            "D": adam(discriminator.parameters(), lr=cfg.lr, beta1=cfg.beta1),
        }
        self.adapt = cfg.domain_weight > 0
        if self.adapt:  # weight 0: no classifier at all (DDP would wait for gradients of an unused net)
            self._add_domain_classifier(generator)
        self.adapt_outputs = cfg.target_gan_weight > 0
        if self.adapt_outputs:
            self.raw["D_T"] = build_discriminator(cfg.discriminator, cfg.out_channels, **discriminator_kwargs(cfg))
            self.nets["D_T"] = self.raw["D_T"]
            self.optimizers["D_T"] = adam(self.raw["D_T"].parameters(), lr=cfg.lr, beta1=cfg.beta1)
        load_initial_weights(cfg.init_from, {"G": generator})
        self.ema = {"G": EMA(generator, cfg.tricks.ema_decay)} if cfg.tricks.ema_decay > 0 else {}
        self.extra_state = {f"ema_{k}": v for k, v in self.ema.items()}
        self.perceptual = FrozenFeatures(cfg.perceptual_encoder) if cfg.lambda_perceptual > 0 else None

    def _add_domain_classifier(self, generator) -> None:
        cfg = self.cfg
        if cfg.generator not in PRETRAINED_GENERATORS:
            raise ValueError(f"model.domain_weight needs a generator with a pretrained encoder "
                             f"({', '.join(PRETRAINED_GENERATORS)}), got {cfg.generator!r}")
        stages = tuple(cfg.domain_stages)
        if not stages or any(s not in range(len(generator.encoder.feature_info.channels())) for s in stages):
            raise ValueError(f"model.domain_stages must name encoder stages 0-4, got {cfg.domain_stages}")
        self.raw["domain"] = build_discriminator("domain", generator.stage_channels(stages), hidden=cfg.domain_hidden,
                                                 layers=cfg.domain_layers, init_type="kaiming")
        self.nets["domain"] = self.raw["domain"]
        self.optimizers["domain"] = adam(self.raw["domain"].parameters(), lr=cfg.lr, beta1=cfg.beta1)

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        cfg, tricks, step = self.cfg, self.cfg.tricks, progress.step
        G, D = self.nets["G"], self.nets["D"]
        real_a, real_b = batch["A"], batch["B"]
        g_input = self.generator_input(batch)
        if self.adapt:  # one forward: the encoder on edges and drawn sketches, the decoder on the edges
            fake_b, domain_features = G(g_input, target=self.target_input(batch),
                                        pooled_stages=tuple(cfg.domain_stages))
        elif self.adapt_outputs:  # one forward of every batch: the decoder's batch statistics see them all
            unhinted_source = [self.without_hints(real_a)] if self.hint_channels else []
            outputs = G(torch.cat([g_input, *unhinted_source, self.target_input(batch)])).split(real_a.shape[0])
            fake_b, source_t, fake_t = outputs[0], outputs[-2], outputs[-1]
        else:
            fake_b = G(g_input)

        set_requires_grad(self.raw["D"], True)
        for k in range(tricks.d_steps):
            if k:
                with torch.no_grad():
                    fake_b_d = G(g_input)
            else:
                fake_b_d = fake_b
            self.optimizers["D"].zero_grad(set_to_none=True)
            loss_d = adversarial.discriminator_loss(
                D, torch.cat([real_a, real_b], 1), torch.cat([real_a, fake_b_d], 1), cfg.gan_mode, tricks, step)
            accelerator.backward(loss_d)
            self.optimizers["D"].step()
        out = {}
        if self.adapt_outputs:  # Tsai et al. eq. 4: source outputs are D_T's real side, target outputs its fake side
            set_requires_grad(self.raw["D_T"], True)
            self.optimizers["D_T"].zero_grad(set_to_none=True)
            out["loss_D_T"] = adversarial.discriminator_loss(self.nets["D_T"], source_t.detach(), fake_t, cfg.gan_mode,
                                                             tricks, step)
            accelerator.backward(out["loss_D_T"])
            self.optimizers["D_T"].step()
            set_requires_grad(self.raw["D_T"], False)

        set_requires_grad(self.raw["D"], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_g_gan = adversarial.generator_loss(self.raw["D"], torch.cat([real_a, fake_b], 1), cfg.gan_mode, tricks,
                                                step)
        loss_g_l1 = losses.l1_loss(fake_b, real_b) * cfg.lambda_l1
        if self.perceptual is not None:
            features = self.perceptual.to(real_b.device)  # a no-op after the first step
            with torch.no_grad():
                real_features = features(real_b)
            out["loss_G_perceptual"] = losses.perceptual_loss(features(fake_b), real_features) * cfg.lambda_perceptual
        loss_g = loss_g_gan + loss_g_l1 + out.get("loss_G_perceptual", 0.0)
        if self.adapt_outputs:  # eq. 2-3: the target outputs judged as source ones
            out["loss_G_T"] = adversarial.generator_loss(self.raw["D_T"], fake_t, cfg.gan_mode, tricks, step)
            loss_g = loss_g + cfg.target_gan_weight * out["loss_G_T"]
        if self.adapt:
            self.optimizers["domain"].zero_grad(set_to_none=True)
            lambd = losses.grl_lambda(progress.fraction, cfg.grl_gamma)
            out["loss_domain"], out["acc_domain"] = domain_loss(self.nets["domain"], self.raw["domain"],
                                                                domain_features, real_a.shape[0], lambd)
            loss_g = loss_g + cfg.domain_weight * out["loss_domain"]
        accelerator.backward(loss_g)
        if step < cfg.freeze_encoder_steps:  # Adam skips a grad of None; requires_grad stays for DDP's sake
            for p in self.raw["G"].encoder_parameters():
                p.grad = None
        self.optimizers["G"].step()
        if self.adapt:
            self.optimizers["domain"].step()
        for name, ema in self.ema.items():
            ema.update(self.raw[name])
        return {"loss_D": loss_d.item(), "loss_G_GAN": loss_g_gan.item(), "loss_G_L1": loss_g_l1.item(),
                **{k: v.item() for k, v in out.items()}}

    def generator_input(self, batch: dict) -> torch.Tensor:
        """The sketch, followed by its hint planes when the model reads hints."""
        return torch.cat([batch["A"], batch["hints"]], 1) if self.hint_channels else batch["A"]

    def target_input(self, batch: dict) -> torch.Tensor:
        """The unpaired target inputs as G reads them: no hints (there is no photo to draw them from)."""
        return self.without_hints(batch["T"]) if self.hint_channels else batch["T"]

    def without_hints(self, sketches: torch.Tensor) -> torch.Tensor:
        """`sketches` as G reads them when no hint is given: empty hint planes appended."""
        return torch.cat([sketches, sketches.new_zeros(sketches.shape[0], self.hint_channels, *sketches.shape[2:])], 1)

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        shown = {"input": batch["A"]}
        if self.hint_channels:  # the hints painted over the sketch, as a person would see them
            colour, mask = batch["hints"][:, :3], batch["hints"][:, 3:]
            shown["hints"] = batch["A"].expand_as(colour) * (1 - mask) + colour
        return {**shown, "output": self.raw["G"](self.generator_input(batch)), "target": batch["B"]}

    def export_nets(self) -> dict:
        cfg = self.cfg
        net = averaged(self.raw["G"], self.ema.get("G"))
        spec = generator_spec(net, cfg.generator, cfg.in_channels, cfg.out_channels, cfg.inference_mode,
                              hint_channels=self.hint_channels, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout)
        return {"G": (net, spec)}


def make_dataset(data_cfg, cfg: Pix2PixConfig, train: bool = True) -> PairedDataset:
    adapts = cfg.domain_weight > 0 or cfg.target_gan_weight > 0
    if adapts and not data_cfg.target:
        option = "model.domain_weight" if cfg.domain_weight > 0 else "model.target_gan_weight"
        raise ValueError(f"{option} needs data.target: a folder of unpaired inputs of the kind to adapt to (e.g. "
                         f"hand-drawn sketches)")
    return PairedDataset(data_cfg.root, phase=data_cfg.phase, channels_a=cfg.in_channels,
                         channels_b=cfg.out_channels, direction=data_cfg.direction, load_size=data_cfg.load_size,
                         crop_size=data_cfg.crop_size, preprocess=data_cfg.preprocess, flip=data_cfg.flip,
                         train=train, sketch_augment=data_cfg.sketch_augment,
                         sketch_augment_p=data_cfg.sketch_augment_p, colour_hints=cfg.colour_hints,
                         target=data_cfg.target if train and adapts else "")
