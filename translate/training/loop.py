"""THE training loop, shared by every model, on Hugging Face Accelerate (CPU, one GPU, DDP; no/fp16/bf16).

Run dir: config.yaml (resolved), metrics.jsonl, logs/ (TensorBoard), samples/, checkpoints/step_XXXXXXXX/ (full
state for --resume, written atomically), export/ (what inference needs, see translate.export) and, with
eval.best set, export_best/ (the best export by that score, see translate.training.periodic_eval).
"""

from __future__ import annotations

import json
import logging
import shutil
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
from translate.export import write_export
from translate.models import MODELS
from translate.models.common import Progress, StepCounter, linear_decay_lambda
from translate.training.periodic_eval import BestScore, evaluate_model, load_eval_images, save_best
from translate.training.samples import save_sample_grid, side_effect_free
from translate.utils import distributed_without_gpus

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"


def train(cfg: config_lib.Config, run_dir: str | Path, resume: bool = False) -> Path:
    """Train `cfg` in `run_dir`; with `resume`, continue from its latest checkpoint. Returns the export folder."""
    run_dir = Path(run_dir)
    accelerator = Accelerator(
        cpu=distributed_without_gpus(),
        mixed_precision=cfg.train.mixed_precision,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / "logs")),
    )
    latest = latest_checkpoint(run_dir)
    if resume and latest is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {run_dir / CHECKPOINTS}")
    if accelerator.is_main_process:
        if not resume and latest is not None:
            raise FileExistsError(f"{run_dir} already holds a run; pass --resume or choose another --run-dir")
        run_dir.mkdir(parents=True, exist_ok=True)
        config_lib.save(cfg, run_dir / "config.yaml")
        accelerator.init_trackers("translate", config=_flat_scalars(cfg.to_dict()))
    set_seed(cfg.train.seed)  # identical initial weights on every process

    entry = MODELS[cfg.model.name]
    model = entry.build(cfg.model)
    dataset = entry.dataset(cfg.data, cfg.model, train=True)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    for name in model.nets:  # each trainable net is prepared (DDP-wrapped) on its own
        model.raw[name].to(memory_format=memory_format)
        model.nets[name] = accelerator.prepare(model.nets[name])
    for name in model.optimizers:
        model.optimizers[name] = accelerator.prepare(model.optimizers[name])
    decay = lr_factor(model, cfg.train)
    schedulers = {name: LambdaLR(opt.optimizer, decay) for name, opt in model.optimizers.items()}
    counter = StepCounter()
    best = BestScore(cfg.eval.best)
    accelerator.register_for_checkpointing(counter, best, *schedulers.values(), *model.extra_state.values())
    if cfg.eval.every and accelerator.is_main_process:
        eval_set = load_eval_images(cfg, entry)
    if resume:
        accelerator.load_state(str(latest))
        if accelerator.is_main_process:
            log.info("resumed from %s at step %d", latest, counter.step)
            _forget_metrics_after(run_dir / "metrics.jsonl", counter.step)

    loader = build_loader(dataset, cfg.data.batch_size, seed=cfg.train.seed, num_workers=cfg.data.num_workers,
                          rank=accelerator.process_index, world_size=accelerator.num_processes,
                          start_step=counter.step)
    batches = iter(loader)
    progress = tqdm(total=cfg.train.max_steps, initial=counter.step, desc="train", dynamic_ncols=True,
                    disable=not accelerator.is_main_process)
    images_per_step = cfg.data.batch_size * accelerator.num_processes
    tick = time.perf_counter()
    while counter.step < cfg.train.max_steps:
        batch = _to_device(next(batches), accelerator.device, memory_format)
        lrs = {f"lr_{name}": scheduler.get_last_lr()[0] for name, scheduler in schedulers.items()}
        losses = model.train_step(batch, accelerator, Progress(counter.step, cfg.train.max_steps))
        for scheduler in schedulers.values():
            scheduler.step()
        counter.step += 1
        progress.update(1)
        step = counter.step
        if step % cfg.train.log_every == 0 or step == cfg.train.max_steps:
            seconds = (time.perf_counter() - tick) / cfg.train.log_every if step % cfg.train.log_every == 0 else None
            tick = time.perf_counter()
            record = {"step": step, **losses, **lrs}
            if seconds:
                record.update(sec_per_step=seconds, images_per_s=images_per_step / seconds)
            _log_metrics(accelerator, run_dir, record)
            progress.set_postfix({k: f"{v:.3g}" for k, v in losses.items()})
        if accelerator.is_main_process and (step % cfg.train.sample_every == 0 or step == cfg.train.max_steps):
            with side_effect_free(model.raw.values()):
                visuals = model.visuals(batch)
                if visuals:  # a classifier has nothing to show
                    save_sample_grid(visuals, run_dir / "samples" / f"step_{step:08d}.png")
        if cfg.eval.every and (step % cfg.eval.every == 0 or step == cfg.train.max_steps):
            if accelerator.is_main_process:
                with side_effect_free(model.raw.values()):
                    scores = evaluate_model(model, cfg, eval_set, accelerator.device)
                _log_metrics(accelerator, run_dir, {"step": step, **{f"eval/{k}": v for k, v in scores.items()}})
                if best.improves(scores):
                    save_best(model, cfg, run_dir, best, scores, step)
            accelerator.wait_for_everyone()
        if step % cfg.train.checkpoint_every == 0 or step == cfg.train.max_steps:
            save_checkpoint(accelerator, run_dir, step, cfg.train.keep_checkpoints)
    progress.close()

    export_dir = run_dir / "export"
    if accelerator.is_main_process:
        write_export(export_dir, model.export_nets(), cfg)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return export_dir


def lr_factor(model, train_cfg) -> Callable[[int], float]:
    """The lr factor per step: the model's own schedule where it has one (DANN's annealing), else the reference's
    linear decay over the last train.decay_steps steps."""
    own = model.lr_factor(train_cfg.max_steps) if hasattr(model, "lr_factor") else None
    if own is not None:
        return own
    constant_steps = max(train_cfg.max_steps - train_cfg.decay_steps, 0)
    return linear_decay_lambda(constant_steps, train_cfg.max_steps - constant_steps)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((Path(run_dir) / CHECKPOINTS).glob("step_*"))
    return found[-1] if found else None


def save_checkpoint(accelerator: Accelerator, run_dir: Path, step: int, keep: int) -> Path:
    """Full training state, written to a temporary folder and renamed, so a kill never leaves half a checkpoint."""
    root = run_dir / CHECKPOINTS
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(root.glob("step_*"))[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


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
    """Lines logged after the checkpoint we resume from will be logged again; drop the stale ones."""
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


def _flat_scalars(tree: dict, prefix: str = "") -> dict:
    """TensorBoard hparams accept scalars and strings only."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat_scalars(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat
