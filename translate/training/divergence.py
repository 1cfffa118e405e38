"""Non-finite losses and weights: stop before they are saved (default), or roll back (`train.on_nonfinite=rollback`).

Stop: the run ends with one line naming the step and the losses; no checkpoint, export or export_best ever holds
NaN, and the last checkpoint stays intact for `--resume`.

Rollback: the newest checkpoint that loads is restored (networks, optimizers, schedules, pools, EMA, RNG states,
step), every learning rate is halved, and training goes on from there, at most MAX_ROLLBACKS times per run; then
the run stops as above. A new run writes a checkpoint of its starting state (step_00000000) so that a divergence
before the first regular checkpoint has somewhere to go back to. The halving is kept in the lr schedules' base
rates and the count in the step counter, so both live in later checkpoints and a resume keeps them.

Exact resume: the state after a rollback is a function of the checkpoint and the rollback count alone (the RNG
states come from the checkpoint too). A kill after a rollback but before the next checkpoint resumes from the
checkpoint that was rolled back to, with the lr it had; it meets the same divergence at the same step and rolls
back the same way, so the run ends identical to an uninterrupted one only where training is deterministic (CPU).
Where it is not (most GPU kernels) the repeated steps may not diverge again, and the run continues at the higher
lr. The wall-clock time of a diverged stretch counts towards train.max_minutes.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from translate.training import checkpoints

log = logging.getLogger(__name__)
ON_NONFINITE = ("stop", "rollback")
MAX_ROLLBACKS = 3
LR_FACTOR = 0.5


class DivergedError(FloatingPointError):
    """A loss or a weight became NaN or infinite: training stops before that state is saved or exported."""


def check_finite(losses: dict[str, float], step: int, root: Path, accelerator=None) -> None:
    """DivergedError for a non-finite loss. With `accelerator` (rollback under DDP), decided by all processes
    together, so that every process rolls back at the same step instead of one waiting for the others forever."""
    bad = sorted(name for name, value in losses.items() if not math.isfinite(value))
    if accelerator is not None and accelerator.num_processes > 1:
        anywhere = accelerator.reduce(torch.tensor(float(bool(bad)), device=accelerator.device), "max")
        if anywhere.item() and not bad:
            raise DivergedError(f"step {step}: a loss of another process is not finite: training diverged")
    if bad:
        raise DivergedError(f"step {step}: {', '.join(f'{n}={losses[n]}' for n in bad)}: training diverged and "
                            f"stopped; nothing of it was saved. {_last_good(root)}Lower model.lr, or try "
                            "model.gan_mode=lsgan or train.mixed_precision=no")


def check_finite_weights(nets: dict, step: int, root: Path) -> None:
    """The losses were finite, but an update can still overflow a weight: never checkpoint or export that."""
    for name, net in nets.items():
        for key, tensor in net.state_dict().items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise DivergedError(f"step {step}: {name}.{key} holds NaN or infinite values: training diverged; "
                                    f"nothing of it was saved. {_last_good(root)}Lower model.lr")


def _last_good(root: Path) -> str:
    found = checkpoints.checkpoint_folders(root)
    return f"The last checkpoint, {found[-1]}, is intact (--resume continues from it). " if found else ""


def roll_back(error: DivergedError, root: Path, state: checkpoints.TrainingState, schedulers: dict,
              accelerator) -> Path:
    """Restore the newest checkpoint that loads and halve every lr, for the divergence `error`; re-raises it
    (saying so) when the run has rolled back MAX_ROLLBACKS times already."""
    counter, clock = state.objects["step"], state.objects["clock"]
    if counter.rollbacks >= MAX_ROLLBACKS:
        raise DivergedError(f"{error} (gave up after {MAX_ROLLBACKS} rollbacks, each halving the learning rates: "
                            "train.on_nonfinite=rollback)") from error
    count, seconds = counter.rollbacks + 1, clock.seconds
    folder = checkpoints.resume(root, state, accelerator)
    # The checkpoint may predate earlier rollbacks: its rates carry LR_FACTOR ** (its count), this run needs `count`.
    factor = LR_FACTOR ** (count - counter.rollbacks)
    counter.rollbacks, clock.seconds = count, seconds  # the time spent diverging was spent all the same
    for scheduler in schedulers.values():
        scheduler.base_lrs = [base * factor for base in scheduler.base_lrs]
    set_scheduled_lrs(schedulers)
    log.warning("%s; rolled back to %s (rollback %d of %d), learning rates now x%g of the configured ones",
                str(error).split(": training diverged")[0], folder.name, count, MAX_ROLLBACKS, LR_FACTOR ** count)
    return folder


def set_scheduled_lrs(schedulers: dict) -> None:
    """Each optimizer's lr as its schedule gives it at the current step: after a checkpoint is loaded, the
    optimizers hold the saved rates, which a resume that extends max_steps or a rollback must replace."""
    for scheduler in schedulers.values():
        for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            group["lr"] = base * factor(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
