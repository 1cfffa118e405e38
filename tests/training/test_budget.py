"""train.budget_minutes: steps fixed from the measured speed, recorded, and resumed bit for bit."""

from __future__ import annotations

import json

import pytest

from tests.helpers import PIX2PIX_TINY, assert_same_weights, train_until_killed
from translate import config
from translate.training import budget as budget_module
from translate.training.budget import Budget
from translate.training.loop import train

# A budget run at test size: the share kept for overheads is half, so the hard stop at the budget cannot cut a run
# short on a busy machine; the export allowance is none (tiny exports take milliseconds).
TEST_OVERHEAD, TEST_EXPORT_S = 0.5, 0.0
BUDGETED = [*PIX2PIX_TINY, "train.max_steps=1000", "train.decay_steps=500", "train.budget_minutes=0.1",
            "train.checkpoint_every=20", "train.sample_every=1000", "train.log_every=1"]
PRELUDE = ("from translate.training import budget\n"
           f"budget.OVERHEAD, budget.EXPORT_S = {TEST_OVERHEAD}, {TEST_EXPORT_S}\n")  # in the killed process too


def test_the_steps_fit_the_rest_of_the_budget_and_the_decay_keeps_its_share():
    plan = Budget(minutes=2, decay_share=0.5)
    plan.begin(0)
    assert [plan.observe(step, clock) for step, clock in [(1, 1.0), (2, 2.0), (3, 3.0)]] == [None, None, None]
    assert all(plan.observe(step, float(step)) is None for step in range(4, 13))
    assert plan.observe(13, 14.0) == pytest.approx(1.1)  # steps 3..13 took 11 s
    plan.fix(13, 14.0, 1.1)
    usable = 120 * (1 - budget_module.OVERHEAD) - budget_module.EXPORT_S - 14.0
    assert plan.max_steps == 13 + int(usable // 1.1) and plan.decay_steps == round(0.5 * plan.max_steps)
    resumed = Budget(minutes=2, decay_share=0.5)
    resumed.load_state_dict(plan.state_dict())
    assert (resumed.max_steps, resumed.decay_steps, resumed.fixed) == (plan.max_steps, plan.decay_steps, True)


def test_steps_that_cost_less_than_the_rest_are_not_measured():
    def clock(step: int) -> float:  # a pretrained encoder frozen for 500 steps: 0.5 s a step, then 0.7
        return 0.5 * min(step, 500) + 0.7 * max(0, step - 500)

    def measured(steady_from: int) -> float:
        plan = Budget(minutes=60, decay_share=0.5)
        plan.begin(0, steady_from)
        return next(m for step in range(1, 1000) if (m := plan.observe(step, clock(step))) is not None)

    assert measured(steady_from=500) == pytest.approx(0.7)
    assert measured(steady_from=0) == pytest.approx(0.5)  # what the frozen steps alone would have said


def test_a_budget_too_small_for_the_steps_measured_still_trains_one_more_step():
    plan = Budget(minutes=0.1, decay_share=0.5)
    plan.fix(13, 30.0, 1.0)  # already past the budget
    assert (plan.max_steps, plan.decay_steps) == (14, 1)


def test_a_budgeted_run_killed_and_resumed_equals_a_plain_run_of_the_recorded_steps(aligned_root, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setattr(budget_module, "OVERHEAD", TEST_OVERHEAD)
    monkeypatch.setattr(budget_module, "EXPORT_S", TEST_EXPORT_S)
    overrides = [*BUDGETED, f"data.root={aligned_root}"]
    run, recipe = tmp_path / "budget", tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")  # everything is in the overrides
    killed = train_until_killed(recipe, overrides, run, prelude=PRELUDE)
    assert killed.returncode == -9, killed.stderr[-2000:]
    recorded = config.load(run / "config.yaml").train  # the chosen steps, written when they were fixed
    assert recorded.max_steps > 26 and recorded.decay_steps == round(0.5 * recorded.max_steps)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000020"]
    train(config.load(None, overrides), run, resume=True)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, recorded.max_steps + 1))  # to the recorded end, not the recipe's 1000
    plain = tmp_path / "plain"
    train(config.load(None, [*PIX2PIX_TINY, f"data.root={aligned_root}", f"train.max_steps={recorded.max_steps}",
                             f"train.decay_steps={recorded.decay_steps}", "train.checkpoint_every=1000",
                             "train.sample_every=1000"]), plain)
    assert_same_weights(run / "export", plain / "export")
