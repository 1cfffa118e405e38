"""THE training loop, shared by every model, on Hugging Face Accelerate (CPU, one GPU, DDP; no/fp16/bf16).

Run dir: config.yaml (resolved), metrics.jsonl, logs/ (TensorBoard), samples/, checkpoints/step_XXXXXXXX/ (full
state for --resume, written atomically), export/ (what inference needs, see translate.export) and, with
eval.best set, export_best/ (the best export by that score, see translate.training.periodic_eval).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from translate import config as config_lib
from translate.data import build_loader
from translate.data.skip import SkipUnreadable
from translate.export import write_export
from translate.inference import emulated_precision
from translate.models import MODELS
from translate.models.common import Progress, StepCounter, TrainClock, linear_decay_lambda
from translate.training import checkpoints
from translate.training.budget import Budget
from translate.training.divergence import (
    DivergedError,
    check_finite,
    check_finite_weights,
    roll_back,
    set_scheduled_lrs,
)
from translate.training.image_sides import check_image_sides
from translate.training.periodic_eval import BestScore, evaluate_model, load_eval_images, save_best
from translate.training.precision import resolve_auto_precision
from translate.training.samples import log_sample_grid, sample_grid, save_sample_grid, side_effect_free
from translate.utils import distributed_without_gpus, write_text_atomic

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"


def train(cfg: config_lib.Config, run_dir: str | Path, resume: bool = False) -> Path:
    """Train `cfg` in `run_dir`; with `resume`, continue from its latest checkpoint. Returns the export folder."""
    run_dir = Path(run_dir)
    resolve_auto_precision(cfg, torch.device("cuda" if torch.cuda.is_available() else "cpu"),
                           run_dir / "config.yaml" if resume and (run_dir / "config.yaml").is_file() else None)
    accelerator = Accelerator(
        cpu=distributed_without_gpus(),
        mixed_precision=cfg.train.mixed_precision,
        log_with=None if cfg.train.log_with == "none" else cfg.train.log_with,
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs")),
    )
    if cfg.train.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        log.warning("train.mixed_precision=fp16 on a CPU: Accelerate runs it in fp32 (no autocast, no gradient "
                    "scaler); the CPU's half precision is bf16")
    if cfg.train.mixed_precision == "bf16" and (slow := emulated_precision("bf16", accelerator.device)):
        log.warning("train.mixed_precision=bf16: %s", slow)
    root = run_dir / CHECKPOINTS
    entry = MODELS[cfg.model.name]
    # The dataset resolves what comes from the data (a classifier's class order) into cfg, so it is built before
    # config.yaml is written: the saved config is the whole truth, and a resume compares like with like.
    dataset = entry.dataset(cfg.data, cfg.model, train=True)
    best = BestScore(cfg.eval.best)
    if resume:
        if not checkpoints.checkpoint_folders(root):
            raise FileNotFoundError(f"--resume: no checkpoint in {root}")
        checkpoints.check_resume_config(run_dir / "config.yaml", cfg)  # before anything is written
    elif checkpoints.checkpoint_folders(root):
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume or choose another --run-dir")
    set_seed(cfg.train.seed)  # identical initial weights on every process
    # A resumed run's weights come from its checkpoint: the fine-tuning source may be gone by then.
    model = entry.build(dataclasses.replace(cfg.model, init_from="") if resume and getattr(cfg.model, "init_from", "")
                        else cfg.model)
    check_image_sides(cfg, model.raw)
    if cfg.eval.every and accelerator.is_main_process:
        eval_set = load_eval_images(cfg, entry)
    # What a configuration can fail on (the data, the model, the image sides, the eval set) has been tried: only a
    # run that can start gets a run folder.
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.remove_stale_temporaries(root)
        config_lib.save(cfg, run_dir / "config.yaml")
        accelerator.init_trackers("translate", config=_flat_scalars(cfg.to_dict()))

    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    for name in model.nets:  # each trainable net is prepared (DDP-wrapped) on its own
        model.raw[name].to(memory_format=memory_format)
        model.nets[name] = accelerator.prepare(model.nets[name])
    for name in model.optimizers:
        model.optimizers[name] = accelerator.prepare(model.optimizers[name])
    decay = lr_factor(model, cfg.train)
    schedulers = {name: LambdaLR(opt.optimizer, decay) for name, opt in model.optimizers.items()}
    counter, clock = StepCounter(), TrainClock()
    budget = Budget(cfg.train.budget_minutes, cfg.train.decay_steps / cfg.train.max_steps) \
        if cfg.train.budget_minutes else None
    # What a checkpoint holds: enough that a resumed run continues bit for bit (see training/checkpoints.py).
    state = checkpoints.TrainingState(
        nets=model.raw, optimizers=model.optimizers, scaler=accelerator.scaler,
        objects={"step": counter, "clock": clock, "best_score": best, **({"budget": budget} if budget else {}),
                 **{f"lr_schedule_{n}": s for n, s in schedulers.items()}, **model.extra_state})
    if resume:
        folder = checkpoints.resume(root, state, accelerator)
        if budget is not None and budget.fixed:  # the steps the run chose, not the recipe's
            follow_budget(budget, cfg, model, schedulers)
        # The optimizers' saved lr is the old run's schedule; a resume may extend max_steps, so set this run's.
        set_scheduled_lrs(schedulers)
        if accelerator.is_main_process:
            log.info("resumed from %s at step %d", folder, counter.step)
            _forget_metrics_after(run_dir / "metrics.jsonl", counter.step)
    elif cfg.train.on_nonfinite == "rollback":  # a divergence before the first checkpoint rolls back to the start
        checkpoints.save(root, 0, state, accelerator, cfg.train.keep_checkpoints)

    if cfg.data.skip_unreadable:
        dataset = SkipUnreadable(dataset)

    def batches_from(step: int):
        """This rank's batches from `step` on; files skipped as unreadable are warned about here, once each."""
        loader = build_loader(dataset, cfg.data.batch_size, seed=cfg.train.seed, num_workers=cfg.data.num_workers,
                              rank=accelerator.process_index, world_size=accelerator.num_processes, start_step=step)
        return map(dataset.report, loader) if cfg.data.skip_unreadable else iter(loader)

    batches = batches_from(counter.step)
    steady_from = getattr(cfg.model, "freeze_encoder_steps", 0)  # frozen-encoder steps cost less than the rest
    if budget is not None and not budget.fixed:
        budget.begin(counter.step, steady_from)
    rollback = cfg.train.on_nonfinite == "rollback"
    progress = tqdm(total=cfg.train.max_steps, initial=counter.step, desc="train", dynamic_ncols=True,
                    disable=not accelerator.is_main_process)
    images_per_step = cfg.data.batch_size * accelerator.num_processes
    tick = last_tick = time.perf_counter()
    tick_step = counter.step
    while counter.step < cfg.train.max_steps or (budget is not None and not budget.fixed):
        try:
            batch = _to_device(next(batches), accelerator.device, memory_format)
            lrs = {f"lr_{name}": scheduler.get_last_lr()[0] for name, scheduler in schedulers.items()}
            losses = model.train_step(batch, accelerator, Progress(counter.step, cfg.train.max_steps))
            # before this step can reach a checkpoint or an export
            check_finite(losses, counter.step + 1, root, accelerator if rollback else None)
            for scheduler in schedulers.values():
                scheduler.step()
            counter.step += 1
            progress.update(1)
            step = counter.step
            now = time.perf_counter()
            clock.seconds, last_tick = clock.seconds + now - last_tick, now  # training time, summed over resumes
            if budget is not None and not budget.fixed and (measured := budget.observe(step, clock.seconds)):
                budget.fix(step, clock.seconds, _agreed(measured, accelerator))
                follow_budget(budget, cfg, model, schedulers)
                progress.total = cfg.train.max_steps
                if accelerator.is_main_process:
                    config_lib.save(cfg, run_dir / "config.yaml")  # the chosen steps: the run folder's truth
            scheduled = budget is None or budget.fixed
            final = scheduled and step == cfg.train.max_steps or _out_of_time(clock, cfg.train, accelerator)
            if step % cfg.train.log_every == 0 or final:
                seconds = (time.perf_counter() - tick) / (step - tick_step)  # the steps since the last log or resume
                tick, tick_step = time.perf_counter(), step
                record = {"step": step, **losses, **lrs, "train_minutes": round(clock.seconds / 60, 4),
                          "sec_per_step": seconds, "images_per_s": images_per_step / seconds}
                _log_metrics(accelerator, run_dir, record)
                left = {"min_left": f"{cfg.train.budget_minutes - clock.seconds / 60:.1f}"} if budget else {}
                progress.set_postfix({**{k: f"{v:.3g}" for k, v in losses.items()}, **left})
            if accelerator.is_main_process and (step % cfg.train.sample_every == 0 or final):
                with side_effect_free(model.raw.values()):
                    visuals = model.visuals(batch)
                    if visuals:  # a classifier has nothing to show
                        grid = sample_grid(visuals)
                        save_sample_grid(grid, run_dir / "samples" / f"step_{step:08d}.png")
                        log_sample_grid(accelerator.trackers, grid, step)
            if cfg.eval.every and (step % cfg.eval.every == 0 or final):
                check_finite_weights(model.raw, step, root)  # an export_best must never hold NaN either
                if accelerator.is_main_process:
                    with side_effect_free(model.raw.values()):
                        scores = evaluate_model(model, cfg, eval_set, accelerator.device)
                    _log_metrics(accelerator, run_dir, {"step": step, **{f"eval/{k}": v for k, v in scores.items()}})
                    if best.improves(scores):
                        save_best(model, cfg, run_dir, best, scores, step)
                accelerator.wait_for_everyone()
            if step % cfg.train.checkpoint_every == 0 or final:
                check_finite_weights(model.raw, step, root)
                checkpoints.save(root, step, state, accelerator, cfg.train.keep_checkpoints)
            if final:
                break
        except DivergedError as error:
            if not rollback:
                raise
            roll_back(error, root, state, schedulers, accelerator)  # or re-raises: the limit, no checkpoint
            if budget is not None and not budget.fixed:
                budget.begin(counter.step, steady_from)
            if accelerator.is_main_process:
                _forget_metrics_after(run_dir / "metrics.jsonl", counter.step)
            batches = batches_from(counter.step)
            progress.n, tick, tick_step = counter.step, time.perf_counter(), counter.step
    progress.close()

    export_dir = run_dir / "export"
    check_finite_weights(model.raw, counter.step, root)
    if accelerator.is_main_process:
        write_export(export_dir, model.export_nets(), cfg)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return export_dir


def follow_budget(budget: Budget, cfg, model, schedulers: dict) -> None:
    """Train to the steps the budget chose: max_steps, decay_steps, and every schedule recomputed for them."""
    cfg.train.max_steps, cfg.train.decay_steps = budget.max_steps, budget.decay_steps
    factor = lr_factor(model, cfg.train)
    for scheduler in schedulers.values():
        scheduler.lr_lambdas = [factor] * len(scheduler.optimizer.param_groups)
    set_scheduled_lrs(schedulers)


def _agreed(seconds: float, accelerator) -> float:
    """The slowest process's measured seconds per step: under DDP every process must choose the same steps."""
    if accelerator.num_processes == 1:
        return seconds
    return float(accelerator.reduce(torch.tensor(seconds, device=accelerator.device), "max").item())


def _out_of_time(clock: TrainClock, train_cfg, accelerator) -> bool:
    """train.max_minutes or train.budget_minutes reached; under DDP decided together, so that every process stops
    at the same step."""
    limits = [m for m in (train_cfg.max_minutes, train_cfg.budget_minutes) if m]
    if not limits:
        return False
    over = torch.tensor(float(clock.seconds >= min(limits) * 60), device=accelerator.device)
    if accelerator.num_processes > 1:
        over = accelerator.reduce(over, "max")
    return bool(over.item())


def lr_factor(model, train_cfg) -> Callable[[int], float]:
    """The lr factor per step: the model's own schedule where it has one (DANN's annealing), else the reference's
    linear decay over the last train.decay_steps steps."""
    own = model.lr_factor(train_cfg.max_steps) if hasattr(model, "lr_factor") else None
    if own is not None:
        return own
    constant_steps = max(train_cfg.max_steps - train_cfg.decay_steps, 0)
    return linear_decay_lambda(constant_steps, train_cfg.max_steps - constant_steps)


def _to_device(batch: dict, device, memory_format) -> dict:
    moved = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            layout = memory_format if value.dim() == 4 else torch.contiguous_format  # images only; not labels
            value = value.to(device, non_blocking=True, memory_format=layout)
        moved[key] = value
    return moved


def _log_metrics(accelerator: Accelerator, run_dir: Path, record: dict) -> None:
    accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])
    if accelerator.is_main_process:
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


def _forget_metrics_after(path: Path, step: int) -> None:
    """Lines logged after the checkpoint we resume from will be logged again; drop the stale ones, and a partial
    last line that a crash or a full disk left mid-write. Rewritten atomically: a crash here loses nothing."""
    if not path.exists():
        return
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            log.warning("%s:%d: dropping an unreadable line (a crash mid-write?)", path, number)
            continue
        if isinstance(record, dict) and record.get("step", step + 1) <= step:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def _flat_scalars(tree: dict, prefix: str = "") -> dict:
    """TensorBoard hparams accept scalars and strings only."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat_scalars(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat
