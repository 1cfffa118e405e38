"""Builders the tests share: tiny generated images and datasets, tiny exports, the recipes' tiny overrides and the
part of Accelerator a train_step uses. Tests import this module, never each other."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from accelerate.utils import convert_to_fp32
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from translate import config
from translate.export import write_export
from translate.models import MODELS
from translate.models.classifier import build_classifier, classifier_spec

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.ngf=4", "model.ndf=4", "data.load_size=36", "data.crop_size=32", "data.batch_size=2",
        "data.num_workers=0", "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=2",
        "train.max_steps=4", "train.decay_steps=2"]
HINTED = ["model.colour_hints=true", "model.inference_mode=eval"]  # a pix2pix that reads colour hints
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
CROSSMATCH_TINY = ["model.name=crossmatch", "model.encoder=lenet", "model.pretrained=", "model.image_size=16",
                   "model.hidden=8", "model.embedding_dim=8", "model.domain_hidden=8", "data.load_size=16",
                   "data.crop_size=16", "data.batch_size=4", "data.num_workers=0", "train.max_steps=2",
                   "train.decay_steps=0", "train.log_every=1"]
CLASSIFIER_TINY = ["model.name=classifier", "model.image_size=16", "model.embedding_dim=8", "model.num_classes=2",
                   "train.decay_steps=0"]


_KILL_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from translate.training import checkpoints
save = checkpoints.save
def save_then_die(*args, **kwargs):
    save(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
checkpoints.save = save_then_die
from translate.cli import main
main(sys.argv[1:])
"""


def train_until_killed(recipe: Path, overrides: list[str], run_dir: Path,
                       prelude: str = "") -> subprocess.CompletedProcess:
    """`translate train RECIPE OVERRIDES --run-dir RUN_DIR` in a new process, killed with SIGKILL right after its
    first checkpoint is written, the way a crash or an out-of-memory kill ends a run. Same thread count as the
    caller: a different one sums in another order, and the weights would differ. `prelude` is Python run first
    in that process (e.g. setting a module constant the test also sets in its own process)."""
    return subprocess.run([sys.executable, "-c", prelude + _KILL_AFTER_FIRST_CHECKPOINT, "train", str(recipe),
                           *overrides, "--run-dir", str(run_dir)], cwd=REPO, capture_output=True, text=True)


def assert_same_weights(a: Path, b: Path) -> None:
    """Every *.safetensors file of folder a equals, tensor for tensor and bit for bit, its namesake in folder b."""
    names = sorted(p.name for p in a.glob("*.safetensors"))
    assert names, f"no weights in {a}"
    for weights in names:
        x, y = load_file(a / weights), load_file(b / weights)
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), f"{weights}:{key} differs"


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
    """An untrained tiny CycleGAN export (resnet_6blocks, ngf 4): G_AB and G_BA, trained (nominally) on crops at
    the images' own scale, so that inference keeps each image's size (translate.inference.scale)."""
    cfg = config.load(None, ["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
                             f"model.channels_a={channels_a}", f"model.channels_b={channels_b}",
                             "model.lambda_identity=0", "data.preprocess=crop"])
    return write_export(path, MODELS["cyclegan"].build(cfg.model).export_nets(), cfg)


def make_pix2pix_export(path: Path, seed: int, *overrides: str) -> Path:
    """An untrained tiny pix2pix export (resnet_6blocks, ngf 4, instance norm, no dropout): one generator, G."""
    cfg = config.load(None, ["model.name=pix2pix", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
                             "model.norm=instance", "model.dropout=false", *overrides])
    torch.manual_seed(seed)
    return write_export(path, MODELS["pix2pix"].build(cfg.model).export_nets(), cfg)


def make_classifier_export(path: Path) -> Path:
    """An untrained tiny classifier export (CLASSIFIER_TINY): DTN's f, an evaluation classifier. Seeded: some
    random draws of so small a net embed many images alike (a third of seeds 0-3 tie the retrieval test's
    queries), which an unseeded builder met at random, by the order the tests ran in."""
    cfg = config.load(None, CLASSIFIER_TINY)
    torch.manual_seed(1)
    net = build_classifier(cfg.model)
    return write_export(path, {"classifier": (net, classifier_spec(cfg.model, net))}, cfg)


class FakeAccelerator:
    """The part of Accelerator a model's train_step uses, so a step can be called directly on the CPU."""

    device = torch.device("cpu")

    def backward(self, loss):
        loss.backward()

    def autocast(self):
        return contextlib.nullcontext()


class FP16Accelerator(FakeAccelerator):
    """fp16 mixed precision as Accelerate runs it on a GPU, on the CPU (Accelerate itself ignores fp16 there: no
    autocast, no scaler): prepared forwards under autocast(float16) with their outputs cast to float32, the loss
    scaled by one GradScaler, each optimizer step through it (step, then update, as AcceleratedOptimizer does)."""

    def __init__(self):
        self.scaler = torch.amp.GradScaler("cpu")

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.float16)

    def backward(self, loss):
        self.scaler.scale(loss).backward()

    def prepare(self, model) -> None:
        """What the loop's accelerator.prepare does to a model's nets and optimizers."""
        for name, net in model.nets.items():
            model.nets[name] = _Autocast(net, self)
        for name, optimizer in model.optimizers.items():
            model.optimizers[name] = _ScaledOptimizer(optimizer, self.scaler)


class _Autocast(nn.Module):
    def __init__(self, net: nn.Module, accelerator: FP16Accelerator):
        super().__init__()
        self.module, self.accelerator = net, accelerator

    def forward(self, *args, **kwargs):
        with self.accelerator.autocast():
            return convert_to_fp32(self.module(*args, **kwargs))


class _ScaledOptimizer:
    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler):
        self.optimizer, self.scaler = optimizer, scaler

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()


# --- one tiny model of every registered kind, with a batch of its data --------------------------------------------

def _aligned_setup(root: Path) -> list[str]:
    write_images(root / "aligned" / "train", 2, (64, 32), seed=0)
    return [*PIX2PIX_TINY, f"data.root={root / 'aligned'}"]


def _unaligned_setup(tiny: list[str]) -> Callable[[Path], list[str]]:
    def setup(root: Path) -> list[str]:
        write_images(root / "unaligned" / "trainA", 2, (32, 32), seed=1)
        write_images(root / "unaligned" / "trainB", 3, (32, 32), seed=2)
        return [*tiny, f"data.root={root / 'unaligned'}"]

    return setup


def _crossmatch_setup(root: Path) -> list[str]:
    write_images(root / "aligned" / "train", 4, (64, 32), seed=0)
    return [*CROSSMATCH_TINY, f"data.root={root / 'aligned'}"]


def _classifier_setup(root: Path) -> list[str]:
    return [*CLASSIFIER_TINY, f"data.root={write_labeled(root / 'labeled', per_class=2)}", "data.load_size=16",
            "data.crop_size=16", "data.preprocess=resize", "data.flip=false", "data.batch_size=4",
            "data.num_workers=0"]


def _dann_setup(root: Path) -> list[str]:
    return [*DANN_TINY, f"data.source={write_labeled(root / 'source', per_class=2)}",
            f"data.target={write_labeled(root / 'target', mode='RGB', seed=3)}"]


def _dtn_setup(root: Path) -> list[str]:
    return [*DTN_TINY, f"model.encoder={make_classifier_export(root / 'f')}",
            f"data.source={write_labeled(root / 'source', per_class=2, mode='RGB')}",
            f"data.target={write_labeled(root / 'target', per_class=2, seed=2)}"]


# model name -> writes its tiny data under a folder and returns the overrides of its tiny config (the *_TINY list
# + the data). Every name in MODELS needs one: tests/models/test_every_model.py runs each registered model.
TINY_SETUPS: dict[str, Callable[[Path], list[str]]] = {
    "pix2pix": _aligned_setup,
    "cyclegan": _unaligned_setup(CYCLEGAN_TINY),
    "cut": _unaligned_setup(CUT_TINY),
    "classifier": _classifier_setup,
    "dann": _dann_setup,
    "dtn": _dtn_setup,
    "crossmatch": _crossmatch_setup,
}


def tiny_model(name: str, root: Path, *overrides: str, seed: int = 0):
    """(config, model, batch) of model `name` at its tiny size on data written under `root`; the weights are those
    of torch seed `seed`, the batch is the first `data.batch_size` items of the training set."""
    cfg = config.load(None, [*TINY_SETUPS[name](root), *overrides])
    entry = MODELS[name]
    dataset = entry.dataset(cfg.data, cfg.model, train=True)
    torch.manual_seed(seed)
    model = entry.build(cfg.model)
    items = [dataset[(i % len(dataset), i)] for i in range(cfg.data.batch_size)]
    return cfg, model, torch.utils.data.default_collate(items)


# --- what a train_step did to the networks ------------------------------------------------------------------------

def net_state(nets: dict[str, nn.Module]) -> dict[str, dict[str, tuple]]:
    """net -> parameter -> (value, grad or None, requires_grad), cloned."""
    return {name: {k: (p.detach().clone(), None if p.grad is None else p.grad.detach().clone(), p.requires_grad)
                   for k, p in net.named_parameters()} for name, net in nets.items()}


def changed_parameters(before: dict, after: dict, net: str) -> set[str]:
    return {k for k, (value, _, _) in after[net].items() if not torch.equal(value, before[net][k][0])}


def spy_optimizer_steps(model) -> list[tuple[str, str, dict]]:
    """Record (optimizer name, "before" | "after", net_state(model.raw)) around every optimizer step of `model`,
    through the optimizers' step hooks: what each sub-step of a train_step did, without touching the model."""
    calls = []
    for name, optimizer in model.optimizers.items():
        optimizer = getattr(optimizer, "optimizer", optimizer)
        optimizer.register_step_pre_hook(lambda *_, n=name: calls.append((n, "before", net_state(model.raw))))
        optimizer.register_step_post_hook(lambda *_, n=name: calls.append((n, "after", net_state(model.raw))))
    return calls


# --- the real data in ../shared/data ------------------------------------------------------------------------------

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(path: str | os.PathLike) -> Path:
    """`path` (relative: inside ../shared/data) if it exists. Where it does not, the test is skipped, except on CI
    (CI=true), where a test that cannot see its data must fail rather than pass unnoticed."""
    path = SHARED_DATA / path
    if not path.exists():
        message = f"{path} not available"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must provide ../shared/data")
        pytest.skip(message)
    return path
