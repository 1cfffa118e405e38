"""Cross-domain instance retrieval (street-to-shop style; here sketch -> handbag photo): one embedding in which a
sketch and the photo it was drawn from land together, learnt from pairs, with DANN's domain confusion on top.

A shared encoder (by default the packaged ImageNet EfficientNet-Lite1, fine-tuned; Lite0 stays the evaluation
network) and a projection head (fc `hidden` -> ReLU -> fc `embedding_dim`) embed both domains in ONE forward of
the batch [sketches; photos]. Loss per step:

    L = NCE(sketches, photos)  +  domain_weight * L_d
    NCE: symmetric InfoNCE over the batch (translate.losses.cross_domain_nce; in-batch photos of other pairs are the
         negatives)
    L_d: DANN's domain classifier (Ganin et al. 2016, eq. 9-10) on the L2-normalised embeddings, behind a gradient
         reversal layer whose weight rises as lambda_p = 2 / (1 + exp(-gamma p)) - 1 (sec. 5.2.2)

With `known_pairs` < 1 only that share of the training pairs counts as pairs (chosen by a stable hash of the file
name, the same in every run and seed); the other sketches and photos are unpaired data that only the domain
classifier sees. That is the semi-supervised street-to-shop setting, where adaptation has data that the
no-adaptation baseline cannot use. Batches then hold known pairs only, and with adaptation each one also carries an
unpaired sketch and photo for the domain classifier (make_dataset); the baseline (domain_weight 0) trains on the known
pairs alone.

The domain classifier sees the normalised embedding because retrieval ranks by cosine: what must not tell the
domains apart is the direction of an embedding, not its length. It learns at `domain_lr_mult` times the encoder's lr:
at 1x, with 16 known pairs, the encoder outran it (accuracy below chance) and adaptation cost 0.2 R@1; 10x cuts it
to 0.06 but gains nothing with 80 or more pairs (README). `domain_weight=0` is the no-adaptation baseline:
no domain classifier at all, everything else equal. The export is an `embedding` net (encoder + head) that
`translate eval retrieval --model` embeds queries and gallery with.

Data: pix2pix pairs (ROOT/train/*.jpg, A|B side by side, or ROOT/train/A + B), A the query domain (sketches), with
the same crop/flip on both sides and optionally the sketch augmentation of translate.data.sketch on A.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from translate.backbones import EncoderClassifier, build_discriminator
from translate.data.datasets import PairedDataset
from translate.data.sampler import checked_key, derive_seed
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
    known_pairs: float = 1.0  # share of training pairs used as pairs; the rest are unpaired (domain classifier only)
    domain_hidden: int = 256
    domain_layers: int = 1
    grl_gamma: float = 10.0
    domain_lr_mult: float = 1.0  # the domain classifier's lr over the encoder's (10: less harm with 16 pairs; README)
    optimizer: str = "adam"
    lr: float = 1e-4  # a pretrained encoder is fine-tuned: 1e-4, not the 1e-3 of training from scratch
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    ema_decay: float = 0.0


def is_known_pair(path: str, share: float) -> bool:
    """Whether the training pair stored at `path` is one whose match the model may use: a stable hash of its file
    name (not Python's salted hash()), so the known pairs are the same in every process, resume, run and seed."""
    return share >= 1 or zlib.crc32(Path(path).name.encode()) % 10_000 < share * 10_000


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
        groups = [{"params": list(net.parameters())}]
        if self.adapt:  # new against fine-tuned: its own lr (the Transfer-Learning-Library's DANN gives it 10x)
            groups.append({"params": list(self.raw["domain"].parameters()), "lr": cfg.lr * cfg.domain_lr_mult})
        self.optimizers = {"crossmatch": make_optimizer(cfg, groups)}
        self.ema = EMA(net, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.extra_state = {"ema_embedder": self.ema} if self.ema else {}

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        cfg = self.cfg
        sketches, photos = batch["A"], batch["B"]
        n = sketches.shape[0]
        unpaired = [batch["A_unpaired"], batch["B_unpaired"]] if "A_unpaired" in batch else []
        # one forward for DDP: [sketches; photos] of the pairs, then the unpaired sketches and photos, if any
        embeddings = self.nets["embedder"](torch.cat([sketches, photos, *unpaired])).float()
        extra, embeddings = embeddings[2 * n:], embeddings[:2 * n]
        is_known = [is_known_pair(path, cfg.known_pairs) for path in batch["A_path"]]
        known = torch.tensor(is_known, device=embeddings.device)
        known_paths = [path for path, path_is_known in zip(batch["A_path"], is_known) if path_is_known]
        query, gallery = embeddings[:n][known], embeddings[n:][known]
        # the same pair drawn twice into a batch (few known pairs, or the turn of an epoch) is no negative of itself
        instance = torch.tensor([known_paths.index(path) for path in known_paths], device=embeddings.device)
        # a batch with fewer than two known pairs has no negatives: no match loss, but a graph through every
        # parameter (DDP waits for every gradient)
        loss_match = (cross_domain_nce(query, gallery, cfg.temperature, instance) if len(query) > 1
                      else 0.0 * embeddings.sum())
        unit = F.normalize(embeddings, dim=1)
        out = {"loss_match": loss_match, "known_pairs": known.float().mean()}
        if len(query):  # in-batch Recall@1 over the known pairs: sketches whose nearest known photo is their own
            similarity = unit[:n][known] @ unit[n:][known].T  # (a crop of it, when the pair was drawn twice)
            hits = instance[similarity.argmax(1)] == instance
            out["batch_recall@1"] = hits.float().mean()
        total = loss_match
        if self.adapt:
            lambd = grl_lambda(progress.fraction, cfg.grl_gamma)
            domains = unit
            if len(extra):  # sketches first (the pairs', then the unpaired), then the photos
                extra = F.normalize(extra, dim=1)
                domains = torch.cat([unit[:n], extra[:n], unit[n:], extra[n:]])
            out["loss_domain"], out["acc_domain"] = domain_loss(self.nets["domain"], self.raw["domain"], domains,
                                                                len(domains) // 2, lambd)
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
    """The training pairs. With known_pairs < 1 the batches hold the known pairs alone: mixed with the unknown ones
    they thinned out the InfoNCE's pairs and negatives (handbag split, a tenth of the pairs known: about 3 pairs in a
    batch of 32, R@1 0.49 without adaptation, against 0.75 with batches of known pairs; README). With adaptation each
    item also carries an unpaired sketch and photo for the domain classifier (WithUnpaired); without it the unknown
    pairs feed no loss and are left out."""
    dataset = PairedDataset(data_cfg.root, phase=data_cfg.phase, channels_a=cfg.channels, channels_b=cfg.channels,
                            direction=data_cfg.direction, load_size=data_cfg.load_size, crop_size=data_cfg.crop_size,
                            preprocess=data_cfg.preprocess, flip=data_cfg.flip, train=train,
                            sketch_augment=data_cfg.sketch_augment, sketch_augment_p=data_cfg.sketch_augment_p)
    if not train or cfg.known_pairs >= 1:
        return dataset
    unknown, pairs = copy.copy(dataset), dataset.pairs  # one dataset, two lists of pairs: same loading and transforms
    known = [is_known_pair(str(path), cfg.known_pairs) for path, _ in pairs]
    dataset.pairs = [pair for pair, is_known in zip(pairs, known) if is_known]
    unknown.pairs = [pair for pair, is_known in zip(pairs, known) if not is_known]
    if not dataset.pairs:
        raise ValueError(f"model.known_pairs={cfg.known_pairs} leaves none of the training pairs in "
                         f"{data_cfg.root} known: the match loss needs pairs")
    return WithUnpaired(dataset, unknown) if cfg.domain_weight > 0 and unknown.pairs else dataset


class WithUnpaired(torch.utils.data.Dataset):
    """The known pairs, each item carrying one sketch and one photo of the unknown pairs (drawn apart, so they are
    no pair) for the domain classifier alone: batches stay full of pairs for the InfoNCE, and the unpaired data
    still reaches the adaptation. Both draws come from the item's key (exact resume)."""

    def __init__(self, known: PairedDataset, unknown: PairedDataset):
        self.known, self.unknown = known, unknown

    def __len__(self) -> int:
        return len(self.known)

    def __getitem__(self, key) -> dict:
        index, seed = checked_key(key, len(self))
        item = self.known[(index, seed)]
        for side, stream in (("A", 1), ("B", 2)):
            draw = derive_seed(seed, 100 + stream)
            item[f"{side}_unpaired"] = self.unknown[(draw % len(self.unknown), derive_seed(draw, 0))][side]
        return item
