"""Building blocks shared by the generators and discriminators.

Norm and init helpers follow pytorch-CycleGAN-and-pix2pix (models/networks.py) so that
networks built here match the reference layer for layer and load its checkpoints.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import init
from torch.nn.utils import parametrize

NORMS = ("batch", "instance", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


def _check_norm(kind: str) -> None:
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """Return a constructor ``num_features -> module`` for the given norm kind.

    Instance norm keeps no running stats (as in the reference), so its state dict is empty.
    """
    _check_norm(kind)
    if kind == "batch":
        return lambda n: nn.BatchNorm2d(n, affine=True, track_running_stats=True)
    if kind == "instance":
        return lambda n: nn.InstanceNorm2d(n, affine=False, track_running_stats=False)
    return lambda n: nn.Identity()


def uses_bias(kind: str) -> bool:
    """Whether a conv followed by this norm gets a bias.

    Batch norm has its own shift, so the conv bias would be redundant. The reference gives a
    bias with instance norm. With "none" the reference gives no bias at all (a side effect of
    how it detects instance norm); we give one, because without a norm nothing else shifts
    the activations. Checkpoints trained with norm "none" therefore lack these bias keys.
    """
    _check_norm(kind)
    return kind != "batch"


def _raw_weight(m: nn.Module) -> torch.Tensor:
    """The tensor that actually holds a module's weight, looking through spectral norm."""
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    if hasattr(m, "weight_orig"):  # old hook-based torch.nn.utils.spectral_norm
        return m.weight_orig
    return m.weight


@torch.no_grad()
def _refresh_spectral_norm(m: nn.Module) -> None:
    """Re-estimate the singular vectors after re-initialising a spectrally normed weight.

    They were estimated for the constructor's weight; without this, an eval-mode forward right
    after init would divide by the wrong sigma until training has run a few power iterations.
    """
    if not parametrize.is_parametrized(m, "weight"):
        return
    weight = m.parametrizations.weight.original
    for p in m.parametrizations.weight:
        if weight.ndim > 1 and hasattr(p, "_power_method") and hasattr(p, "_reshape_weight_to_matrix"):
            p._power_method(p._reshape_weight_to_matrix(weight), 15)


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights and batch-norm affines the way the reference does.

    normal: N(0, gain); xavier: xavier_normal(gain); kaiming: kaiming_normal(a=0, fan_in),
    which ignores gain as in the reference; orthogonal: orthogonal(gain). Biases are zeroed,
    BatchNorm weights drawn from N(1, gain). Returns ``net`` for chaining.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(f"unknown init type {init_type!r}; valid: {', '.join(INIT_TYPES)}")

    def init_module(m: nn.Module) -> None:
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            w = _raw_weight(m)
            if init_type == "normal":
                init.normal_(w, 0.0, gain)
            elif init_type == "xavier":
                init.xavier_normal_(w, gain=gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(w, a=0, mode="fan_in")
            else:
                init.orthogonal_(w, gain=gain)
            if m.bias is not None:
                init.zeros_(m.bias)
            _refresh_spectral_norm(m)
        elif isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)) and m.weight is not None:
            init.normal_(m.weight, 1.0, gain)
            init.zeros_(m.bias)

    net.apply(init_module)
    return net


class _ReverseGrad(torch.autograd.Function):
    """Identity forward, gradient scaled by -lambd backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = lambd
        # A fresh tensor (not a view) so later in-place ops on the output stay legal.
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * -ctx.lambd, None


class GradientReversal(nn.Module):
    """Gradient reversal layer (DANN): lets one backward pass train the feature extractor
    to fool the domain classifier that sits after this layer.

    ``lambd`` is a plain attribute (not state) so the training loop can anneal it.
    """

    def __init__(self, lambd: float = 1.0):
        super().__init__()
        self.lambd = lambd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGrad.apply(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}"


class MinibatchStd(nn.Module):
    """Append one channel holding the average per-feature std over a group of samples
    (StyleGAN), which lets a discriminator notice a generator that produces little variety.

    Groups are consecutive samples. A batch smaller than ``group_size`` forms one group; a
    batch that is not a multiple of it uses gcd(batch, group_size), or the whole batch if
    that gcd is 1. The std is computed
    in at least float32 with an epsilon, so a batch of one gives a finite (near-zero) value.
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8):
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            g = math.gcd(n, g)
            if g == 1:  # groups of one carry no information; use the whole batch instead
                g = n
        y = x.to(torch.promote_types(x.dtype, torch.float32)).reshape(n // g, g, c, h, w)
        std = (y.var(dim=1, unbiased=False) + self.eps).sqrt()  # (n // g, c, h, w)
        stat = std.mean(dim=(1, 2, 3)).repeat_interleave(g).to(x.dtype)  # one value per sample
        return torch.cat([x, stat.view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"
