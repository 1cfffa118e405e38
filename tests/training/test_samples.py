"""side_effect_free: drawing samples (dropout, BatchNorm in train mode) leaves training exactly as it was, the global
RNG state and every buffer (running statistics, batch counters) included."""

import torch
from torch import nn

from tests.helpers import FakeAccelerator, tiny_model
from translate.models.common import Progress
from translate.training.samples import side_effect_free


def buffers(modules) -> list[torch.Tensor]:
    return [b.clone() for m in modules for b in m.buffers()]


def test_rng_and_buffers_are_restored():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)), nn.BatchNorm1d(5)]
    for net in nets:
        net.train()
    rng, saved = torch.get_rng_state(), buffers(nets)
    with side_effect_free(nets):
        nets[0](torch.randn(2, 3, 8, 8))
        nets[1](torch.randn(4, 5) * 3 + 1)
        # the block did what sampling does: drew random numbers, moved the statistics
        assert not torch.equal(torch.get_rng_state(), rng)
        assert all(not torch.equal(a, b) for a, b in zip(buffers(nets), saved))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(a, b) for a, b in zip(buffers(nets), saved))
    assert all(net.training for net in nets)


def test_a_pix2pix_sample_does_not_change_the_next_step(tmp_path):
    """pix2pix samples with dropout on and batch statistics (its inference mode), so without side_effect_free a
    sample would move the BatchNorm statistics and the dropout draws of the following train_step."""
    losses = []
    for sample in (False, True):
        _, model, batch = tiny_model("pix2pix", tmp_path / str(sample), "model.norm=batch", seed=1)
        model.train_step(batch, FakeAccelerator(), Progress(0, 4))
        before = buffers(model.raw.values())
        if sample:
            with side_effect_free(model.raw.values()):
                model.visuals(batch)
        assert all(torch.equal(a, b) for a, b in zip(buffers(model.raw.values()), before))
        losses.append(model.train_step(batch, FakeAccelerator(), Progress(1, 4)))
    assert losses[0] == losses[1]
