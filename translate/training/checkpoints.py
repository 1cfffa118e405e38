"""Checkpoints for exact resume, written atomically and read without unpickling anything that can run code.

A checkpoint is a folder RUN_DIR/checkpoints/step_XXXXXXXX/ holding:

    nets/<name>.safetensors   each trainable network (the unwrapped module's state dict)
    optimizers/<name>.pt      each optimizer's state dict
    state.pt                  the registered state objects: step, best score, lr schedulers, image pools, EMA
                              weights, the fp16 gradient scaler
    rng_<rank>.pt             each process's Python, NumPy and torch (CPU and CUDA) RNG states
    meta.json                 format, step and world size

.pt files hold only tensors and plain containers and are read with `torch.load(weights_only=True)`; nets are
safetensors. Accelerate's save_state/load_state is not used: it pickles registered objects and reads them back
with `weights_only=False`, so a crafted file in a run folder someone downloaded ran code on `--resume`.

Everything is read and checked before anything is applied, so a damaged checkpoint changes nothing and `resume`
falls back to the next older one, saying so. The folder is written under a temporary name and renamed, so a kill
never leaves half a checkpoint under a final name.
"""

from __future__ import annotations

import errno
import json
import logging
import pickle
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from translate.export import state_dict_problems
from translate.utils import save_safetensors

log = logging.getLogger(__name__)
FORMAT = 1
PREFIX = "step_"
TEMPORARY = ".tmp_step_"
MT19937_WORDS = 624  # NumPy's legacy RNG state: this many 32-bit words, and an index into them


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing or damaged files, or state of another shape."""


@dataclass
class TrainingState:
    """What a checkpoint holds, as the loop owns it: prepared networks are saved unwrapped (`raw`)."""

    nets: dict  # name -> nn.Module (unwrapped)
    optimizers: dict  # name -> optimizer (Accelerate-wrapped or plain)
    objects: dict  # name -> object with state_dict() / load_state_dict()
    scaler: object | None = None  # the fp16 GradScaler, if any


# Keys a resumed run may change: they do not shape the saved state (networks, optimizers, data order, world size).
FREE_ON_RESUME = ("train.max_steps", "train.max_minutes", "train.decay_steps", "train.log_every", "train.sample_every",
                  "train.checkpoint_every", "train.keep_checkpoints", "train.channels_last", "train.on_nonfinite",
                  "train.log_with",
                  "data.num_workers", "data.skip_unreadable", "data.root", "data.source", "data.target", "eval.")


def check_resume_config(saved_path: Path, cfg) -> None:
    """Refuse to resume with a configuration that shapes the state differently (architecture, losses, data shapes,
    batch, seed, precision), naming each changed key with both values; called before anything is written."""
    from translate import config as config_lib  # the loop imports both; keep this module importable alone

    try:
        saved = config_lib.load(saved_path).to_dict()
    except (OSError, config_lib.ConfigError) as error:
        raise CheckpointError(f"cannot resume: the run's {saved_path} cannot be read: {error}") from error
    changed = [f"{key}: {old!r} -> {new!r}" for key, old, new in _differences(saved, cfg.to_dict())
               if not key.startswith(FREE_ON_RESUME)]
    if changed:
        raise config_lib.ConfigError(f"--resume with a configuration that differs from {saved_path} in "
                                     f"{', '.join(changed)}; these shape the saved state: start a new --run-dir, "
                                     "or resume without changing them")


def _differences(old, new, prefix: str = ""):
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            yield from _differences(old.get(key), new.get(key), f"{prefix}{key}.")
    elif old != new:
        yield prefix.rstrip("."), old, new


def checkpoint_folders(root: Path) -> list[Path]:
    """Finished checkpoints, oldest first."""
    return sorted(p for p in Path(root).glob(f"{PREFIX}*") if p.is_dir())


def remove_stale_temporaries(root: Path) -> None:
    """Temporary folders of checkpoints whose writing was killed: never complete, only taking disk space."""
    for stale in Path(root).glob(f"{TEMPORARY}*"):
        log.info("removing %s, left by an interrupted checkpoint", stale)
        shutil.rmtree(stale, ignore_errors=True)


def save(root: Path, step: int, state: TrainingState, accelerator, keep: int) -> Path:
    """Write the checkpoint of `step` (every process its RNG states, the main process the rest), then keep only
    the newest `keep` (0: keep all). A full disk is reported as such, and the half-written folder removed."""
    root = Path(root)
    final, tmp = root / f"{PREFIX}{step:08d}", root / f"{TEMPORARY}{step:08d}"
    try:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        torch.save(rng_states(), tmp / f"rng_{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            _write_main_files(tmp, step, state, accelerator.num_processes)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in checkpoint_folders(root)[:-keep] if keep > 0 else []:
                shutil.rmtree(old)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"disk full while writing checkpoint {final}; free space and rerun with "
                                        "--resume (the previous checkpoint is intact)") from error
        raise
    accelerator.wait_for_everyone()
    return final


def _write_main_files(folder: Path, step: int, state: TrainingState, world_size: int) -> None:
    (folder / "nets").mkdir()
    (folder / "optimizers").mkdir()
    for name, net in state.nets.items():
        tensors = {k: v.detach().to("cpu", memory_format=torch.contiguous_format).clone()
                   for k, v in net.state_dict().items()}
        save_safetensors(tensors, str(folder / "nets" / f"{name}.safetensors"))
    for name, optimizer in state.optimizers.items():
        torch.save(optimizer.state_dict(), folder / "optimizers" / f"{name}.pt")
    objects = {name: obj.state_dict() for name, obj in state.objects.items()}
    if state.scaler is not None:
        objects["grad_scaler"] = state.scaler.state_dict()
    torch.save(objects, folder / "state.pt")
    meta = {"format": FORMAT, "step": step, "world_size": world_size}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


def load(folder: Path, state: TrainingState, accelerator) -> None:
    """Restore `state` and this process's RNG from `folder`; CheckpointError (naming the file) if anything in it
    is missing, damaged or of another shape. Everything is read and checked first: on error nothing has changed."""
    folder = Path(folder)
    meta = _read(folder / "meta.json", lambda p: json.loads(p.read_text()))
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{folder / 'meta.json'}: unknown checkpoint format {meta.get('format')!r}")
    if meta.get("world_size") != accelerator.num_processes:
        raise CheckpointError(f"{folder} was written by {meta.get('world_size')} processes, this run has "
                              f"{accelerator.num_processes}: resume with the same number of processes")
    rng_path = folder / f"rng_{accelerator.process_index}.pt"  # small: checked before the nets are read
    rng = _read(rng_path, lambda p: parse_rng_states(_load_tensors(p)))
    nets = {name: _read(folder / "nets" / f"{name}.safetensors", lambda p: load_file(str(p)))
            for name in state.nets}
    optimizers = {name: _read(folder / "optimizers" / f"{name}.pt", _load_tensors) for name in state.optimizers}
    objects = _read(folder / "state.pt", _load_tensors)
    expected = set(state.objects) | ({"grad_scaler"} if state.scaler is not None else set())
    if not isinstance(objects, dict) or set(objects) != expected:
        found = sorted(objects) if isinstance(objects, dict) else type(objects).__name__
        raise CheckpointError(f"{folder / 'state.pt'} holds {found}, this run needs {sorted(expected)}")
    for name, tensors in nets.items():
        _check_shapes(folder / "nets" / f"{name}.safetensors", tensors, state.nets[name].state_dict())

    # Everything is read and fits: apply.
    for name, tensors in nets.items():
        state.nets[name].load_state_dict(tensors)
    for name, optimizer_state in optimizers.items():
        state.optimizers[name].load_state_dict(optimizer_state)
    for name, obj in state.objects.items():
        obj.load_state_dict(objects[name])
    if state.scaler is not None:
        state.scaler.load_state_dict(objects["grad_scaler"])
    set_rng_states(rng)


def resume(root: Path, state: TrainingState, accelerator) -> Path:
    """Load the newest checkpoint that is intact; a damaged one is reported and the next older one tried."""
    folders = checkpoint_folders(root)
    if not folders:
        raise FileNotFoundError(f"--resume: no checkpoint in {root}")
    problems = []
    for folder in reversed(folders):
        try:
            load(folder, state, accelerator)
        except CheckpointError as error:
            log.warning("cannot resume from %s: %s", folder.name, error)
            problems.append(str(error))
            continue
        if problems:
            log.warning("resumed from the older checkpoint %s instead", folder)
        return folder
    raise CheckpointError("no checkpoint in " + str(root) + " can be used: " + "; ".join(problems))


def _read(path: Path, reader):
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return reader(path)
    except (OSError, EOFError, RuntimeError, ValueError, SafetensorError, pickle.UnpicklingError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} cannot be read: {first}") from error


def _load_tensors(path: Path):
    """Tensors and plain containers only: torch's weights-only unpickler refuses anything that could run code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _check_shapes(path: Path, saved: dict, expected: dict) -> None:
    problems = state_dict_problems(expected, saved)
    if problems:
        raise CheckpointError(f"{path} does not fit this run's network: {'; '.join(problems)}")


def rng_states() -> dict:
    """Every RNG the loop draws from, as tensors and plain values (weights-only loadable)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def parse_rng_states(states) -> dict:
    """rng_states() as written, checked and turned back into what the RNGs take; ValueError, naming the RNG, if it is
    not one. Each state is set on a scratch generator of its kind, so that one of the wrong size or type (a crafted
    or damaged file that unpickles fine) is found here, before anything of the checkpoint is applied, and the
    checkpoint is treated like any other damaged one."""
    try:
        version, internal, gauss = states["python"]
        n = states["numpy"]
        key = n["key"]
        parsed = {"python": (version, tuple(internal), gauss),
                  "numpy": (n["kind"], key.numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                            n["cached_gaussian"]),
                  "torch": states["torch"], "cuda": list(states["cuda"])}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"not an RNG state ({type(error).__name__}: {error})") from error
    checks = {"python": lambda: _check_python_rng(*parsed["python"]),
              "numpy": lambda: _check_numpy_rng(key, parsed["numpy"]),
              "torch": lambda: torch.Generator().set_state(parsed["torch"]),
              "cuda": lambda: _check_cuda_rngs(parsed["cuda"])}
    for name, check in checks.items():
        try:
            check()
        except (TypeError, ValueError, OverflowError, IndexError, RuntimeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"not an RNG state (the {name} state: {first})") from error
    return parsed


def _check_python_rng(version, internal: tuple, gauss) -> None:
    random.Random().setstate((version, internal, gauss))  # the version, the vector's size and its values
    if gauss is not None and type(gauss) is not float:
        raise TypeError(f"the cached gaussian is {type(gauss).__name__}, not a float or None")


def _check_numpy_rng(key: torch.Tensor, state: tuple) -> None:
    kind, _, pos, has_gauss, cached = state
    if not (key.dtype == torch.int64 and key.shape == (MT19937_WORDS,)):
        raise ValueError(f"the key is {key.dtype} of shape {tuple(key.shape)}, not {MT19937_WORDS} int64")
    if not bool(((key >= 0) & (key < 2**32)).all()):
        raise ValueError("the key holds values outside 32 bits")
    # set_state does not check pos, an index into the key: out of range, the generator would read past it.
    if type(pos) is not int or not 0 <= pos <= MT19937_WORDS or has_gauss not in (0, 1) or type(cached) is not float:
        raise ValueError(f"pos {pos!r}, has_gauss {has_gauss!r}, cached_gaussian {cached!r} are not a state's")
    np.random.RandomState().set_state(state)  # the kind


def _check_cuda_rngs(cuda_states: list) -> None:
    """Byte tensors; of this machine's size where it has CUDA (they are applied only there)."""
    for index, state in enumerate(cuda_states):
        if not (torch.is_tensor(state) and state.dtype == torch.uint8 and state.dim() == 1):
            raise TypeError(f"device {index}'s state is not a byte vector")
    if cuda_states and torch.cuda.is_available():
        current = torch.cuda.get_rng_state_all()
        if len(cuda_states) > len(current) or any(a.numel() != b.numel() for a, b in zip(cuda_states, current)):
            raise ValueError(f"{len(cuda_states)} device states of {[s.numel() for s in cuda_states]} bytes; this "
                             f"machine's {len(current)} are {[s.numel() for s in current]}")


def set_rng_states(parsed: dict) -> None:
    random.setstate(parsed["python"])
    np.random.set_state(parsed["numpy"])
    torch.set_rng_state(parsed["torch"])
    if parsed["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(parsed["cuda"])
