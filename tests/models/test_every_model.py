"""Every registered model (read from MODELS, so a new one is covered as soon as it is registered): one train_step
at tiny size gives finite float losses and trains every parameter of every trainable net, leaves frozen networks
(DTN's f, a projected D's feature network) as they were, and exports the trained modules (or their EMA copies)."""

import math

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from tests.helpers import TINY_SETUPS, FakeAccelerator, changed_parameters, net_state, tiny_model
from translate.models import MODELS
from translate.models.common import Progress


def biases_before_normalisation(net: nn.Module) -> set[str]:
    """Biases of layers that feed a normalisation by batch or instance statistics directly (conv -> BatchNorm in
    train mode, conv -> InstanceNorm): the norm subtracts the mean, so their gradient is zero up to round-off, and
    whether one Adam step moves them depends on the CPU's arithmetic (seen: LeNet's fc bias before BatchNorm1d
    moved on an AVX2 CPU and stayed exactly put on an AVX512 one). Every other parameter must move."""
    found = set()
    for prefix, module in net.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name, layer), (_, norm) in zip(children, children[1:]):
            by_statistics = isinstance(norm, _InstanceNorm) or isinstance(norm, _BatchNorm) and norm.training
            if by_statistics and getattr(layer, "bias", None) is not None:
                found.add(f"{prefix}.{name}.bias".lstrip("."))
    return found


def test_biases_before_normalisation_names_only_those_the_norm_cancels():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Sequential(nn.Conv2d(4, 4, 3), nn.InstanceNorm2d(4)), nn.Conv2d(4, 2, 1, bias=False),
                        nn.BatchNorm2d(2), nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    net[7].eval()  # fixed statistics: the bias before it does get a gradient
    assert biases_before_normalisation(net) == {"0.bias", "3.0.bias"}


def ema_override(name: str) -> str | None:
    """The override that turns on the exported EMA of model `name`, None where it has none."""
    defaults = MODELS[name].config()
    if hasattr(defaults, "tricks"):
        return "model.tricks.ema_decay=0.5"
    return "model.ema_decay=0.5" if hasattr(defaults, "ema_decay") else None


def frozen_modules(model) -> list[nn.Module]:
    """Modules reachable from the model (its raw nets, its module attributes and modules kept out of their parent's
    registered children, like a projected D's feature network) whose parameters all are frozen."""
    seen, found = set(), []
    stack = [*model.raw.values(), *(v for v in vars(model).values() if isinstance(v, nn.Module))]
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            found.append(module)
        stack += [*module.children(), *(v for v in vars(module).values() if isinstance(v, nn.Module))]
    return found


def test_every_model_has_a_tiny_setup():
    assert set(TINY_SETUPS) == set(MODELS), "tests/helpers.py TINY_SETUPS needs an entry for each registered model"


@pytest.mark.parametrize("name, extra", [*((name, []) for name in MODELS),
                                         ("pix2pix", ["model.discriminator=projected", "model.gan_mode=hinge"])],
                         ids=[*MODELS, "pix2pix-projected"])
def test_one_step_trains_every_parameter_and_nothing_frozen(name, extra, tmp_path):
    _, model, batch = tiny_model(name, tmp_path, *extra)
    frozen = frozen_modules(model)
    assert frozen or name not in ("dtn",) and not extra, "DTN's f / the projected D's features not found"
    frozen_before = [{k: v.clone() for k, v in m.state_dict().items()} for m in frozen]
    before = net_state(model.nets)

    out = model.train_step(batch, FakeAccelerator(), Progress(1, 4))

    assert out and all(isinstance(v, float) and math.isfinite(v) for v in out.values()), out
    after = net_state(model.nets)
    for net, params in after.items():
        trainable = set(params) - biases_before_normalisation(model.nets[net])
        assert trainable - changed_parameters(before, after, net) == set(), f"{name}: {net} left unchanged"
    for module, saved in zip(frozen, frozen_before):
        state = module.state_dict()
        assert all(torch.equal(saved[k], state[k]) for k in saved), f"{name}: frozen {type(module).__name__} changed"
        assert all(p.grad is None for p in module.parameters())

    raw = {id(net): key for key, net in model.raw.items()}
    for exported, (net, _) in model.export_nets().items():
        # the trained module itself, or (DTN) a module holding it: the export carries the trained weights
        prefix, source = next(((p, raw[id(m)]) for p, m in net.named_modules() if id(m) in raw), (None, None))
        assert source is not None, f"{name}: export {exported} holds none of the trained nets"
        keys = {k.removeprefix(f"{prefix}.") for k in net.state_dict() if not prefix or k.startswith(f"{prefix}.")}
        assert keys == set(model.raw[source].state_dict()), f"{name}: export {exported}"


@pytest.mark.parametrize("name", [name for name in MODELS if ema_override(name)])
def test_the_export_is_the_ema_copy(name, tmp_path):
    _, model, batch = tiny_model(name, tmp_path, ema_override(name))
    model.train_step(batch, FakeAccelerator(), Progress(1, 4))
    emas = {key.removeprefix("ema_"): ema for key, ema in model.extra_state.items() if key.startswith("ema_")}
    assert emas, f"{name}: {ema_override(name)} made no EMA"
    exported = {key: net for key, (net, _) in model.export_nets().items()}
    for source, ema in emas.items():
        raw = model.raw[source].state_dict()
        # exported under the raw net's name (CycleGAN's G_AB, G_BA), else the one export of its architecture
        net = exported.get(source) or next(net for net in exported.values() if set(net.state_dict()) == set(raw))
        assert net is not model.raw[source]
        assert set(net.state_dict()) == set(ema.shadow)
        assert all(torch.equal(v, ema.shadow[k]) for k, v in net.state_dict().items())
        # decay 0.5 after one step: halfway between the initial and the trained weights, so not the raw weights
        assert any(not torch.equal(v, raw[k]) for k, v in net.state_dict().items())
