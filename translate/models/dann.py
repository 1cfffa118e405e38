"""DANN (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016): features F trained to classify labeled source
images while a domain classifier D, behind a gradient reversal layer, fails to tell source from target features.

One backward of  L = L_y(source) + domain_weight * L_d(source, target)  (JMLR eq. 9-10 with the GRL of sec. 5):
D minimises L_d, the reversed gradient makes F maximise it, scaled by lambda_p = 2 / (1 + exp(-gamma p)) - 1
(sec. 5.2.2). The paper's annealed lr mu_p = mu_0 / (1 + alpha p)^beta (alpha 10, beta 0.75) is the schedule the
training loop runs (lr_schedule=dann, see lr_factor) in place of its linear decay: train.decay_steps is not used.

Options beyond the paper (off by default): pseudo-labels on confident target predictions (weight ramped by
lambda_p), an EMA of the weights for export, and BatchNorm statistics kept per domain (batch statistics and
running averages of source and target apart; the export carries the target ones).
domain_weight=0 is the source-only baseline: target images are not used at all, everything else is equal.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from translate.backbones import build_discriminator
from translate.data.labeled import DomainPairDataset
from translate.losses import grl_lambda
from translate.models.classifier import build_classifier, classifier_spec, labeled_dataset, make_optimizer
from translate.models.common import EMA, Progress, averaged


@dataclass
class DANNConfig:
    """The paper's MNIST -> MNIST-M settings: LeNet-style F, label predictor fc100 -> 10, domain classifier
    fc100 -> 1, SGD momentum 0.9, mu_0 0.01 annealed, lambda_p with gamma 10."""

    name: str = "dann"
    encoder: str = "lenet"  # lenet | timm:<timm name>
    pretrained: str = ""  # timm encoders: "" random, "default" the registered offline weights, or a weights file
    embedding_dim: int = 128
    image_size: int = 32
    norm: str = "batch"
    hidden: int = 100
    channels: int = 3
    num_classes: int = 10
    classes: list[str] = field(default_factory=list)
    augment: str = "none"  # source images: none | color
    domain_weight: float = 1.0  # 0: source-only baseline
    domain_hidden: int = 100
    domain_layers: int = 1
    grl_gamma: float = 10.0
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "dann"  # dann: mu_0 / (1 + lr_alpha p)^lr_beta | loop: the training loop's schedule
    lr_alpha: float = 10.0
    lr_beta: float = 0.75
    bn_per_domain: bool = False
    pseudo_weight: float = 0.0
    pseudo_threshold: float = 0.95
    ema_decay: float = 0.0


class DomainBatchNorm(nn.Module):
    """One BatchNorm per domain: the first `split` samples of a batch are normalised by `source`, the rest by
    `target` (set `split` before each forward), so both statistics are learnt inside one forward pass."""

    def __init__(self, bn: nn.Module):
        super().__init__()
        self.source, self.target = bn, copy.deepcopy(bn)
        self.split = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.source(x[: self.split]), self.target(x[self.split:])])


def split_batchnorm(module: nn.Module) -> list[DomainBatchNorm]:
    """Replace every BatchNorm inside `module` by a DomainBatchNorm; returns them."""
    made = []
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            made.append(DomainBatchNorm(child))
            setattr(module, name, made[-1])
        else:
            made += split_batchnorm(child)
    return made


def merge_batchnorm(module: nn.Module, domain: str) -> nn.Module:
    """Put back plain BatchNorms holding one domain's parameters and statistics (for export)."""
    for name, child in module.named_children():
        if isinstance(child, DomainBatchNorm):
            setattr(module, name, getattr(child, domain))
        else:
            merge_batchnorm(child, domain)
    return module


class DANN:
    def __init__(self, cfg: DANNConfig):
        if cfg.lr_schedule not in ("dann", "loop"):
            raise ValueError(f"model.lr_schedule must be dann or loop, got {cfg.lr_schedule!r}")
        self.cfg = cfg
        self.adapt = cfg.domain_weight > 0
        net = build_classifier(cfg)
        self.domain_bns = split_batchnorm(net.encoder) if cfg.bn_per_domain and self.adapt else []
        self.raw = {"classifier": net}
        if self.adapt:  # source-only: no D at all (DDP would wait forever for gradients of an unused net)
            self.raw["domain"] = build_discriminator("domain", net.encoder.embedding_dim, hidden=cfg.domain_hidden,
                                                     layers=cfg.domain_layers, init_type="kaiming")
        self.nets = dict(self.raw)
        params = [p for module in self.raw.values() for p in module.parameters()]
        self.optimizers = {"dann": make_optimizer(cfg, params)}
        self.ema = EMA(net, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.extra_state = {"ema_classifier": self.ema} if self.ema else {}

    def lr_factor(self, max_steps: int) -> Callable[[int], float] | None:
        """The paper's annealing mu_p / mu_0 = 1 / (1 + alpha p)^beta with p = step / max_steps, for the loop's
        LambdaLR; None (lr_schedule=loop) leaves the loop its own schedule."""
        cfg = self.cfg
        if cfg.lr_schedule == "loop":
            return None
        return lambda step: 1.0 / (1.0 + cfg.lr_alpha * step / max(max_steps, 1)) ** cfg.lr_beta

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        cfg, p = self.cfg, progress.fraction
        optimizer = self.optimizers["dann"]
        source, labels = batch["source"], batch["label"]
        n = source.shape[0]
        x = torch.cat([source, batch["target"]]) if self.adapt else source
        for bn in self.domain_bns:
            bn.split = n
        features, logits = self.nets["classifier"](x, return_features=True)
        loss_cls = F.cross_entropy(logits[:n].float(), labels)
        out = {"loss_cls": loss_cls, "acc_source": (logits[:n].argmax(1) == labels).float().mean()}
        total = loss_cls
        if self.adapt:
            lambd = grl_lambda(p, cfg.grl_gamma)
            out["loss_domain"], out["acc_domain"] = domain_loss(self.nets["domain"], self.raw["domain"], features,
                                                                n, lambd)
            total = total + cfg.domain_weight * out["loss_domain"]
            if cfg.pseudo_weight > 0:
                out["loss_pseudo"], out["pseudo_kept"] = pseudo_label_loss(logits[n:], cfg.pseudo_threshold)
                total = total + cfg.pseudo_weight * lambd * out["loss_pseudo"]
            out["grl_lambda"] = torch.tensor(lambd)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(total)
        optimizer.step()
        if self.ema:
            self.ema.update(self.raw["classifier"])
        return {k: float(v.detach()) for k, v in out.items()}

    def visuals(self, batch: dict) -> dict:
        return {}

    def export_nets(self) -> dict:
        net = averaged(self.raw["classifier"], self.ema)
        if self.domain_bns:
            net = merge_batchnorm(copy.deepcopy(net), "target")
        return {"classifier": (net, classifier_spec(self.cfg, net))}


def domain_loss(domain: nn.Module, raw_domain: nn.Module, features: torch.Tensor, n_first: int,
                lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DANN's domain loss L_d (JMLR eq. 9-10): the domain classifier `domain` (prepared; `raw_domain` unwrapped,
    whose gradient reversal layer gets weight `lambd`) tells the first `n_first` rows of `features` (domain 0:
    source, sketches) from the rest (domain 1: target, photos). Returns (BCE loss, accuracy)."""
    raw_domain.grl.lambd = lambd
    logits = domain(features).float().squeeze(1)
    is_second = torch.cat([torch.zeros(n_first), torch.ones(features.shape[0] - n_first)]).to(logits.device)
    return F.binary_cross_entropy_with_logits(logits, is_second), ((logits > 0).float() == is_second).float().mean()


def pseudo_label_loss(target_logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-training on the target (Lee 2013): cross-entropy towards the argmax of predictions whose softmax
    confidence is at least `threshold`, averaged over the whole target batch. Returns (loss, kept fraction)."""
    logits = target_logits.float()
    confidence, labels = logits.detach().softmax(1).max(1)
    keep = (confidence >= threshold).float()
    return (F.cross_entropy(logits, labels, reduction="none") * keep).mean(), keep.mean()


def make_dataset(data_cfg, cfg: DANNConfig, train: bool = True) -> DomainPairDataset:
    if not data_cfg.source or not data_cfg.target:
        raise ValueError("DANN needs data.source=DIR (labeled: DIR/<class>/<image>) and data.target=DIR")
    source = labeled_dataset(data_cfg.source, data_cfg, cfg, train)
    return DomainPairDataset(source, data_cfg.target, cfg.channels, data_cfg.load_size, data_cfg.crop_size,
                             data_cfg.preprocess, data_cfg.flip, train)
