"""Cross-domain instance retrieval (street-to-shop style; here sketch -> handbag photo): one embedding in which a
sketch and the photo it was drawn from land together, learnt from pairs, with DANN's domain confusion on top.

A shared encoder (by default the packaged ImageNet EfficientNet-Lite1, fine-tuned; Lite0 stays the evaluation
network) and a projection head (fc `hidden` -> ReLU -> fc `embedding_dim`) embed both domains in ONE forward of
the batch [sketches; photos]. Loss per step:

    L = NCE(sketches, photos)  +  domain_weight * L_d
    NCE: symmetric InfoNCE over the batch (translate.losses.cross_domain_nce; in-batch photos are the negatives)
    L_d: DANN's domain classifier (Ganin et al. 2016, eq. 9-10) on the L2-normalised embeddings, behind a gradient
         reversal layer whose weight rises as lambda_p = 2 / (1 + exp(-gamma p)) - 1 (sec. 5.2.2)

The domain classifier sees the normalised embedding because retrieval ranks by cosine: what must not tell the
domains apart is the direction of an embedding, not its length. `domain_weight=0` is the no-adaptation baseline:
no domain classifier at all, everything else equal. The export is an `embedding` net (encoder + head) that
`translate eval retrieval --model` embeds queries and gallery with.

Data: pix2pix pairs (ROOT/train/*.jpg, A|B side by side, or ROOT/train/A + B), A the query domain (sketches), with
the same crop/flip on both sides and optionally the sketch augmentation of translate.data.sketch on A.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from translate.backbones import EncoderClassifier, build_discriminator
from translate.data.datasets import PairedDataset
from translate.losses import cross_domain_nce, grl_lambda
from translate.models.classifier import encoder_description, make_optimizer, pretrained_arg
from translate.models.common import EMA, Progress, averaged
from translate.models.dann import domain_loss


@dataclass
class CrossMatchConfig:
    name: str = "crossmatch"
    encoder: str = "timm:efficientnet_lite1"  # shared by both domains; lenet | dtn | timm:<name>
    pretrained: str = "default"  # timm encoders: "default" the packaged ImageNet weights, "" random, or a file
    image_size: int = 128  # the encoder's input side (queries and gallery are resized to it at evaluation)
    channels: int = 3
    norm: str = "batch"  # lenet only
    hidden: int = 512  # projection head: fc hidden -> ReLU -> fc embedding_dim (0: one linear layer)
    embedding_dim: int = 128
    temperature: float = 0.07  # InfoNCE tau (CLIP's initial value, MoCo's 0.07)
    domain_weight: float = 1.0  # 0: no domain classifier (the no-adaptation baseline)
    domain_hidden: int = 256
    domain_layers: int = 1
    grl_gamma: float = 10.0
    optimizer: str = "adam"
    lr: float = 1e-4  # a pretrained encoder is fine-tuned: 1e-4, not the 1e-3 of training from scratch
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    ema_decay: float = 0.0


def build_embedder(cfg: CrossMatchConfig) -> EncoderClassifier:
    """Encoder + projection head; the head's 'classes' are the embedding's dimensions."""
    return EncoderClassifier(encoder_description(cfg), cfg.embedding_dim, cfg.hidden, pretrained_arg(cfg.pretrained))


def embedding_spec(cfg: CrossMatchConfig) -> dict:
    """The export spec: an EncoderClassifier's self-description (as classifier_spec) with role `embedding`, so
    load_encoder returns encoder and head together and load_classifier refuses it (its outputs are no classes)."""
    return {"role": "embedding", "arch": "encoder_classifier", "encoder": encoder_description(cfg),
            "num_classes": cfg.embedding_dim, "hidden": cfg.hidden, "classes": [],
            "embedding_dim": cfg.embedding_dim, "in_channels": cfg.channels, "image_size": cfg.image_size,
            "inference_mode": "eval", "value_range": [-1.0, 1.0]}


class CrossMatch:
    def __init__(self, cfg: CrossMatchConfig):
        self.cfg = cfg
        self.adapt = cfg.domain_weight > 0
        net = build_embedder(cfg)
        self.raw = {"embedder": net}
        if self.adapt:  # no unused net without adaptation: DDP would wait forever for its gradients
            self.raw["domain"] = build_discriminator("domain", cfg.embedding_dim, hidden=cfg.domain_hidden,
                                                     layers=cfg.domain_layers, init_type="kaiming")
        self.nets = dict(self.raw)
        params = [p for module in self.raw.values() for p in module.parameters()]
        self.optimizers = {"crossmatch": make_optimizer(cfg, params)}
        self.ema = EMA(net, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.extra_state = {"ema_embedder": self.ema} if self.ema else {}

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        cfg = self.cfg
        sketches, photos = batch["A"], batch["B"]
        n = sketches.shape[0]
        embeddings = self.nets["embedder"](torch.cat([sketches, photos])).float()  # one forward for DDP
        loss_match = cross_domain_nce(embeddings[:n], embeddings[n:], cfg.temperature)
        unit = F.normalize(embeddings, dim=1)
        # in-batch Recall@1: the share of sketches whose nearest photo in the batch is their own
        hits = (unit[:n] @ unit[n:].T).argmax(1) == torch.arange(n, device=unit.device)
        out = {"loss_match": loss_match, "batch_recall@1": hits.float().mean()}
        total = loss_match
        if self.adapt:
            lambd = grl_lambda(progress.fraction, cfg.grl_gamma)
            out["loss_domain"], out["acc_domain"] = domain_loss(self.nets["domain"], self.raw["domain"], unit, n, lambd)
            out["grl_lambda"] = torch.tensor(lambd)
            total = total + cfg.domain_weight * out["loss_domain"]
        optimizer = self.optimizers["crossmatch"]
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(total)
        optimizer.step()
        if self.ema:
            self.ema.update(self.raw["embedder"])
        return {k: float(v.detach()) for k, v in out.items()}

    def visuals(self, batch: dict) -> dict:
        return {}

    def export_nets(self) -> dict:
        net = averaged(self.raw["embedder"], self.ema)
        return {"embedding": (net, embedding_spec(self.cfg))}


def make_dataset(data_cfg, cfg: CrossMatchConfig, train: bool = True) -> PairedDataset:
    return PairedDataset(data_cfg.root, phase=data_cfg.phase, channels_a=cfg.channels, channels_b=cfg.channels,
                         direction=data_cfg.direction, load_size=data_cfg.load_size, crop_size=data_cfg.crop_size,
                         preprocess=data_cfg.preprocess, flip=data_cfg.flip, train=train,
                         sketch_augment=data_cfg.sketch_augment)
