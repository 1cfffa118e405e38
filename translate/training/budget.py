"""train.budget_minutes: a run sized in minutes on this machine, not in steps.

A preset sized in steps promises steps: on a machine twice as slow the user waits twice as long, on a fast one the
budget is wasted. With a budget the run measures its own seconds per step over a short warm-up (after the first
steps, which pay for allocation and caches), then fixes train.max_steps so that training ends within the budget,
and train.decay_steps so that the decay keeps the recipe's share of the run. What was chosen is written into
config.yaml and into every checkpoint (this object), so a resumed run continues the same schedule bit for bit and
a plain run with the recorded steps computes the same weights.

Checkpoints, sample grids, periodic evaluation and the export are not steps: a share of the budget (OVERHEAD) and a
fixed allowance for the export are kept for them, and the budget is also a hard stop (as train.max_minutes), so a
run whose overheads were larger than allowed still ends in time, with a checkpoint and an export.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)

SKIP_STEPS = 3  # first steps: allocation, caches, data workers starting; not measured
MEASURED_STEPS = 10
OVERHEAD = 0.05  # of the budget: checkpoints, samples, logs, periodic evaluation
EXPORT_S = 20.0  # the final checkpoint and export


class Budget:
    """The schedule a budgeted run chose: max_steps and decay_steps once fixed (0 before), and the measured speed.
    A registered state object: checkpoints carry it, and a resume takes its steps instead of measuring again."""

    def __init__(self, minutes: float, decay_share: float):
        self.minutes, self.decay_share = minutes, decay_share
        self.max_steps = self.decay_steps = 0
        self.sec_per_step = 0.0
        self._skip_until, self._start = SKIP_STEPS, None

    @property
    def fixed(self) -> bool:
        return self.max_steps > 0

    def begin(self, step: int, steady_from: int = 0) -> None:
        """Training (re)starts at `step` without fixed steps (a new run, or a resume or rollback before they were
        fixed): time MEASURED_STEPS steps from SKIP_STEPS on, and not before `steady_from`, the first step at the
        cost the rest will have (a pretrained encoder kept frozen for its first steps makes them cheaper: measured
        there, the sketch2handbag preset planned 20% more steps than its budget holds)."""
        self._skip_until, self._start = max(step, steady_from) + SKIP_STEPS, None

    def observe(self, step: int, clock_seconds: float) -> float | None:
        """After each step until fixed: the measured seconds per step once MEASURED_STEPS steps were timed."""
        if self._start is None:
            if step >= self._skip_until:
                self._start = (step, clock_seconds)
            return None
        if step - self._start[0] < MEASURED_STEPS:
            return None
        return (clock_seconds - self._start[1]) / (step - self._start[0])

    def fix(self, step: int, clock_seconds: float, sec_per_step: float) -> None:
        """Choose the steps that fit the rest of the budget at `sec_per_step`, the decay keeping its share."""
        usable = self.minutes * 60 * (1 - OVERHEAD) - EXPORT_S - clock_seconds
        self.sec_per_step = sec_per_step
        self.max_steps = step + max(1, math.floor(usable / sec_per_step))
        self.decay_steps = min(round(self.decay_share * self.max_steps), self.max_steps - step)
        log.info("train.budget_minutes=%g: %.3f s a step here, so %d steps (%d of them decaying)", self.minutes,
                 sec_per_step, self.max_steps, self.decay_steps)

    def state_dict(self) -> dict:
        return {"minutes": self.minutes, "decay_share": self.decay_share, "max_steps": self.max_steps,
                "decay_steps": self.decay_steps, "sec_per_step": self.sec_per_step}

    def load_state_dict(self, state: dict) -> None:  # a changed budget is refused earlier, with the config's keys
        self.max_steps, self.decay_steps = int(state["max_steps"]), int(state["decay_steps"])
        self.sec_per_step = float(state["sec_per_step"])
