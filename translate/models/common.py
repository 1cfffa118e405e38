"""Pieces every GAN model shares: the image history pool, whole-network freezing, EMA weights, the learning-rate
schedule, the optimizer and the step counter. Each stateful piece has state_dict / load_state_dict so Accelerate's
register_for_checkpointing saves and restores it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn


class ImagePool:
    """CycleGAN's history of generated images (sec. 4 of the paper, after Shrivastava et al. 2017): D is updated on
    older fakes too, which damps model oscillation. The reference algorithm, image by image: while the pool is not
    full, store and return the image; once full, with probability 1/2 return a random stored image and store the
    new one in its place, else return the new one.

    Stored images are detached clones. Randomness comes from torch's global CPU RNG, which Accelerate saves in its
    checkpoints, so a resumed run makes the same choices.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []  # each (1, C, H, W)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        images = images.detach()
        self._follow(images)
        out = []
        for image in images.split(1):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(1).item() > 0.5:
                i = int(torch.randint(0, self.size, (1,)).item())
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def _follow(self, images: torch.Tensor) -> None:
        """Keep the stored images on the query's device and dtype (after a restore onto the CPU, say)."""
        if self.images and (self.images[0].device != images.device or self.images[0].dtype != images.dtype):
            self.images = [image.to(images.device, images.dtype) for image in self.images]

    def state_dict(self) -> dict:
        images = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": images}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = [image.clone() for image in state["images"].split(1)] if state["images"].numel() else []


def set_requires_grad(nets: nn.Module | Iterable[nn.Module | None] | None, flag: bool) -> None:
    """Freeze or unfreeze whole networks (a module, or a list with None entries ignored), as the reference does
    around the G step. Never parts of one: partial freezing breaks DDP's gradient reduction."""
    for net in [nets] if isinstance(nets, nn.Module) or nets is None else nets:
        if net is not None:
            for p in net.parameters():
                p.requires_grad_(flag)


def _unwrap(net: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel / torch.compile wrappers, so state_dict keys carry no prefix."""
    while True:
        if isinstance(net, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            net = net.module
        elif isinstance(getattr(net, "_orig_mod", None), nn.Module):
            net = net._orig_mod
        else:
            return net


class EMA:
    """Exponential moving average of a network's weights, exported instead of the raw weights (as in
    Karras et al. 2018, Yazici et al. 2019). After each generator step: shadow = decay * shadow + (1 - decay) *
    param for floating-point parameters; buffers (BatchNorm statistics, counters) are copied as they are.

    Callers pass the unwrapped net; a DDP- or compile-wrapped one is unwrapped here, so the shadow is keyed by
    the plain module's state_dict keys. The shadow lives on the net's device and follows it when the net moves.
    """

    def __init__(self, net: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in _unwrap(net).state_dict().items()}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        net = _unwrap(net)
        params = {name for name, _ in net.named_parameters(remove_duplicate=False)}
        for key, value in net.state_dict().items():
            shadow = self.shadow[key]
            if shadow.device != value.device:  # the net moved (e.g. Accelerate's prepare) after the EMA was made
                shadow = self.shadow[key] = shadow.to(value.device)
            if key in params and value.is_floating_point():
                shadow.lerp_(value.to(shadow.dtype), 1.0 - self.decay)
            else:
                shadow.copy_(value)

    def copy_to(self, net: nn.Module) -> None:
        """Load the averaged weights into net (e.g. a deep copy of the generator, for export)."""
        _unwrap(net).load_state_dict(self.shadow)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": {k: v.cpu() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)


def averaged(net: nn.Module, ema: EMA | None) -> nn.Module:
    """The net to export: a copy holding the EMA weights when there is an EMA, else the net itself. Every model's
    export_nets goes through this, so `tricks.ema_decay` means the same thing everywhere."""
    if ema is None:
        return net
    net = copy.deepcopy(net)
    ema.copy_to(net)
    return net


def linear_decay_lambda(constant_steps: int, decay_steps: int) -> Callable[[int], float]:
    """The reference's 'linear' lr policy (its lambda_rule with epoch_count = 1), counted in steps, for LambdaLR:

        factor(step) = 1 - max(0, step + 1 - constant_steps) / (decay_steps + 1)

    1.0 for step < constant_steps, then 1 / (decay_steps + 1) less per step. The last trained step,
    constant_steps + decay_steps - 1, runs at 1 / (decay_steps + 1): as in the reference the lr never reaches 0
    while training; the factor is exactly 0 at step constant_steps + decay_steps (and clamped at 0 beyond).
    """

    def factor(step: int) -> float:
        return max(0.0, 1.0 - max(0, step + 1 - constant_steps) / float(decay_steps + 1))

    return factor


def adam(params, lr: float = 2e-4, beta1: float = 0.5, beta2: float = 0.999) -> torch.optim.Adam:
    """Adam with the pix2pix / CycleGAN settings (lr 0.0002, momentum terms 0.5 and 0.999; pix2pix sec. 3.3)."""
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2))


class StepCounter:
    """The training step as a registered state object, so checkpoints carry it (not folder names), and how many
    times train.on_nonfinite=rollback has rolled the run back (its limit holds across resumes)."""

    def __init__(self, step: int = 0):
        self.step = step
        self.rollbacks = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.rollbacks = int(state.get("rollbacks", 0))  # checkpoints from before rollbacks existed have none


class TrainClock:
    """Seconds spent in the training loop, summed over resumes (train.max_minutes, the quality-vs-time curves)."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds

    def state_dict(self) -> dict:
        return {"seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.seconds = float(state["seconds"])


@dataclass(frozen=True)
class Progress:
    """Where training stands, handed to train_step: annealing (instance noise) and DANN's GRL schedule need it."""

    step: int  # steps completed before this one
    total: int  # train.max_steps

    @property
    def fraction(self) -> float:
        return self.step / max(self.total, 1)
