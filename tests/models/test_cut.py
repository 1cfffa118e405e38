"""CUT and FastCUT: the modes resolve to the paper's settings, the taps are the layers the paper lists, the G step
trains G and F but not D, the D step only D, the export loads, two-process DDP (exact resume after kill -9 is
tests/training/test_loop.py's, with every model)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from tests.helpers import CUT_TINY, FakeAccelerator
from translate import config
from translate.backbones import ResnetBlock
from translate.backbones.generators import encoder_features
from translate.export import load_generator, write_export
from translate.models import MODELS
from translate.models.common import Progress

REPO = Path(__file__).resolve().parents[2]


def build(*overrides):
    cfg = config.load(None, [*CUT_TINY, *overrides])
    return cfg, MODELS["cut"].build(cfg.model)


def images(seed: int, n: int = 2, channels: int = 3) -> torch.Tensor:
    return torch.rand(n, channels, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def snapshot(net: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(net: nn.Module, before: dict) -> set:
    return {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}


def weights(net: nn.Module) -> set:
    return {k for k, p in net.named_parameters() if p.dim() > 1}


def test_modes_resolve_to_the_paper_settings(tmp_path):
    cut = config.load(None, ["model.name=cut"]).model
    assert (cut.lambda_nce, cut.nce_idt, cut.flip_equivariance) == (1.0, True, False)
    assert (cut.lambda_gan, cut.nce_t, cut.num_patches, cut.netf_nc, cut.nce_layers) == (1.0, 0.07, 256, 256,
                                                                                         [0, 4, 7, 10, 14])
    assert (cut.generator, cut.norm, cut.dropout, cut.gan_mode, cut.init_type, cut.init_gain) == (
        "resnet_9blocks", "instance", False, "lsgan", "xavier", 0.02)
    fast = config.load(None, ["model.name=cut", "model.mode=fastcut"])
    assert (fast.model.lambda_nce, fast.model.nce_idt, fast.model.flip_equivariance) == (10.0, False, True)
    # a value the recipe sets wins over the mode's, and the saved config holds the resolved values
    mixed = config.load(None, ["model.name=cut", "model.mode=fastcut", "model.lambda_nce=4", "model.nce_idt=true"])
    assert (mixed.model.lambda_nce, mixed.model.nce_idt, mixed.model.flip_equivariance) == (4.0, True, True)
    config.save(fast, tmp_path / "config.yaml")
    assert config.load(tmp_path / "config.yaml").model == fast.model
    for bad, message in [("model.mode=CUTT", "model.mode"), ("model.generator=unet_256", "ResNet"),
                         ("model.lambda_nce=0", "lambda_nce")]:
        with pytest.raises(ValueError, match=message):
            config.load(None, ["model.name=cut", bad])


@pytest.mark.parametrize("generator", ["resnet_9blocks", "resnet_6blocks"])
def test_default_taps_are_the_layers_the_paper_lists(generator):
    cfg, model = build(f"model.generator={generator}")
    G, ngf = model.raw["G"], cfg.model.ngf
    taps = [G.model[i] for i in cfg.model.nce_layers]
    # the padded input, the first and second downsampling conv, the first and fifth residual block
    assert isinstance(taps[0], nn.ReflectionPad2d)
    assert [(t.stride, t.out_channels) for t in taps[1:3]] == [((2, 2), 2 * ngf), ((2, 2), 4 * ngf)]
    blocks = [i for i, layer in enumerate(G.model) if isinstance(layer, ResnetBlock)]
    assert cfg.model.nce_layers[3:] == [blocks[0], blocks[4]]
    assert [mlp[0].in_features for mlp in model.raw["F"].mlps] == [3, 2 * ngf, 4 * ngf, 4 * ngf, 4 * ngf]
    features = encoder_features(G, images(0), cfg.model.nce_layers)
    assert [f.shape[-1] for f in features] == [38, 16, 8, 8, 8]


def test_encoder_features_stop_after_the_last_tap():
    _, model = build()
    G = model.raw["G"]

    def fail(*_):
        raise AssertionError("ran past the last tap")

    G.model[5].register_forward_hook(fail)
    features = encoder_features(G, images(0), [1, 4])
    assert [f.shape[1] for f in features] == [4, 8]
    with pytest.raises(ValueError, match="increasing"):
        encoder_features(G, images(0), [4, 1])


def test_generator_step_trains_g_and_f_but_not_d():
    _, model = build()
    real_a, real_b = images(0), images(1)
    before = {name: snapshot(net) for name, net in model.raw.items()}
    fake = model.nets["G"](torch.cat([real_a, real_b]))
    out = model.generator_step(real_a, real_b, fake, False, FakeAccelerator(), 0)
    assert set(out) == {"loss_G_GAN", "loss_NCE", "loss_NCE_Y"}
    assert all(p.grad is not None for name in ("G", "F") for p in model.raw[name].parameters())
    assert weights(model.raw["G"]) <= changed(model.raw["G"], before["G"])
    assert weights(model.raw["F"]) <= changed(model.raw["F"], before["F"])
    assert not changed(model.raw["D"], before["D"])
    assert all(p.grad is None and not p.requires_grad for p in model.raw["D"].parameters())


def test_discriminator_step_trains_d_only():
    _, model = build("model.mode=fastcut")
    before = {name: snapshot(net) for name, net in model.raw.items()}
    fake = model.nets["G"](images(0))
    model.discriminator_step(fake, images(1), FakeAccelerator(), 0)
    assert weights(model.raw["D"]) <= changed(model.raw["D"], before["D"])
    assert not changed(model.raw["G"], before["G"]) and not changed(model.raw["F"], before["F"])
    assert all(p.grad is None for name in ("G", "F") for p in model.raw[name].parameters())


@pytest.mark.parametrize("mode, losses, visuals", [
    ("cut", {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y"}, {"real_A", "fake_B", "real_B", "idt_B"}),
    ("fastcut", {"loss_D", "loss_G_GAN", "loss_NCE"}, {"real_A", "fake_B", "real_B"}),
])
def test_train_step_reports_the_mode_losses(mode, losses, visuals):
    _, model = build(f"model.mode={mode}")
    batch = {"A": images(0), "B": images(1)}
    out = model.train_step(batch, FakeAccelerator(), Progress(0, 4))
    assert set(out) == losses and all(torch.isfinite(torch.tensor(v)) for v in out.values())
    assert set(model.visuals(batch)) == visuals


def test_export_loads_and_keeps_sizes(tmp_path):
    cfg, model = build("model.mode=fastcut", "model.channels_b=1")
    export = write_export(tmp_path / "export", model.export_nets(), cfg)
    assert set(load_file(export / "G_AB.safetensors")) == set(model.raw["G"].state_dict())
    G = load_generator(export)
    x = images(2, n=1)
    assert G(x).shape == (1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(G(x), model.raw["G"].eval()(x))
    with pytest.raises(ValueError, match="nce_idt"):
        build("model.channels_b=1")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU DDP; on a GPU machine --multi_gpu uses the GPUs")
def test_two_process_ddp_on_cpu(unaligned_root, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "-m", "translate", "train", str(recipe), *CUT_TINY, f"data.root={unaligned_root}",
                           "train.max_steps=3", "--run-dir", str(run)],
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert {"loss_D", "loss_G_GAN", "loss_NCE", "loss_NCE_Y", "lr_G", "lr_F", "lr_D"} <= set(records[-1])
    assert (run / "checkpoints" / "step_00000003" / "rng_1.pt").exists(), "the second rank never ran"
    assert load_generator(run / "export")(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
