"""Builders the tests share: tiny generated images and datasets, tiny exports, the recipes' tiny overrides and the
part of Accelerator a train_step uses. Tests import this module, never each other."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from translate import config
from translate.export import write_export
from translate.models import MODELS
from translate.models.classifier import build_classifier, classifier_spec

TINY = ["model.ngf=4", "model.ndf=4", "data.load_size=36", "data.crop_size=32", "data.batch_size=2",
        "data.num_workers=0", "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=2",
        "train.max_steps=4", "train.decay_steps=2"]
PIX2PIX_TINY = ["model.name=pix2pix", "model.generator=resnet_6blocks", *TINY]  # + data.root=aligned_root
CYCLEGAN_TINY = ["model.name=cyclegan", "model.generator=resnet_6blocks", "model.pool_size=3", *TINY]
CUT_TINY = ["model.name=cut", "model.generator=resnet_6blocks", "model.num_patches=16", *TINY]
DANN_TINY = ["model.name=dann", "model.image_size=16", "model.embedding_dim=8", "model.hidden=8",
             "model.domain_hidden=8", "data.load_size=16", "data.crop_size=16", "data.preprocess=resize",
             "data.flip=false", "data.batch_size=4", "data.num_workers=0", "model.num_classes=2", "train.max_steps=2",
             "train.decay_steps=0", "train.log_every=1"]
DTN_TINY = ["model.name=dtn", "model.ngf=4", "model.ndf=4", "model.n_layers_d=2", "data.load_size=16",
            "data.crop_size=16", "data.preprocess=resize", "data.flip=false", "data.batch_size=3", "data.num_workers=0",
            "train.max_steps=2", "train.decay_steps=0", "train.log_every=1"]
CLASSIFIER_TINY = ["model.name=classifier", "model.image_size=16", "model.embedding_dim=8", "model.num_classes=2"]


def write_images(folder: Path, count: int, size: tuple[int, int], seed: int, mode: str = "RGB") -> list[Path]:
    """`count` random-noise images NNN.png of `size` (w, h) in `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        w, h = size
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        path = folder / f"{i:03d}.png"
        Image.fromarray(pixels).convert(mode).save(path)
        paths.append(path)
    return paths


def write_labeled(root: Path, classes=("0", "1"), per_class: int = 3, size: int = 16, mode: str = "L",
                  seed: int = 0) -> Path:
    """ROOT/<class>/<i>.png; class c is a bright square at a class-dependent place on noise, so it is learnable."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            pixels[2 + 4 * c: 6 + 4 * c, 2:size - 2] = 255
            Image.fromarray(pixels).convert(mode).save(root / name / f"{i:03d}.png")
    return root


def make_cyclegan_export(path: Path, channels_a: int = 3, channels_b: int = 3) -> Path:
    """An untrained tiny CycleGAN export (resnet_6blocks, ngf 4): G_AB and G_BA."""
    cfg = config.load(None, ["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
                             f"model.channels_a={channels_a}", f"model.channels_b={channels_b}",
                             "model.lambda_identity=0"])
    return write_export(path, MODELS["cyclegan"].build(cfg.model).export_nets(), cfg)


def make_classifier_export(path: Path) -> Path:
    """An untrained tiny classifier export (CLASSIFIER_TINY): DTN's f, an evaluation classifier."""
    cfg = config.load(None, CLASSIFIER_TINY)
    net = build_classifier(cfg.model)
    return write_export(path, {"classifier": (net, classifier_spec(cfg.model, net))}, cfg)


class FakeAccelerator:
    """The part of Accelerator a model's train_step uses, so a step can be called directly on the CPU."""

    device = torch.device("cpu")

    def backward(self, loss):
        loss.backward()

    def autocast(self):
        return contextlib.nullcontext()
