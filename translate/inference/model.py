"""One loader for what inference accepts as MODEL: an export folder, or a reference-format generator file.

Every way of getting it wrong ends in a ModelError whose message is one line naming the path and the problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from translate.backbones import GENERATORS, build_generator
from translate.backbones.layers import NORMS
from translate.export import (
    generator_from_spec,
    pick_net,
    read_checkpoint,
    read_export_config,
    reference_state_dict,
    state_dict_problems,
    weights_path,
)


class ModelError(ValueError):
    """MODEL is missing, unreadable, or does not match the architecture it is loaded into."""


@dataclass
class Model:
    net: nn.Module
    name: str  # the generator's name in the export ("G_AB"), or the file's stem
    arch: str
    in_channels: int
    out_channels: int
    size_multiple: int
    inference_mode: str  # "eval" or "train", as the model is meant to run
    sha256: str  # of the weights file, to tell which model made an output
    hint_channels: int = 0  # > 0: the net also reads colour hints (translate/data/hints.py)

    def describe(self, path: Path) -> dict:
        return {"path": str(path), "net": self.name, "arch": self.arch, "sha256": self.sha256,
                "in_channels": self.in_channels, "out_channels": self.out_channels}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(path: str | Path, net: str | None = None, arch: str | None = None, norm: str = "instance",
               ngf: int = 64, in_channels: int = 3, out_channels: int = 3, dropout: bool = False) -> Model:
    """An export folder (`net` picks the generator) or a `*_net_G*.pth` file (`arch` and the rest describe it).

    A reference file runs in train mode by default, as the reference's test script does without --eval; for its
    CycleGAN generators (instance norm, no dropout) train and eval compute the same.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model {path} does not exist")
    if path.is_dir():
        return _load_export(path, net)
    if arch is None:
        raise ModelError(f"model {path} is a weights file: say which architecture it holds with --arch "
                         f"({', '.join(GENERATORS)})")
    if arch not in GENERATORS:
        raise ModelError(f"unknown --arch {arch!r}; valid: {', '.join(GENERATORS)}")
    kwargs = dict(norm=norm, in_channels=in_channels, out_channels=out_channels, ngf=ngf, dropout=dropout)
    try:
        state = read_checkpoint(path)
    except ValueError as error:  # not a checkpoint, damaged, objects besides tensors: the message names the file
        raise ModelError(f"model {error}") from error
    except OSError as error:
        raise ModelError(f"cannot read model {path}: {error.strerror or error}") from error
    try:
        module = build_generator(arch, **kwargs)
        module.load_state_dict(reference_state_dict(state, module))
    except Exception as error:  # a state that is no state dict, key or shape mismatches, an unknown norm
        described = f"{arch} (norm {norm}, ngf {ngf}, {in_channels}->{out_channels} channels)"
        raise ModelError(f"cannot load model {path} as {described}: {_diagnose(state, arch, kwargs, error)}") \
            from error
    return Model(module, path.stem, arch, in_channels, out_channels, module.size_multiple, "train",
                 file_sha256(path))


def _load_export(path: Path, net: str | None) -> Model:
    try:
        description = read_export_config(path)
        net = pick_net(path, description, ("generator",), net)
        spec = description["nets"][net]
        module = generator_from_spec(path, net, spec)
    except (FileNotFoundError, ValueError, KeyError, RuntimeError, OSError) as error:
        raise ModelError(f"cannot load model {path}: {_first_line(error)}") from error
    return Model(module, net, spec["arch"], spec["in_channels"], spec["out_channels"], spec["size_multiple"],
                 spec["inference_mode"], file_sha256(weights_path(path, net)), spec.get("hint_channels", 0))


def _diagnose(state, arch: str, kwargs: dict, error: Exception) -> str:
    """One line instead of load_state_dict's page of key names: how many keys are missing, extra or reshaped."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "the file does not hold a generator state dict (name -> tensor)"
    try:
        module = build_generator(arch, **kwargs)
    except ValueError as build_error:  # e.g. an unknown norm
        return _first_line(build_error)
    problems = state_dict_problems(module.state_dict(), reference_state_dict(state, module))
    if not problems:
        return _first_line(error)
    return "weights do not fit: " + "; ".join(problems) + "; check --arch, --norm, --ngf and the channel counts"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def add_model_arguments(parser) -> None:
    """MODEL and the flags that describe it, shared by the commands that load a generator."""
    parser.add_argument("model", type=Path, help="export folder of `translate train`, or a reference *_net_G*.pth")
    parser.add_argument("--net", help="which generator of the export (G_AB, G_BA, G); needed when it holds several")
    ref = parser.add_argument_group("reference weights (.pth files of pytorch-CycleGAN-and-pix2pix)")
    ref.add_argument("--arch", choices=GENERATORS, help="the file's architecture, e.g. resnet_9blocks")
    ref.add_argument("--norm", choices=NORMS, default="instance", help="the file's normalisation layers")
    ref.add_argument("--ngf", type=int, default=64, help="the file's generator width (filters of the first layer)")
    ref.add_argument("--in-channels", type=int, default=3, help="channels the generator reads (1 gray, 3 RGB)")
    ref.add_argument("--out-channels", type=int, default=3, help="channels the generator writes")
    ref.add_argument("--dropout", action="store_true", help="the generator was built with dropout (pix2pix)")


def load_model_from_args(args) -> Model:
    return load_model(args.model, args.net, args.arch, args.norm, args.ngf, args.in_channels, args.out_channels,
                      args.dropout)
