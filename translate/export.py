"""Self-describing exports (config.json + one .safetensors per net) and import of reference-format .pth weights.

An export folder is all inference needs: `load_generator(export_dir)` rebuilds the architecture, loads the weights
and sets the mode the model is meant to run in, with no training flag repeated.

An export may come from someone else, so reading one never leaves its folder: net names in config.json must be
plain names (letters, digits, _), since each names a file `<net>.safetensors`, and every file read is refused
when, links followed, it lies outside the export folder (`../secret/G` as a net name, a weights file that is a
link to elsewhere).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from translate.backbones import PRETRAINED_GENERATORS, DTNGenerator, EncoderClassifier, build_generator
from translate.inference.translator import prepare_for_inference
from translate.utils import save_safetensors

EXPORT_FORMAT = 1
CONFIG_NAME = "config.json"
NET_NAME = re.compile(r"[A-Za-z0-9_]+")


def write_export(export_dir: str | Path, nets: dict, config) -> Path:
    """Write `nets` ({name: (module, spec)}) and their description; replaces an older export only when complete."""
    export_dir = Path(export_dir)
    tmp = export_dir.with_name(f".{export_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, (net, _) in nets.items():
        tensors = {k: v.detach().to("cpu", memory_format=torch.contiguous_format).clone()
                   for k, v in net.state_dict().items()}
        save_safetensors(tensors, str(tmp / f"{name}.safetensors"))
    training = config.to_dict() if dataclasses.is_dataclass(config) else config
    description = {
        "format": EXPORT_FORMAT,
        "model": training["model"]["name"],
        "nets": {name: spec for name, (_, spec) in nets.items()},
        "preprocess": {"load_size": training["data"]["load_size"], "crop_size": training["data"]["crop_size"],
                       "direction": training["data"]["direction"], "mean": 0.5, "std": 0.5},
        "training_config": training,
    }
    (tmp / CONFIG_NAME).write_text(json.dumps(description, indent=2))
    old = export_dir.with_name(f".{export_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if export_dir.exists():
        export_dir.rename(old)
    tmp.rename(export_dir)
    shutil.rmtree(old, ignore_errors=True)
    return export_dir


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A .safetensors file's tensors; a missing, truncated or foreign file is a ValueError naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path} cannot be read (truncated or not a safetensors file): {error}") from error


def state_dict_problems(expected: dict, found: dict) -> list[str]:
    """How `found` fails to fit a module whose state dict is `expected`, one phrase per kind of problem with an
    example, instead of load_state_dict's page of key names; empty when it fits."""
    missing, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    reshaped = [f"{k} {list(found[k].shape)} vs {list(v.shape)}" for k, v in expected.items()
                if k in found and found[k].shape != v.shape]
    return [f"{len(keys)} {what} (e.g. {keys[0]})" for keys, what in
            ((missing, "missing tensors"), (extra, "unexpected tensors"), (reshaped, "tensors of another shape"))
            if keys]


def read_export_config(export_dir: str | Path) -> dict:
    """config.json of an export, its format and net names checked (see the module docstring)."""
    path = Path(export_dir) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{export_dir} is not an export folder: {CONFIG_NAME} is missing")
    description = json.loads(inside_export(export_dir, path, "its config").read_text())
    if not isinstance(description, dict) or description.get("format") != EXPORT_FORMAT:
        found = description.get("format") if isinstance(description, dict) else description
        raise ValueError(f"{path}: unsupported export format {found!r}")
    if not isinstance(description.get("nets"), dict):
        raise ValueError(f"{path}: no \"nets\" table")
    for net in description["nets"]:
        if not NET_NAME.fullmatch(net):
            raise ValueError(f"export {export_dir}: net name {net!r} in {CONFIG_NAME} is not a plain name (letters, "
                             "digits and _ only), so its weights file would lie outside the export; refused")
    return description


def weights_path(export_dir: str | Path, net: str) -> Path:
    """The weights file of `net` (a name of the export's config), refused when it leads outside the export."""
    if not NET_NAME.fullmatch(net):
        raise ValueError(f"export {export_dir}: net name {net!r} is not a plain name (letters, digits and _ only)")
    return inside_export(export_dir, Path(export_dir) / f"{net}.safetensors", f"the weights of net {net!r}")


def inside_export(export_dir: str | Path, path: Path, what: str) -> Path:
    """`path` with every link followed, or a ValueError naming the export and `what` when that is outside it."""
    real = path.resolve()
    if not real.is_relative_to(Path(export_dir).resolve()):
        raise ValueError(f"export {export_dir}: {what} ({path.name}) lead to {real}, outside the export folder; "
                         "refused")
    return real


def load_generator(export_dir: str | Path, net: str | None = None, device: str | torch.device = "cpu",
                   mode: str | None = None) -> nn.Module:
    """An exported generator ready for inference, computing what `translate convert` computes: in the export's
    inference mode (`mode` overrides it), with train-mode BatchNorm made per-image so that an output never depends
    on the other images of the batch (translate.inference.translator), and without gradients. `net` may be omitted
    when the export holds one generator. Input (N, C, H, W) in [-1, 1], sides multiples of its size_multiple."""
    description = read_export_config(export_dir)
    net = pick_net(export_dir, description, ("generator",), net)
    spec = description["nets"][net]
    module = generator_from_spec(export_dir, net, spec, device)
    return prepare_for_inference(module, mode or spec["inference_mode"])


def generator_from_spec(export_dir: str | Path, net: str, spec: dict, device: str | torch.device = "cpu",
                        mode: str | None = None) -> nn.Module:
    """The generator `net` of an export whose config has been read: its spec and its weights file."""
    if spec["arch"] == "dtn":  # DTN's G = g(f(x)), translate/backbones/digit_nets.py
        module = DTNGenerator(spec["in_channels"], spec["out_channels"], **spec["kwargs"])
    else:
        # The weights file holds the trained encoder too, so a pretrained one is not read from its package.
        rebuild = {"pretrained": False} if spec["arch"] in PRETRAINED_GENERATORS else {}
        in_channels = spec["in_channels"] + spec.get("hint_channels", 0)
        module = build_generator(spec["arch"], in_channels, spec["out_channels"], **spec["kwargs"], **rebuild)
    module.load_state_dict(read_weights(weights_path(export_dir, net)))
    module.train((mode or spec["inference_mode"]) == "train")
    return module.to(device)


def pick_net(export_dir, description: dict, roles: tuple[str, ...], net: str | None) -> str:
    """The name of the one net of `roles` in an export, or of `net` after checking its role."""
    found = [k for k, spec in description["nets"].items() if spec["role"] in roles]
    if net is None and len(found) == 1:
        return found[0]
    if net is None:
        raise ValueError(f"{export_dir} holds {' / '.join(roles)} nets {found or 'none'}; choose one "
                         "(--net on the command line, net= in Python)")
    if net not in found:
        raise ValueError(f"{export_dir} has no {' / '.join(roles)} net {net!r}; it holds {found}")
    return net


def load_classifier(export_dir: str | Path, net: str | None = None, device: str | torch.device = "cpu",
                    with_spec: bool = False, roles: tuple[str, ...] = ("classifier",)):
    """Rebuild an exported EncoderClassifier (classifier, DANN) in eval mode; with_spec: (module, its spec), whose
    "image_size", "in_channels" and "classes" say how to feed it and read its logits."""
    description = read_export_config(export_dir)
    net = pick_net(export_dir, description, roles, net)
    spec = description["nets"][net]
    module = EncoderClassifier(spec["encoder"], spec["num_classes"], spec["hidden"])
    module.load_state_dict(read_weights(weights_path(export_dir, net)))
    module = module.eval().to(device)
    return (module, spec) if with_spec else module


def load_encoder(export_dir: str | Path, net: str | None = None, device: str | torch.device = "cpu",
                 with_spec: bool = False):
    """The embedding network of an export, in eval mode: a classifier's encoder (classifier, DANN), or the whole
    encoder + projection head of an `embedding` net (crossmatch); with_spec as load_classifier."""
    module, spec = load_classifier(export_dir, net, device, with_spec=True, roles=("classifier", "embedding"))
    embedder = module if spec["role"] == "embedding" else module.encoder
    return (embedder, spec) if with_spec else embedder


def load_reference_generator(path: str | Path, arch: str, norm: str = "instance", in_channels: int = 3,
                             out_channels: int = 3, ngf: int = 64, dropout: bool = False) -> nn.Module:
    """Load a pytorch-CycleGAN-and-pix2pix generator file (e.g. latest_net_G_A.pth) into our architecture.

    Key mapping: our generators keep the reference's module hierarchy, so keys are identical except that a leading
    `module.` (DataParallel) is stripped and InstanceNorm running statistics that old checkpoints carry are
    dropped (the reference's own test script does the same). Loaded with weights_only=True: no code runs.
    """
    state = read_checkpoint(path)
    module = build_generator(arch, in_channels, out_channels, ngf=ngf, norm=norm, dropout=dropout)
    module.load_state_dict(reference_state_dict(state, module))
    return module


def read_checkpoint(path: str | Path):
    """What a .pth file holds, read with weights_only=True (tensors and plain containers; no code runs). Anything
    else is a ValueError of one line naming the file, instead of torch's page about weights_only: a file that is
    neither of torch's two formats (a zip archive, or a pickle for files before torch 1.6) is not a PyTorch
    checkpoint at all, whatever its name."""
    path = Path(path)
    with open(path, "rb") as file:
        start = file.read(2)
    if start != b"PK" and start[:1] != b"\x80":  # a zip's local header; pickle protocol 2+ opens with PROTO
        raise ValueError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # parsing a damaged file can fail in any way; torch's own text is a page long
        if "allowed global" in str(error) or "Unsupported global" in str(error):
            raise ValueError(f"{path} holds Python objects besides tensors; refused, as weights only loading never "
                             "runs the code that unpickling them would") from error
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: damaged or truncated "
                         f"({type(error).__name__})") from error


def reference_state_dict(state: dict, module: nn.Module) -> dict:
    """Map a reference-format state dict onto `module`'s keys (see load_reference_generator)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    ours = module.state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v for k, v in state.items() if k in ours or not k.endswith(stats)}
