"""Two goals of the hardening issue, checked end to end on tiny generated data: `python tools/fault_goals.py`.

resume:  a tiny CPU pix2pix training is killed with SIGKILL 5 times at random moments and resumed each time, and
         once its newest checkpoint is damaged (a file in it truncated) before the resume; its final export must
         be byte-identical to an uninterrupted run's.
convert: 40 good and 100 malformed files (random bytes, truncated JPEGs, empty files, text named .png) go through
         `translate convert`, killed 3 times at random moments, then run to the end: 40 decodable outputs, 100
         lines in errors.txt, exit code 1, every input unchanged.

Everything runs as the `translate` command in subprocesses, in a temporary folder, at the caller's thread count
(a different one sums in another order, and the weights would differ). Prints one JSON object; exit code 0 when
both goals are met. Takes a few minutes on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from translate.data.images import ImageReadError, is_image_file, read_image
from translate.training.checkpoints import checkpoint_folders

TINY = ["model.name=pix2pix", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4", "data.load_size=36",
        "data.crop_size=32", "data.batch_size=2", "data.num_workers=0", "train.log_every=1", "train.sample_every=1000",
        "train.checkpoint_every=4", "train.keep_checkpoints=2"]
KILLS, CONVERT_KILLS, GOOD, EACH_BAD = 5, 3, 40, 25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="chooses the kill moments and the damaged file")
    parser.add_argument("--steps", type=int, default=60, help="training steps of the tiny run")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix="fault_goals_"))
    try:
        summary = {"seed": args.seed, "threads": os.environ.get("OMP_NUM_THREADS", "default")}
        summary["resume"], export = resume_goal(work / "resume", args.steps, rng)
        summary["convert"] = convert_goal(work / "convert", export, rng)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=1))
    return 0 if summary["resume"]["goal_met"] and summary["convert"]["goal_met"] else 1


# --- resume: kill -9 x 5 and a damaged newest checkpoint, then bit-identical weights ---------------------------------

def resume_goal(root: Path, steps: int, rng: random.Random) -> tuple[dict, Path]:
    data = root / "data" / "train"
    data.mkdir(parents=True)
    noise = np.random.default_rng(0)
    for i in range(8):  # aligned pairs: A | B side by side
        Image.fromarray(noise.integers(0, 256, (32, 64, 3), np.uint8)).save(data / f"{i}.png")
    recipe = root / "recipe.yaml"
    recipe.write_text("{}\n")
    overrides = [*TINY, f"data.root={root / 'data'}", f"train.max_steps={steps}", f"train.decay_steps={steps // 2}"]

    def train(run: Path, resume: bool) -> tuple[subprocess.Popen, Path]:
        log = root / f"{run.name}_{len(list(root.glob(run.name + '_*.log')))}.log"
        return start(["train", str(recipe), *overrides, "--run-dir", str(run), *["--resume"] * resume], log), log

    straight = root / "straight"
    straight_code = train(straight, resume=False)[0].wait()
    if straight_code != 0:
        raise RuntimeError(f"the uninterrupted run failed: {log_text(root, straight.name)[-2000:]}")
    records = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    step_s = sum(r["sec_per_step"] for r in records) / len(records)  # checkpoint writes included

    run, kills, damaged = root / "killed", [], None
    while len(kills) < KILLS:
        done = checkpoint_folders(run / "checkpoints")
        remaining = steps - (int(done[-1].name.split("_")[1]) if done else 0)
        process, log = train(run, resume=bool(done))
        moment = rng.uniform(0, 0.8 * remaining * step_s)  # a random moment of the training still to do
        kill = {"newest_checkpoint": done[-1].name if done else None, "after_start_s": round(moment, 3)}
        # the progress bar appears when the loop starts: data, model and any checkpoint are loaded by then
        started = wait_for(lambda log=log: "train:" in log.read_text(errors="replace"), process)
        orphans = None if started is None else kill_after(process, moment)
        if orphans is None:
            kill["finished_first"] = True  # too late: the run ended before the kill
            kills.append(kill)
            break
        kill["orphans_left"] = orphans
        kill["checkpoints_left"] = [p.name for p in checkpoint_folders(run / "checkpoints")]
        kills.append(kill)
        if damaged is None and len(kill["checkpoints_left"]) >= 2:  # damage the newest, once an older one exists
            damaged = damage_newest(run / "checkpoints", rng)
    final_code = train(run, resume=bool(checkpoint_folders(run / "checkpoints")))[0].wait()
    fell_back = "resumed from the older checkpoint" in log_text(root, run.name)
    compared = {p.name: p.read_bytes() == (run / "export" / p.name).read_bytes()
                if (run / "export" / p.name).exists() else False
                for p in sorted((root / "straight" / "export").glob("*.safetensors"))}
    result = {"steps": steps, "sec_per_step": round(step_s, 3), "kills": kills, "damaged": damaged,
              "fell_back_to_older_checkpoint": fell_back, "final_exit_code": final_code,
              "weights_identical": compared}
    result["goal_met"] = (sum("finished_first" not in k for k in kills) == KILLS and damaged is not None
                          and fell_back and final_code == 0 and bool(compared) and all(compared.values()))
    return result, root / "straight" / "export"


def damage_newest(checkpoints: Path, rng: random.Random) -> dict:
    newest = checkpoint_folders(checkpoints)[-1]
    target = rng.choice(sorted(p for p in newest.rglob("*") if p.is_file()))
    size = target.stat().st_size
    with open(target, "r+b") as f:
        f.truncate(size // 2)
    return {"file": target.relative_to(checkpoints).as_posix(), "bytes": size, "truncated_to": size // 2}


# --- convert: 40 good + 100 malformed, killed 3 times, then run to the end -----------------------------------------

def convert_goal(root: Path, export: Path, rng: random.Random) -> dict:
    inputs, out = root / "in", root / "out"
    kinds = make_inputs(inputs, rng)  # file name -> kind
    before = hashes(inputs)
    command = ["convert", str(export), str(inputs), str(out), "--net", "G"]
    kills = []
    while len(kills) < CONVERT_KILLS:
        done = len(outputs(out))
        target = done + rng.randint(1, max(1, (GOOD - done) // 2))  # somewhere in the first half of what is left
        process = start(command, root / f"convert_{len(kills)}.log")
        reached = wait_for(lambda n=target: len(outputs(out)) >= n, process)
        orphans = None if reached is None else kill_after(process, rng.uniform(0, 0.05))
        if orphans is None:
            kills.append({"outputs_before": done, "finished_first": True})
            break
        kills.append({"outputs_before": done, "outputs_at_kill": len(outputs(out)), "orphans_left": orphans})
    code = start(command, root / "convert_final.log").wait()
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    errors = (out / "errors.txt").read_text().splitlines() if (out / "errors.txt").exists() else []
    malformed = {name for name, kind in kinds.items() if kind != "good"}
    decodable = sum(decodes(p) for p in outputs(out))
    leftovers = [p.name for p in out.rglob(".*partial*")]
    result = {"inputs": {kind: list(kinds.values()).count(kind) for kind in sorted(set(kinds.values()))},
              "kills": kills, "final_exit_code": code, "manifest_complete": manifest.get("complete"),
              "manifest_images": len(manifest.get("images", [])), "manifest_failed": len(manifest.get("failed", [])),
              "decodable_outputs": decodable, "errors_txt_lines": len(errors),
              "errors_txt_names_each_malformed_file": {line.split("\t")[1] for line in errors} == malformed,
              "inputs_unchanged": hashes(inputs) == before, "temporaries_left": leftovers}
    result["goal_met"] = (sum("finished_first" not in k for k in kills) == CONVERT_KILLS and code == 1
                          and decodable == GOOD == result["manifest_images"] and len(errors) == 4 * EACH_BAD
                          and result["errors_txt_names_each_malformed_file"]
                          and result["inputs_unchanged"] and not any(k.get("orphans_left") for k in kills))
    return result


def make_inputs(folder: Path, rng: random.Random) -> dict[str, str]:
    """GOOD images and EACH_BAD of each malformed kind, under shuffled names so that good and bad interleave;
    returns file name -> kind."""
    folder.mkdir(parents=True)
    kinds = ["good"] * GOOD + [k for k in ("random_bytes", "truncated_jpeg", "empty", "text_as_png")
                               for _ in range(EACH_BAD)]
    rng.shuffle(kinds)
    noise = np.random.default_rng(1)
    made = {}
    for i, kind in enumerate(kinds):
        suffix = {"random_bytes": rng.choice([".png", ".jpg"]), "truncated_jpeg": ".jpg",
                  "empty": rng.choice([".png", ".jpg", ".tif"])}.get(kind, ".png")
        path = folder / f"img_{i:03d}{suffix}"
        if kind == "good":
            Image.fromarray(noise.integers(0, 256, (192, 256, 3), np.uint8)).save(path)
        elif kind == "random_bytes":
            path.write_bytes(rng.randbytes(rng.randint(1, 4096)))
        elif kind == "truncated_jpeg":
            Image.fromarray(noise.integers(0, 256, (64, 64, 3), np.uint8)).save(path, quality=90)
            path.write_bytes(path.read_bytes()[: int(path.stat().st_size * rng.uniform(0.2, 0.8))])
        elif kind == "empty":
            path.write_bytes(b"")
        else:
            path.write_text("these are not the pixels you are looking for\n")
        made[path.name] = kind
    return made


def outputs(folder: Path) -> list[Path]:
    """Finished outputs: visible image files (temporaries are hidden, manifest and errors are not images)."""
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and is_image_file(p)] \
        if folder.is_dir() else []


def decodes(path: Path) -> bool:
    try:
        read_image(path)
    except ImageReadError:
        return False
    return True


def hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- processes --------------------------------------------------------------------------------------------------

def start(argv: list[str], log: Path) -> subprocess.Popen:
    """`translate ARGV`, its output to `log`, in a process group of its own: what is left of it after a kill
    (DataLoader workers) can be found and ended."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "translate", *argv], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def log_text(root: Path, run_name: str) -> str:
    """Everything the processes of one run folder printed, in order."""
    logs = sorted(root.glob(f"{run_name}_*.log"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return "".join(p.read_text(errors="replace") for p in logs)


def wait_for(condition, process: subprocess.Popen, timeout: float = 600) -> float | None:
    """Poll until `condition()`; the time it became true, or None when the process ended first."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if condition():
            return time.perf_counter()
        if process.poll() is not None:
            return None
        time.sleep(0.01)
    raise TimeoutError(f"{process.args} made no progress in {timeout} s")


def kill_after(process: subprocess.Popen, seconds: float) -> int | None:
    """SIGKILL `process` after `seconds` unless it has ended by then (None). Returns how many processes of its
    group were still alive half a second after the kill (workers that outlived it), and ends those."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and process.poll() is None:
        time.sleep(0.005)
    if process.poll() is not None:
        return None
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(0.5)  # a worker told to die with its parent needs a moment
    orphans = group_members(process.pid)
    if orphans:
        os.killpg(process.pid, signal.SIGKILL)
    return len(orphans)


def group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


if __name__ == "__main__":
    raise SystemExit(main())
