"""fp16 mixed precision on the CPU: Accelerate ignores mixed_precision=fp16 on a CPU (no autocast, no gradient
scaler: the run is fp32), so FP16Accelerator does what it does on a GPU, autocast(float16) around the prepared
forwards and a GradScaler around backward and each optimizer step, and pix2pix and CycleGAN train through it."""

import math

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from tests.helpers import PIX2PIX_TINY, FP16Accelerator, changed_parameters, net_state, tiny_model
from translate import config
from translate.models.common import Progress
from translate.training.loop import train


def test_accelerate_runs_fp16_on_the_cpu_as_fp32():
    """Why the tests bring their own fp16 accelerator (and what train.mixed_precision=fp16 does on a CPU)."""
    accelerator = Accelerator(cpu=True, mixed_precision="fp16")
    net = accelerator.prepare(nn.Conv2d(3, 4, 3))
    assert accelerator.scaler is None and net(torch.zeros(1, 3, 8, 8)).dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU fp16 is real")
def test_training_with_fp16_on_a_cpu_says_it_is_fp32(aligned_root, tmp_path, caplog):
    train(config.load(None, [*PIX2PIX_TINY, f"data.root={aligned_root}", "train.max_steps=1", "train.decay_steps=0",
                             "train.mixed_precision=fp16"]), tmp_path / "run")
    assert any("runs it in fp32" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan"])
def test_a_train_step_under_fp16_autocast_and_grad_scaling(name, tmp_path):
    _, model, batch = tiny_model(name, tmp_path)
    accelerator = FP16Accelerator()
    accelerator.prepare(model)
    dtypes = set()
    for net in model.raw.values():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                module.register_forward_hook(lambda m, i, output: dtypes.add(output.dtype))
    start = net_state(model.raw)
    scales = [accelerator.scaler.get_scale()]
    for step in range(6):
        out = model.train_step(batch, accelerator, Progress(step, 6))
        assert all(math.isfinite(v) for v in out.values()), (step, out)
        scales.append(accelerator.scaler.get_scale())
    assert torch.float16 in dtypes  # the prepared forwards ran in half precision
    # the first steps' scaled fp16 gradients overflow (scale 65536): those updates are skipped and the scale halved,
    # until the gradients fit and every parameter of every net is updated
    assert scales[1] < scales[0] and all(0 < b <= a for a, b in zip(scales, scales[1:])), scales
    after = net_state(model.raw)
    for net in model.raw:
        assert changed_parameters(start, after, net) == set(start[net]), f"{name}: {net} not trained under fp16"
        assert all(torch.isfinite(value).all() for value, _, _ in after[net].values()), net
