"""uint8 images in, uint8 images out: normalisation, padding, tiling, autocast and the eval/train choice in one place.

Train mode (pix2pix's default at inference: dropout on, batch statistics) is made independent of the batch: each
BatchNorm is replaced by per-image normalisation with the same affine weights, which is exactly what the reference
computes at its batch size of 1. Batching therefore never changes a train-mode model's output statistics; only
dropout draws differ with the batching. Dropout draws come from the Translator's own seeded RNG stream, untouched by
anything else the process draws (DataLoader iterators, a training loop around a periodic evaluation), so the same
images in the same batches give the same outputs wherever the Translator runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from translate.data.hints import HINT_CHANNELS, planes_from_rgba
from translate.inference.batching import group_by_size
from translate.inference.compiled import ShapeCompiled
from translate.inference.hint_maps import HintError, fit_hint_maps
from translate.inference.hint_propagation import propagate_hint_colours
from translate.inference.padding import crop, pad_to_multiple
from translate.inference.pictures import like_input, to_model_input
from translate.inference.scale import TrainingScale, training_scale
from translate.inference.tiling import check_tile, translate_tiled

MODES = ("eval", "train")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

log = logging.getLogger(__name__)


def emulated_precision(precision: str, device: str | torch.device) -> str | None:
    """Why `precision` will be slow on `device`, or None: a CPU without bf16/fp16 instructions (AVX512-BF16, AMX;
    AVX512-FP16, AMX-FP16) emulates them in oneDNN. Measured on this project's AVX2 CPU: retrieval embedding 15x
    slower in bf16 than in fp32, where an AMX CPU ran convert 2.5x faster."""
    if PRECISIONS.get(precision) is None or torch.device(device).type != "cpu":
        return None
    if cpu_has_native(precision) is not False:
        return None  # native, or a torch without the probe: no claim either way
    instructions = {"bf16": "AMX or AVX512-BF16", "fp16": "AMX-FP16 or AVX512-FP16"}[precision]
    return (f"{precision} on this CPU is emulated (no native {precision} instructions, e.g. {instructions}): "
            "expect it to run several times slower than fp32")


def cpu_has_native(precision: str) -> bool | None:
    """Whether oneDNN reports native `precision` ("bf16" or "fp16") instructions on this CPU; None for a torch
    without that probe."""
    probe = getattr(torch.ops.mkldnn, f"_is_mkldnn_{precision}_supported", None)
    return None if probe is None else bool(probe())


class SampleNorm(nn.Module):
    """A train-mode BatchNorm2d as the reference runs it at batch size 1: each image with its own statistics."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def prepare_for_inference(net: nn.Module, mode: str) -> nn.Module:
    """Set eval or train mode for inference (see the module docstring) and drop gradients."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "train":
        for parent in list(net.modules()):
            for name, child in parent.named_children():
                if isinstance(child, nn.BatchNorm2d):
                    setattr(parent, name, SampleNorm(child))
    net.train(mode == "train")
    return net.requires_grad_(False)


def to_uint8(y: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> 0..255, rounded (the reference truncates; the two differ by at most 1)."""
    return ((y.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


class Translator:
    """Translate same-size HxWxC uint8 images with a generator, keeping each image's exact size.

    Images are reflect-padded to the net's `size_multiple` and cropped back; with `tile`, images larger than a tile
    go through overlapping, blended tiles (rounded up to the multiple) of at most `batch_size` at a time.
    hint_channels: the net also reads colour hints (translate/data/hints.py); each image may come with an RGBA hint
    map and goes without (all zeros) otherwise. The map travels as 4 more uint8 channels of the image, so padding and
    tiling treat both alike.
    """

    def __init__(self, net: nn.Module, size_multiple: int, device: str | torch.device = "cpu",
                 precision: str = "fp32", tile: int | None = None, overlap: int = 32, batch_size: int = 1,
                 compile: str = "off", seed: int = 0, hint_channels: int = 0,
                 propagate_hints: bool = True):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if tile is not None:
            check_tile(tile, overlap)
            tile = math.ceil(tile / size_multiple) * size_multiple
        self.device = torch.device(device)
        self.net = ShapeCompiled(net.to(self.device), compile)
        self.size_multiple, self.tile, self.overlap, self.batch_size = size_multiple, tile, overlap, batch_size
        if hint_channels not in (0, HINT_CHANNELS):
            raise ValueError(f"hint_channels must be 0 or {HINT_CHANNELS}, got {hint_channels}")
        self.hint_channels, self.propagate_hints = hint_channels, propagate_hints
        self.min_side = getattr(net, "min_side", 1)  # a 1 x 1 image is padded to what the net can take
        self.dtype = PRECISIONS[precision]
        if warning := emulated_precision(precision, self.device):
            log.warning(warning)
        self._rng_devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=self._rng_devices):
            torch.manual_seed(seed)  # dropout draws of train-mode models
            self._rng_state = self._get_rng_state()

    in_channels: int | None = None  # set by from_export: PIL inputs are converted to it
    scale: TrainingScale | None = None  # set by from_export: inputs are resized to it

    @classmethod
    def from_export(cls, model: str | Path, net: str | None = None, *, size: str = "train",
                    device: str | torch.device | None = None, precision: str = "fp32", tile: int | None = None,
                    overlap: int = 32, batch_size: int = 1, mode: str | None = None, seed: int = 0,
                    propagate_hints: bool = True) -> Translator:
        """The Python API: a Translator for an export folder (`translate import` makes one of a reference .pth)
        that takes PIL images or numpy arrays, one or a list, and returns the same kind, computing what
        `translate convert` writes for them.

        size: "train" resizes every image to the training scale (translate.inference.scale), "keep" runs at the
        image's own size. tile / overlap / batch_size / precision as convert's flags; the device defaults to the
        GPU when there is one. propagate_hints as the constructor's.
        """
        from translate.export import read_export_config
        from translate.inference.model import load_model

        if size not in ("train", "keep"):
            raise ValueError(f"size must be 'train' or 'keep', got {size!r}")
        loaded = load_model(model, net)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        translator = cls(prepare_for_inference(loaded.net, mode or loaded.inference_mode), loaded.size_multiple,
                         device, precision, tile, overlap, batch_size, seed=seed, hint_channels=loaded.hint_channels,
                         propagate_hints=propagate_hints)
        translator.in_channels = loaded.in_channels
        if size == "train":
            translator.scale = training_scale(read_export_config(model))
        return translator

    def __call__(self, images, hints=None):
        """One image or a list: PIL images or HxW(xC) uint8 arrays, returned as the same kind. A list of same-size
        HxWxC arrays (what convert and the studio pass) runs as one batch; other lists are grouped by size.

        hints (models trained with colour hints): one RGBA hint map per image (a PIL image or an HxWx4 uint8 array
        of the image's own size, alpha >= 128 marking a hint), or None for an image without hints; a single image
        takes a single map."""
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        maps = self._hint_list(hints, single)
        if self.scale is None and self.in_channels is None and all(isinstance(i, np.ndarray) for i in batch) \
                and len({i.shape for i in batch}) == 1:
            outputs = self._translate(batch, fit_hint_maps(maps, batch, batch))
        else:
            inputs = [to_model_input(image, self.in_channels, self.scale) for image in batch]
            fitted = fit_hint_maps(maps, batch, inputs)
            outputs = [None] * len(inputs)
            for group in group_by_size(range(len(inputs)), lambda i: inputs[i].shape, max(1, self.batch_size)):
                group_hints = [fitted[i] for i in group] if fitted else None
                for i, output in zip(group, self._translate([inputs[i] for i in group], group_hints)):
                    outputs[i] = output
            outputs = [like_input(output, image) for output, image in zip(outputs, batch)]
        return outputs[0] if single else outputs

    def _hint_list(self, hints, single: bool) -> list | None:
        if hints is None:
            return None
        if not self.hint_channels:
            raise HintError("this model reads no colour hints (it was trained without model.colour_hints)")
        return [hints] if single else list(hints)

    def _translate(self, images: list[np.ndarray], hints: list | None = None) -> list[np.ndarray]:
        """Same-size HxWxC uint8 images, and for a hinted net their fitted HxWx4 hint maps (None: no hints)."""
        if self.hint_channels:
            height, width = images[0].shape[:2]
            empty = np.zeros((height, width, HINT_CHANNELS), np.uint8)
            hints = hints or [None] * len(images)
            images = [np.concatenate([image, empty if hint is None else hint], axis=2)
                      for image, hint in zip(images, hints)]
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        if self.tile and max(x.shape[-2:]) > self.tile:
            out = [to_uint8(translate_tiled(self.forward, image, self.tile, self.overlap, self.batch_size))
                   for image in x]
            return [y.permute(1, 2, 0).numpy() for y in out]
        return list(to_uint8(self.forward(x)).permute(0, 2, 3, 1).cpu().numpy())

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) uint8 -> (N, C', H, W) float in [-1, 1] on the device; the reference's ToTensor+Normalize.
        A hinted net's last 4 channels are the RGBA hint map, turned into its hint planes."""
        x = x.to(self.device, non_blocking=True)
        image = x[:, :-HINT_CHANNELS] if self.hint_channels else x
        image = image.float().div_(255).sub_(0.5).div_(0.5)
        planes = planes_from_rgba(x[:, -HINT_CHANNELS:]) if self.hint_channels else None
        x = image if planes is None else torch.cat([image, planes], 1)
        x, pads = pad_to_multiple(x, self.size_multiple, self.min_side)
        with self._own_rng(), torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16,
                                             enabled=self.dtype is not None):
            y = self.net(x)
        y = crop(y, pads).float()
        return propagate_hint_colours(y, planes) if planes is not None and self.propagate_hints else y

    @contextlib.contextmanager
    def _own_rng(self):
        """Run with this Translator's RNG stream, leaving the process's global RNG as it was."""
        with torch.random.fork_rng(devices=self._rng_devices):
            cpu, cuda = self._rng_state
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state(cuda, self.device)
            yield
            self._rng_state = self._get_rng_state()

    def _get_rng_state(self):
        return torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if self._rng_devices else None
