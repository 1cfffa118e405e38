"""Domain Transfer Network (Taigman, Polyak, Wolf, ICLR 2017): G = g(f(x)) maps source images into the target
domain while keeping f(x), with f FIXED (a classifier trained on source labels, or a pretrained timm encoder).

Losses (sec. 3, eq. 1-6), with D a 3-way classifier: class 0 = D1, G(source); 1 = D2, G(target); 2 = D3, real
target:
  L_D    = -E_s log D1(G(x)) - E_t log D2(G(x)) - E_t log D3(x)                        (eq. 3)
  L_GANG = -E_s log D3(G(x)) - E_t log D3(G(x))                                        (eq. 2)
  L_CONST = d(f(x), f(G(x))) over source x                                            (eq. 4)
  L_TID   = d2(x, G(x)) over target x                                                  (eq. 5)
  L_G = L_GANG + alpha L_CONST + beta L_TID + gamma L_TV                               (eq. 7; TV eq. 6)
Digits: alpha = beta = 15, gamma = 0 (sec. 5.1). Gradients of every G term reach g; f(G(x)) is differentiated
through the frozen f (its parameters get no gradient, its input does). f is kept out of `nets` (DDP cannot wrap a
network without trainable parameters), frozen in eval mode when the model is built, before anything is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from translate import losses
from translate.backbones import DTNGenerator, build_discriminator, build_feature_encoder, freeze, init_weights
from translate.data.labeled import DomainPairDataset, LabeledDataset
from translate.export import load_classifier
from translate.models.classifier import pretrained_arg
from translate.models.common import Progress, adam, set_requires_grad
from translate.models.export_spec import generator_spec

FAKE_SOURCE, FAKE_TARGET, REAL_TARGET = 0, 1, 2  # the paper's D1, D2, D3


@dataclass
class DTNConfig:
    name: str = "dtn"
    encoder: str = ""  # f: a classifier export folder (translate train recipes/classifier_digits.yaml) or timm:NAME
    pretrained: str = "default"  # timm f: "default" the registered offline weights, or a weights file
    image_size: int = 32  # timm f's input side (a classifier export says its own)
    channels: int = 3  # source images, and what f reads
    target_channels: int = 0  # target images and G's output; 0 = channels. 1 for MNIST: G draws grey digits,
    #                           repeated to `channels` wherever f reads them
    ngf: int = 64
    ndf: int = 64
    n_layers_d: int = 3
    alpha: float = 15.0  # L_CONST
    beta: float = 15.0  # L_TID
    gamma: float = 0.0  # L_TV
    tv_beta: float = 1.0  # the exponent B of eq. 6
    const_distance: str = "mse"  # d of L_CONST: mse | l1 | cosine
    lr: float = 3e-4
    beta1: float = 0.5


def fixed_encoder(cfg: DTNConfig) -> tuple[torch.nn.Module, dict]:
    """f and its description: the encoder of a classifier export, or a pretrained timm encoder."""
    if not cfg.encoder:
        raise ValueError("DTN needs model.encoder=EXPORT_DIR (a classifier export, the f of the paper) or "
                         "model.encoder=timm:NAME")
    if cfg.encoder.startswith("timm:"):
        description = {"arch": cfg.encoder, "kwargs": {"image_size": cfg.image_size}}
        return build_feature_encoder(cfg.encoder, pretrained=pretrained_arg(cfg.pretrained),
                                     image_size=cfg.image_size), description
    classifier, spec = load_classifier(cfg.encoder, with_spec=True)
    if spec["in_channels"] != cfg.channels:
        raise ValueError(f"model.encoder={cfg.encoder} reads {spec['in_channels']}-channel images, "
                         f"model.channels={cfg.channels}")
    return classifier.encoder, spec["encoder"]


class DTN:
    def __init__(self, cfg: DTNConfig):
        self.cfg = cfg
        f, self.encoder_description = fixed_encoder(cfg)
        # G = g(f(.)) as one module for export; its f holds the fixed weights and is frozen before any prepare
        self.target_channels = cfg.target_channels or cfg.channels
        self.generator = init_weights(DTNGenerator(cfg.channels, self.target_channels, self.encoder_description,
                                                   cfg.ngf))
        self.generator.f.load_state_dict(f.state_dict())
        self.f = freeze(self.generator.f)
        self.image_size = self.generator.image_size
        d = build_discriminator("class_d", self.target_channels, num_classes=3, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        self.raw = {"g": self.generator.g, "D": d}
        self.nets = dict(self.raw)
        self.optimizers = {"g": adam(self.raw["g"].parameters(), cfg.lr, cfg.beta1),
                           "D": adam(d.parameters(), cfg.lr, cfg.beta1)}
        self.extra_state = {}

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        f = self.f.to(accelerator.device)
        source, target = batch["source"], batch["target"]
        if source.shape[-1] != self.image_size or target.shape[-1] != self.image_size:
            raise ValueError(f"DTN: f reads {self.image_size} px images, the data gives {source.shape[-1]} px: "
                             f"set data.load_size and data.crop_size to {self.image_size}")
        n = source.shape[0]
        with accelerator.autocast():
            with torch.no_grad():
                f_x = f(torch.cat([source, self.for_f(target)]))
            fake = self.nets["g"](f_x)  # one forward of the DDP-wrapped g: [G(source); G(target)]

            set_requires_grad(self.raw["D"], True)
            self.optimizers["D"].zero_grad(set_to_none=True)
            # fakes and reals in separate batches, the fakes exactly as the G step shows them: with BatchNorm in D a
            # mixed batch normalises fakes with statistics the G step never reproduces (DCGAN practice)
            logits = torch.cat([self.nets["D"](fake.detach()), self.nets["D"](target)])
            loss_d = discriminator_loss(logits, n, target.shape[0])
            accelerator.backward(loss_d)
            self.optimizers["D"].step()

            set_requires_grad(self.raw["D"], False)  # called unwrapped: DDP never waits for D's gradients here
            self.optimizers["g"].zero_grad(set_to_none=True)
            out = self.generator_losses(fake, f_x, target)
            accelerator.backward(sum(out.values()))
            self.optimizers["g"].step()
        out["loss_D"] = loss_d
        return {k: v.item() for k, v in out.items()}

    def generator_losses(self, fake: torch.Tensor, f_x: torch.Tensor, target: torch.Tensor) -> dict:
        """The terms of L_G (eq. 7, weighted) for fake = [G(source); G(target)], f_x = [f(source); f(target)]."""
        cfg, n = self.cfg, fake.shape[0] - target.shape[0]
        out = {"loss_GANG": generator_loss(self.raw["D"](fake), n),
               "loss_CONST": cfg.alpha * losses.f_constancy_loss(f_x[:n], self.f(self.for_f(fake[:n])),
                                                                 cfg.const_distance),
               "loss_TID": cfg.beta * F.mse_loss(fake[n:].float(), target.float())}
        if cfg.gamma > 0:
            out["loss_TV"] = cfg.gamma * losses.tv_loss(fake, cfg.tv_beta)
        return out

    @torch.no_grad()
    def visuals(self, batch: dict) -> dict[str, torch.Tensor]:
        g, f = self.raw["g"], self.f.to(batch["source"].device)
        target = self.for_f(batch["target"])
        return {"source": batch["source"], "G(source)": self.for_f(g(f(batch["source"]))),
                "target": target, "G(target)": self.for_f(g(f(target)))}

    def for_f(self, images: torch.Tensor) -> torch.Tensor:
        """Target-domain images with f's channel count (grey digits repeated to RGB, as the paper feeds MNIST)."""
        return images if images.shape[1] == self.cfg.channels else images.expand(-1, self.cfg.channels, -1, -1)

    def export_nets(self) -> dict:
        cfg = self.cfg
        return {"G": (self.generator, generator_spec(self.generator, "dtn", cfg.channels, self.target_channels, "eval",
                                                     encoder=self.encoder_description, ngf=cfg.ngf))}


def discriminator_loss(logits: torch.Tensor, n_source: int, n_target: int) -> torch.Tensor:
    """Eq. 3 on D's logits for [G(source); G(target); real target] stacked in this order (mean per part)."""
    logits = logits.float()
    parts = logits.split([n_source, n_target, logits.shape[0] - n_source - n_target])
    return sum(F.cross_entropy(part, torch.full((part.shape[0],), label, device=logits.device))
               for part, label in zip(parts, (FAKE_SOURCE, FAKE_TARGET, REAL_TARGET)))


def generator_loss(logits: torch.Tensor, n_source: int) -> torch.Tensor:
    """Eq. 2 (L_GANG) on D's logits for [G(source); G(target)]: every generated image should be taken for a real
    target (D3); the source and target means are summed, as the two expectations of the paper."""
    logits = logits.float()
    return sum(F.cross_entropy(part, torch.full((part.shape[0],), REAL_TARGET, device=logits.device))
               for part in logits.split([n_source, logits.shape[0] - n_source]))


def make_dataset(data_cfg, cfg: DTNConfig, train: bool = True) -> DomainPairDataset:
    if not data_cfg.source or not data_cfg.target:
        raise ValueError("DTN needs data.source=DIR (labeled: DIR/<class>/<image>) and data.target=DIR")
    source = LabeledDataset(data_cfg.source, cfg.channels, data_cfg.load_size, data_cfg.crop_size,
                            data_cfg.preprocess, data_cfg.flip, train)
    return DomainPairDataset(source, data_cfg.target, cfg.target_channels or cfg.channels, data_cfg.load_size,
                             data_cfg.crop_size, data_cfg.preprocess, data_cfg.flip, train)
