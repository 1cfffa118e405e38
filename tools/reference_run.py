"""The reference implementation's own train.py (pytorch-CycleGAN-and-pix2pix) as a curve of tools/quality.py.

`python tools/bench.py quality ... --reference PATH` trains the checkout at PATH with its own `train.py`, set up like
one of our presets (`--reference-like`, default the first variant: same networks, sizes, batch, learning rate,
constant lr), for the same wall-clock minutes, and scores it at the same times through the same `translate convert`
path (which reads the reference's .pth files as they are). The reference cannot stop on a time budget or save on
demand, so it runs as its own process group that is paused (SIGSTOP) at each scoring time: the last
`latest_net_G*.pth` it wrote (every `SAVE_EVERY` steps) is copied and scored, then it continues (SIGCONT). Paused
time is not training time.

An interrupted benchmark resumes with the reference's `--continue_train` (networks restored; the reference saves no
optimizer state, so its own resume is not exact) and the training seconds and steps already spent, kept in
OUT/reference/state.json.

Written against the reference as of 2025 (commit 2a7afba: no --gpu_ids, the device is the first GPU if any,
`import wandb` in util/visualizer.py, so its Python needs `dominate` and `wandb`; `--reference-python` names it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import torch

from translate import config as config_lib
from translate.utils import write_text_atomic

SAVE_EVERY = 25  # steps between the reference's `latest` saves: a snapshot is at most this many steps old
REFERENCE_MODELS = {"cyclegan": ("cycle_gan", "G_A"), "pix2pix": ("pix2pix", "G")}
REFERENCE_GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
LOSS_LINE = re.compile(r"\(epoch: (\d+), iters: (\d+),")
DATASET_SIZE = re.compile(r"number of training images = (\d+)")


def reference_flags(cfg, split: Path) -> list[str]:
    """train.py options that build what our preset builds, at its size, batch and learning rate."""
    model = cfg.model
    if model.name not in REFERENCE_MODELS or model.generator not in REFERENCE_GENERATORS:
        raise SystemExit(f"--reference-like: the reference has no {model.name} with {model.generator} "
                         f"(it has {', '.join(REFERENCE_MODELS)} with {', '.join(REFERENCE_GENERATORS)})")
    flags = ["--dataroot", str(split.resolve()), "--model", REFERENCE_MODELS[model.name][0],
             "--netG", model.generator, "--ngf", str(model.ngf), "--ndf", str(model.ndf),
             "--n_layers_D", str(model.n_layers_d), "--norm", model.norm, "--gan_mode", model.gan_mode,
             "--lr", str(model.lr), "--beta1", str(model.beta1), "--load_size", str(cfg.data.load_size),
             "--crop_size", str(cfg.data.crop_size), "--batch_size", str(cfg.data.batch_size),
             "--direction", cfg.data.direction]
    if not cfg.data.flip:
        flags.append("--no_flip")
    if model.name == "cyclegan":
        flags += ["--lambda_A", str(model.lambda_a), "--lambda_B", str(model.lambda_b),
                  "--lambda_identity", str(model.lambda_identity), "--pool_size", str(model.pool_size)]
    else:
        flags += ["--lambda_L1", str(model.lambda_l1)]
    if not model.dropout:
        flags.append("--no_dropout")
    return flags


def convert_flags(cfg) -> list[str]:
    """`translate convert` options that rebuild the reference's generator from its .pth."""
    flags = ["--arch", cfg.model.generator, "--norm", cfg.model.norm, "--ngf", str(cfg.model.ngf)]
    return flags + (["--dropout"] if cfg.model.dropout else [])


class ReferenceTraining:
    """The reference's train.py in its own process group: run for some seconds, pause, snapshot, continue."""

    def __init__(self, reference: Path, python: str, flags: list[str], work: Path, net: str, threads: int):
        self.state_path = work / "state.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {"seconds": 0.0,
                                                                                                 "steps": 0}
        self.steps_before = self.state["steps"]  # steps of earlier processes (an interrupted benchmark)
        self.log = work / "train.log"
        self.batch = int(flags[flags.index("--batch_size") + 1])
        checkpoints = (work / "checkpoints").resolve()  # it runs in its checkout: relative paths would land there
        every = str(SAVE_EVERY * self.batch)  # the reference counts images, and saves when a multiple is reached
        command = [python, "train.py", *flags, "--name", "quality", "--checkpoints_dir", str(checkpoints), "--no_html",
                   "--n_epochs", "100000", "--n_epochs_decay", "0", "--save_latest_freq", every,
                   "--save_epoch_freq", "100000", "--print_freq", every, "--num_threads", str(threads)]
        if (checkpoints / "quality" / f"latest_net_{net}.pth").exists():
            command += ["--continue_train", "--epoch", "latest"]
        work.mkdir(parents=True, exist_ok=True)
        self.log_start = self.log.stat().st_size if self.log.exists() else 0  # this process's part of the log
        self.training = False
        with open(self.log, "a") as log:
            # its device is the first GPU if there is one, as ours is under Accelerate
            self.process = subprocess.Popen(command, cwd=reference, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.latest = checkpoints / "quality" / f"latest_net_{net}.pth"
        self.peak = 0

    def train_until(self, seconds: float) -> None:
        """Let it run until it has trained `seconds` in all (this and earlier processes), watching its memory. The
        clock starts when it has built its dataset, as ours starts at the training loop: imports are not training."""
        while self.state["seconds"] < seconds:
            if self.process.poll() is not None:
                raise SystemExit(f"the reference's train.py exited with code {self.process.returncode}; "
                                 f"see {self.log}")
            start = time.monotonic()
            time.sleep(min(0.5, seconds - self.state["seconds"]) if self.training else 0.2)
            if self.training:
                self.state["seconds"] += time.monotonic() - start
            else:
                self.training = bool(DATASET_SIZE.search(self.own_log()))
            self.peak = max(self.peak, tree_rss(self.process.pid))

    def own_log(self) -> str:
        with open(self.log, errors="replace") as log:
            log.seek(self.log_start)
            return log.read()

    def pause_and_snapshot(self, dest: Path) -> int:
        """Pause the process group, copy the last saved generator to `dest`; the steps trained so far."""
        self.pause_at_complete_save()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.latest, dest)
        self.state["steps"] = self.steps_before + self.steps_in_log()
        write_text_atomic(self.state_path, json.dumps(self.state))
        return self.state["steps"]

    def pause_at_complete_save(self) -> None:
        """Pause the process group at a moment its last save is complete: the reference writes its .pth in place, so
        a pause (or a kill) during a save leaves it half written, for a snapshot or a later --continue_train to trip
        on. Until the file loads, let it train on a second at a time."""
        for _ in range(20):
            self.stop_group()
            try:
                torch.load(self.latest, map_location="cpu", weights_only=True)
                return
            except (OSError, RuntimeError, EOFError):
                os.killpg(self.process.pid, signal.SIGCONT)
                self.train_until(self.state["seconds"] + 1)
        state = "not complete" if self.latest.exists() else "not written"
        raise SystemExit(f"{self.latest}: {state} after 20 s more of training; see {self.log}")

    def stop_group(self) -> None:
        """SIGSTOP the group and wait until every process in it has stopped: the signal is delivered asynchronously,
        and a process still running for a moment could be writing the file about to be copied."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if all(p.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
                       for p in process_tree(self.process.pid)):
                    return
            except psutil.NoSuchProcess:
                return  # it exited; train_until reports that
            time.sleep(0.01)
        raise SystemExit(f"the reference's train.py (pid {self.process.pid}) did not stop within 10 s of SIGSTOP")

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill the process group, between saves: a kill during one would leave the next run's --continue_train a
        half-written file."""
        if self.process.poll() is None:
            if self.latest.exists():
                try:
                    self.pause_at_complete_save()
                except SystemExit:  # it exited, or never completed a save: nothing better to wait for
                    pass
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def steps_in_log(self) -> int:
        """Steps of this process, from its last loss line: (epoch - 1) * images per epoch + images this epoch."""
        own = self.own_log()  # each process of an interrupted benchmark counts from epoch 1 again
        sizes = DATASET_SIZE.findall(own)
        if not sizes:
            return 0
        epoch, images = map(int, (LOSS_LINE.findall(own) or [(1, 0)])[-1])
        return ((epoch - 1) * int(sizes[-1]) + images) // self.batch


def process_tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def tree_rss(pid: int) -> int:
    try:
        return sum(p.memory_info().rss for p in process_tree(pid))
    except psutil.Error:
        return 0


def train_and_score(args, times: list[float], val, results: dict, results_path: Path, translate_and_score) -> None:
    """The reference's curve: the points of `times` not yet in `results`, appended as they are scored."""
    todo = [m for m in times if not any(p["variant"] == "reference" and p["minutes"] == m for p in results["points"])]
    if not todo:
        return
    like = args.reference_like or args.variants[0]
    cfg = config_lib.load(args.recipe, [f"data.root={args.split}", *args.set], preset=like)
    flags = reference_flags(cfg, args.split)  # checks that the reference has this model before anything runs
    net = REFERENCE_MODELS[cfg.model.name][1]
    work = args.out / "reference"
    run = ReferenceTraining(args.reference, args.reference_python, flags, work, net, threads=cfg.data.num_workers)
    try:
        for minutes in todo:
            run.train_until(minutes * 60)
            snapshot = work / "snapshots" / f"minutes_{minutes:g}_net_{net}.pth"
            steps = run.pause_and_snapshot(snapshot)
            scores = translate_and_score(args, val, snapshot, None, work, minutes, cfg.data.load_size,
                                         convert_flags(cfg))
            point = {"variant": "reference", "like": like, "minutes": minutes, "step": steps,
                     "sec_per_step": round(run.state["seconds"] / max(steps, 1), 4),
                     "peak_rss_mb": round(run.peak / 2**20), **scores}
            results["points"].append(point)
            write_text_atomic(results_path, json.dumps(results, indent=1))
            print(json.dumps(point), flush=True)
            run.resume()
    finally:
        run.stop()
