"""train.on_nonfinite=rollback: back to the newest checkpoint with halved learning rates, kept by later checkpoints
and resumes; at most three times; no checkpoint or export ever holds NaN."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import PIX2PIX_TINY
from translate import config
from translate.models.common import StepCounter
from translate.models.pix2pix import Pix2Pix
from translate.training.divergence import DivergedError
from translate.training.loop import train

# decay_steps=0: a constant lr, so a run of 4 steps resumed to 6 computes what a run of 6 does
RUN = [*PIX2PIX_TINY, "train.decay_steps=0", "train.keep_checkpoints=0", "train.on_nonfinite=rollback"]


def all_finite(folder: Path) -> bool:
    return all(torch.isfinite(t).all() for f in folder.rglob("*.safetensors") for t in load_file(f).values()
               if t.is_floating_point())


def rollback_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "rolled back" in r.getMessage()]


def test_a_huge_lr_rolls_back_three_times_then_stops_with_nothing_nan_saved(aligned_root, tmp_path, caplog):
    run = tmp_path / "run"
    with pytest.raises(DivergedError, match=r"training diverged.*gave up after 3 rollbacks"):
        train(config.load(None, [*RUN, f"data.root={aligned_root}", "model.lr=1e10"]), run)
    assert [m.split("; ")[-1] for m in rollback_warnings(caplog)] == [
        f"rolled back to step_00000000 (rollback {n} of 3), learning rates now x{0.5 ** n:g} of the configured ones"
        for n in (1, 2, 3)]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000000"]  # the start, written first
    assert all_finite(run / "checkpoints") and not (run / "export").exists()


def nan_once_at(step: int, monkeypatch) -> None:
    """Pix2Pix's loss_G_GAN is NaN at `step` the first time that step runs: a transient divergence."""
    train_step, fired = Pix2Pix.train_step, []

    def flaky(self, batch, accelerator, progress):
        losses = train_step(self, batch, accelerator, progress)
        if progress.step + 1 == step and not fired:
            fired.append(step)
            losses["loss_G_GAN"] = float("nan")
        return losses

    monkeypatch.setattr(Pix2Pix, "train_step", flaky)


def test_a_transient_nan_rolls_back_halves_the_lr_and_a_resume_keeps_it(aligned_root, tmp_path, monkeypatch, caplog):
    overrides = [*RUN, f"data.root={aligned_root}"]
    nan_once_at(3, monkeypatch)
    straight = train(config.load(None, [*overrides, "train.max_steps=6"]), tmp_path / "straight")
    assert rollback_warnings(caplog) == ["step 3: loss_G_GAN=nan; rolled back to step_00000002 (rollback 1 of 3), "
                                         "learning rates now x0.5 of the configured ones"]
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    lr = [2e-4, 2e-4, 1e-4, 1e-4, 1e-4, 1e-4]  # step 3 ran again at half the lr; its NaN line was never logged
    assert [(r["step"], r["lr_G"], r["lr_D"]) for r in records] == [(s, x, x) for s, x in zip(range(1, 7), lr)]
    assert all(math.isfinite(v) for r in records for k, v in r.items() if k.startswith("loss"))
    state = torch.load(tmp_path / "straight" / "checkpoints" / "step_00000006" / "state.pt", weights_only=True)
    assert state["step"] == {"step": 6, "rollbacks": 1} and state["lr_schedule_G"]["base_lrs"] == [1e-4]
    assert all_finite(tmp_path / "straight")

    nan_once_at(3, monkeypatch)
    train(config.load(None, [*overrides, "train.max_steps=4"]), tmp_path / "resumed")  # rolled back, then stopped
    resumed = train(config.load(None, [*overrides, "train.max_steps=6"]), tmp_path / "resumed", resume=True)
    records = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr_G"] for r in records if r["step"] > 4] == [1e-4, 1e-4]  # the halving outlives the resume
    assert (straight / "G.safetensors").read_bytes() == (resumed / "G.safetensors").read_bytes()


def test_a_checkpoint_from_before_rollbacks_existed_loads_with_none_counted():
    counter = StepCounter()
    counter.load_state_dict({"step": 7})
    assert (counter.step, counter.rollbacks) == (7, 0)
