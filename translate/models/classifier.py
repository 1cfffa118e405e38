"""Plain supervised classifier on a labeled folder ROOT/<class>/<image>: cross-entropy, SGD or Adam.

Used for DTN's f (trained on source labels, as in Taigman et al. 2017's digits experiment), as the source-only
baseline and as the evaluation classifier of `translate eval classify`. Also holds what DANN shares with it: the
encoder description, the optimizer and the export spec of an `EncoderClassifier`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from translate.backbones import EncoderClassifier
from translate.backbones.digit_nets import FEATURE_ENCODERS
from translate.data.labeled import LabeledDataset
from translate.models.common import EMA, Progress, averaged


@dataclass
class ClassifierConfig:
    name: str = "classifier"
    encoder: str = "lenet"  # lenet | dtn (DTN's digit f) | timm:<timm name>, e.g. timm:efficientnet_lite0
    pretrained: str = ""  # timm encoders: "" random, "default" the registered offline weights, or a weights file
    embedding_dim: int = 128  # lenet and dtn; a timm encoder has its own width
    image_size: int = 32  # the encoder's input side; data.load_size / crop_size should produce it
    norm: str = "batch"  # lenet: batch | none
    hidden: int = 0  # a hidden fc layer in the head (DANN's label predictor has fc100)
    channels: int = 3
    num_classes: int = 10
    classes: list[str] = field(default_factory=list)  # label order; empty: the sorted class folders of the data
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    augment: str = "none"  # none | color: random colours and inversion of the training images
    ema_decay: float = 0.0  # > 0: export an exponential moving average of the weights


def pretrained_arg(text: str):
    return {"": False, "default": True}.get(text, text)


def encoder_description(cfg) -> dict:
    """How to rebuild the encoder, as stored in the export spec (never the pretrained flag: weights are saved)."""
    if cfg.encoder in FEATURE_ENCODERS:
        return {"arch": cfg.encoder, "kwargs": {"in_channels": cfg.channels, "embedding_dim": cfg.embedding_dim,
                                            "image_size": cfg.image_size, "norm": cfg.norm}}
    if cfg.encoder.startswith("timm:"):
        if cfg.channels != 3:
            raise ValueError(f"model.encoder={cfg.encoder} takes 3-channel images, model.channels={cfg.channels}")
        return {"arch": cfg.encoder, "kwargs": {"image_size": cfg.image_size}}
    raise ValueError(f"model.encoder must be one of {', '.join(FEATURE_ENCODERS)} or timm:<name>, got {cfg.encoder!r}")


def build_classifier(cfg) -> EncoderClassifier:
    return EncoderClassifier(encoder_description(cfg), cfg.num_classes, cfg.hidden, pretrained_arg(cfg.pretrained))


def make_optimizer(cfg, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"model.optimizer must be adam or sgd, got {cfg.optimizer!r}")


def classifier_spec(cfg, net: EncoderClassifier) -> dict:
    """Self-description of an exported EncoderClassifier: enough for load_classifier / load_encoder."""
    return {
        "role": "classifier",
        "arch": "encoder_classifier",
        "encoder": encoder_description(cfg),
        "num_classes": cfg.num_classes,
        "hidden": cfg.hidden,
        "classes": list(cfg.classes) or [str(i) for i in range(cfg.num_classes)],
        "embedding_dim": net.encoder.embedding_dim,
        "in_channels": cfg.channels,
        "image_size": cfg.image_size,  # inputs are resized (bicubic) to this square side
        "inference_mode": "eval",
        "value_range": [-1.0, 1.0],
    }


class Classifier:
    def __init__(self, cfg: ClassifierConfig):
        self.cfg = cfg
        net = build_classifier(cfg)
        self.raw = {"classifier": net}
        self.nets = dict(self.raw)
        self.optimizers = {"classifier": make_optimizer(cfg, net.parameters())}
        self.ema = EMA(net, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.extra_state = {"ema_classifier": self.ema} if self.ema else {}

    def train_step(self, batch: dict, accelerator, progress: Progress) -> dict[str, float]:
        logits = self.nets["classifier"](batch["image"])
        loss = F.cross_entropy(logits.float(), batch["label"])
        self.optimizers["classifier"].zero_grad(set_to_none=True)
        accelerator.backward(loss)
        self.optimizers["classifier"].step()
        if self.ema:
            self.ema.update(self.raw["classifier"])
        accuracy = (logits.argmax(1) == batch["label"]).float().mean()
        return {"loss_cls": loss.item(), "acc": accuracy.item()}

    def visuals(self, batch: dict) -> dict:
        return {}

    def export_nets(self) -> dict:
        net = averaged(self.raw["classifier"], self.ema)
        return {"classifier": (net, classifier_spec(self.cfg, net))}


def labeled_dataset(root, data_cfg, cfg, train: bool) -> LabeledDataset:
    """A labeled folder checked against the model's classes; fills in cfg.classes from the folders when empty."""
    dataset = LabeledDataset(root, cfg.channels, data_cfg.load_size, data_cfg.crop_size, data_cfg.preprocess,
                             data_cfg.flip, train, cfg.augment, classes=cfg.classes or None)
    if len(dataset.classes) != cfg.num_classes:
        raise ValueError(f"{root} has {len(dataset.classes)} classes ({', '.join(dataset.classes[:12])}), "
                         f"model.num_classes is {cfg.num_classes}")
    cfg.classes = list(dataset.classes)  # the export names the label order
    return dataset


def make_dataset(data_cfg, cfg: ClassifierConfig, train: bool = True) -> LabeledDataset:
    if not data_cfg.root:
        raise ValueError("the classifier reads a labeled folder: set data.root=DIR (DIR/<class>/<image>)")
    return labeled_dataset(data_cfg.root, data_cfg, cfg, train)
