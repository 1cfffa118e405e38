"""Quality against wall-clock training time: `python tools/bench.py quality RECIPE --split DIR --variants P1 P2 ...`.

Each variant is a preset of the recipe (so the winner becomes the recipe's preset as it is). Variants train one
after another, never two at once, each for the same training time: `translate train ... train.max_minutes=T` to the
first scoring time, then `--resume` to the next, so every point is an ordinary export of an ordinary run. At each
point the export translates the validation inputs with `translate convert` (the one inference path) and the
outputs are scored offline (translate.evaluation): Lite0 FID/KID against the validation targets, the ImageNet class
rate where a class is given, and a structure score (L1 between 32 x 32 blurred greyscale input and output, in
0..1: low means the pose and background are kept). The learning rate is held constant (train.decay_steps=0): a
schedule counted in steps cannot know where a time budget ends.

Everything goes under --out: quality.json (every point; written after each, so an interrupted benchmark resumes
where it stopped), quality.png (each score against training minutes, one curve per variant, the untranslated
inputs as a dashed line) and samples.png (the same validation inputs, one row per variant at its last point).

    python tools/split_holdout.py ../shared/data/horse2zebra runs/h2z_split --count 100
    python tools/bench.py quality recipes/horse2zebra.yaml --split runs/h2z_split --variants cpu cpu_cut cpu_fastcut \
        --minutes 15 --score-every 5 --imagenet-class zebra --out runs/quality_h2z
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import psutil
from PIL import Image, ImageFilter

from translate import config as config_lib
from translate.data.folders import list_images
from translate.evaluation.api import evaluate
from translate.utils import atomic_path, write_text_atomic

SAMPLES = 8


def add_arguments(parser) -> None:
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--split", type=Path, required=True, help="folder with trainA/trainB/valA/valB "
                        "(tools/split_holdout.py)")
    parser.add_argument("--variants", nargs="+", required=True, help="presets of the recipe, run in this order")
    parser.add_argument("--minutes", type=float, default=15, help="training minutes per variant")
    parser.add_argument("--score-every", type=float, default=5, help="minutes of training between scores")
    parser.add_argument("--imagenet-class", help="also score the ImageNet class rate, e.g. zebra")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every variant, e.g. data.num_workers=1")
    parser.add_argument("--out", type=Path, required=True)


def run(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "quality.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"points": []}
    val_in, val_real = args.split / "valA", args.split / "valB"
    if not any(p["variant"] == "input" for p in results["points"]):  # the untranslated inputs: the line to beat
        results["points"].append({"variant": "input", "minutes": 0,
                                  **score(val_in, val_in, val_real, args.imagenet_class)})
        write_text_atomic(results_path, json.dumps(results, indent=1))
    times = [round(args.score_every * k, 4) for k in range(1, int(args.minutes / args.score_every + 1e-9) + 1)]
    for variant in args.variants:
        for minutes in times:
            if any(p["variant"] == variant and p["minutes"] == minutes for p in results["points"]):
                continue  # done in an earlier, interrupted benchmark
            point = train_and_score(args, variant, minutes, val_in, val_real)
            results["points"].append(point)
            write_text_atomic(results_path, json.dumps(results, indent=1))
            print(json.dumps(point), flush=True)
    plot(results["points"], args.out / "quality.png")
    sample_sheet(args, val_in, args.out / "samples.png")
    print(f"wrote {results_path}, {args.out / 'quality.png'}, {args.out / 'samples.png'}")
    return 0


def train_and_score(args, variant: str, minutes: float, val_in: Path, val_real: Path) -> dict:
    run_dir = args.out / variant / "run"
    cfg = config_lib.load(args.recipe, train_overrides(args, minutes), preset=variant)
    command = [sys.executable, "-m", "translate", "train", str(args.recipe), "--preset", variant,
               *train_overrides(args, minutes), "--run-dir", str(run_dir)]
    if (run_dir / "checkpoints").is_dir():
        command.append("--resume")
    peak = run_measuring_memory(command, args.out / variant / "train.log")
    fakes = args.out / variant / f"minutes_{minutes:g}"
    size = cfg.data.load_size  # translate at the scale the model was trained at
    net = "G_AB" if cfg.model.name in ("cyclegan", "cut") else "G"
    subprocess.run([sys.executable, "-m", "translate", "convert", str(run_dir / "export"), str(val_in), str(fakes),
                    "--net", net, "--size", f"{size}x{size}", "--overwrite", "--compile", "off"],
                   check=True, stdout=subprocess.DEVNULL)
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return {"variant": variant, "minutes": minutes, "step": last["step"],
            "sec_per_step": round(last["train_minutes"] * 60 / last["step"], 4),  # everything in the loop, averaged
            "peak_rss_mb": round(peak / 2**20), **score(val_in, fakes, val_real, args.imagenet_class)}


def train_overrides(args, minutes: float) -> list[str]:
    return [f"data.root={args.split}", f"train.max_minutes={minutes}", "train.max_steps=100000000",
            "train.decay_steps=0", "train.checkpoint_every=100000000", "train.sample_every=100000000",
            "train.log_every=50", *args.set]


def run_measuring_memory(command: list[str], log: Path) -> int:
    """Run `command` to the end, its output in `log`; the peak resident memory of it and its children, in bytes."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        peak, done = [0], threading.Event()

        def watch():
            parent = psutil.Process(process.pid)
            while not done.wait(0.5):
                try:
                    tree = [parent, *parent.children(recursive=True)]
                    peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
                except psutil.Error:
                    pass

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = process.wait()
        done.set()
        watcher.join()
    if code:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}; see {log}")
    return peak[0]


def score(inputs: Path, outputs: Path, real: Path, imagenet_class: str | None) -> dict:
    scores = evaluate("fid", outputs, real=real)
    if imagenet_class:
        scores.update(evaluate("imagenet_class", outputs, imagenet_class=imagenet_class))
    scores["structure_l1"] = structure_l1(inputs, outputs) if outputs != inputs else 0.0
    return {k: round(v, 5) for k, v in scores.items()}


def structure_l1(inputs: Path, outputs: Path) -> float:
    """Mean |a - b| of 32 x 32 blurred greyscale input and output (0..1): what survives of layout and pose."""
    def small(path: Path) -> np.ndarray:
        with Image.open(path) as img:
            grey = img.convert("L").resize((32, 32), Image.BICUBIC).filter(ImageFilter.GaussianBlur(1))
        return np.asarray(grey, np.float32) / 255

    pairs = [(p, outputs / p.relative_to(inputs).with_suffix(".png")) for p in list_images(inputs)]
    return float(np.mean([np.abs(small(a) - small(b)).mean() for a, b in pairs]))


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("fid", "kid_mean", "top1", "structure_l1") if any(m in p for p in points)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        for variant in dict.fromkeys(p["variant"] for p in points):
            mine = sorted((p for p in points if p["variant"] == variant), key=lambda p: p["minutes"])
            if variant == "input":
                ax.axhline(mine[0][metric], color="grey", linestyle="--", label="untranslated")
            else:
                ax.plot([p["minutes"] for p in mine], [p[metric] for p in mine], marker="o", label=variant)
        ax.set_xlabel("training minutes")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def sample_sheet(args, val_in: Path, path: Path, side: int = 128) -> None:
    """Row 0: the first SAMPLES validation inputs; then one row per variant, its outputs at its last point."""
    inputs = list_images(val_in)[:SAMPLES]
    rows = [inputs]
    for variant in args.variants:
        folders = sorted((args.out / variant).glob("minutes_*"), key=lambda p: float(p.name.split("_")[1]))
        if folders:
            rows.append([folders[-1] / p.relative_to(val_in).with_suffix(".png") for p in inputs])
    sheet = Image.new("RGB", (side * SAMPLES, side * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image_path in enumerate(row):
            with Image.open(image_path) as img:
                sheet.paste(img.convert("RGB").resize((side, side), Image.BICUBIC), (c * side, r * side))
    with atomic_path(path) as tmp:
        sheet.save(tmp)
