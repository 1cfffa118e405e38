"""Quality against wall-clock training time: `python tools/bench.py quality RECIPE --split DIR --variants P1 P2 ...`.

Each variant is a preset of the recipe (so the winner becomes the recipe's preset as it is). Variants train one
after another, never two at once, each for the same training time: `translate train ... train.max_minutes=T` to the
first scoring time, then `--resume` to the next, so every point is an ordinary export of an ordinary run. At each
point the export translates the validation inputs with `translate convert` (the one inference path) and the
outputs are scored offline (translate.evaluation): Lite0 FID/KID against the validation targets, the ImageNet class
rate where a class is given, and a structure score (L1 between 32 x 32 blurred greyscale input and output, in
0..1: low means the pose and background are kept).

Paired splits (SPLIT/val holds A|B side-by-side files, as tools/split_holdout.py makes from a pix2pix folder): the
halves are cut once into OUT/val_data (input and target half by the recipe's data.direction, targets at the
model's size), and each output is also scored against its own target (PSNR, SSIM, L1, perceptual distance).
`--remade xdog:3` adds a second input set: edges re-made from the target photos by another method and stroke width
(datasets/prepare.py edges), scored the same way with the prefix `remade_`, so that the gap between a model's
dataset edges (a) and drawn-looking edges (b) is measured on the same photos.

The learning rate is held constant (train.decay_steps=0): a schedule counted in steps cannot know where a time
budget ends.

Everything goes under --out: quality.json (every point; written after each, so an interrupted benchmark resumes
where it stopped), quality.png (each score against training minutes, one curve per variant, the untranslated
inputs as a dashed line) and samples.png (the same validation inputs, one row per variant at its last point).

`--reference PATH` adds the curve of the reference implementation's own train.py, set up as one of the presets
(`--reference-like`, default the first variant) and trained for the same minutes (tools/reference_run.py).

    python tools/split_holdout.py ../shared/data/horse2zebra runs/h2z_split --count 100
    python tools/bench.py quality recipes/horse2zebra.yaml --split runs/h2z_split --variants cpu cpu_cut cpu_fastcut \
        --minutes 15 --score-every 5 --imagenet-class zebra --out runs/quality_h2z

    python tools/split_holdout.py ../shared/data/edges2handbags runs/handbags_split --count 100
    python tools/bench.py quality recipes/sketch2handbag.yaml --split runs/handbags_split \
        --variants cpu_paper cpu_lite1 cpu_lite1_sketch --remade xdog:3 --minutes 60 --score-every 20 \
        --out runs/quality_handbags
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import reference_run  # tools/reference_run.py, beside this file
from PIL import Image, ImageFilter
from plots import plot_quality  # tools/plots.py

from translate import config as config_lib
from translate.data.folders import list_images
from translate.evaluation.api import evaluate
from translate.utils import atomic_path, write_text_atomic

SAMPLES = 8


def add_arguments(parser) -> None:
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--split", type=Path, required=True, help="folder with trainA/trainB/valA/valB "
                        "(tools/split_holdout.py)")
    parser.add_argument("--variants", nargs="*", default=[], help="presets of the recipe, run in this order (none: "
                        "only the reference, e.g. on another core, with --reference-like)")
    parser.add_argument("--minutes", type=float, default=15, help="training minutes per variant")
    parser.add_argument("--score-every", type=float, default=5, help="minutes of training between scores")
    parser.add_argument("--imagenet-class", help="also score the ImageNet class rate, e.g. zebra")
    parser.add_argument("--remade", metavar="METHOD:THICKNESS", help="paired splits: also score inputs re-made "
                        "from the targets by datasets/prepare.py edges, e.g. xdog:3")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every variant, e.g. data.num_workers=1")
    parser.add_argument("--reference", type=Path, metavar="PATH", help="a checkout of pytorch-CycleGAN-and-pix2pix: "
                        "also train its own train.py for the same minutes, scored the same way")
    parser.add_argument("--reference-like", metavar="PRESET", help="the preset the reference is set up as "
                        "(networks, sizes, batch, lr); default: the first variant")
    parser.add_argument("--reference-python", default=sys.executable, help="the Python that runs the reference "
                        "(it needs dominate and wandb besides torch); default: this one")
    parser.add_argument("--out", type=Path, required=True)


@dataclass
class Validation:
    """What every point is scored on: `inputs` translated and compared with `real`; for paired splits each output
    also against its own target in `targets` (same relative path), and `remade`, a second input set."""

    inputs: Path
    real: Path
    targets: Path | None = None
    remade: Path | None = None
    size: int = 0
    extra: dict = field(default_factory=dict)


def validation_sets(args) -> Validation:
    cfg = config_lib.load(args.recipe, [f"data.root={args.split}"], preset=(args.variants or [args.reference_like])[0])
    if (args.split / "valA").is_dir():
        return Validation(args.split / "valA", args.split / "valB", size=cfg.data.load_size)
    if not (args.split / "val").is_dir():
        raise SystemExit(f"{args.split}: neither valA/valB nor val/ (make it with tools/split_holdout.py)")
    data = args.out / "val_data"
    size = cfg.data.load_size
    input_half, target_half = ("left", "right") if cfg.data.direction == "AtoB" else ("right", "left")
    pairs = list_images(args.split / "val")
    cut_halves(pairs, args.split / "val", data / "inputs", input_half)
    cut_halves(pairs, args.split / "val", data / "targets", target_half)
    cut_halves(pairs, args.split / "val", data / f"targets_{size}", target_half, size)
    remade = None
    if args.remade:
        method, _, thickness = args.remade.partition(":")
        remade_pairs = data / f"remade_{method}_{thickness or 1}"
        if not (remade_pairs / "val").is_dir():
            subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "datasets" / "prepare.py"),
                            "edges", "--photos", str(data / "targets"), "--out", str(remade_pairs), "--method", method,
                            "--thickness", thickness or "1", "--val-fraction", "1", "--format", "png"], check=True)
        remade = data / f"remade_{method}_{thickness or 1}_inputs"
        cut_halves(list_images(remade_pairs / "val"), remade_pairs / "val", remade, "left")
    return Validation(data / "inputs", data / f"targets_{size}", data / f"targets_{size}", remade, size)


def cut_halves(files: list[Path], root: Path, dest: Path, half: str, size: int | None = None) -> None:
    """The left or right half of each side-by-side file as a PNG under `dest` (same relative name), resized to
    size x size when given; files already cut are kept, so a rerun costs nothing."""
    for path in files:
        target = dest / path.relative_to(root).with_suffix(".png")
        if target.exists():
            continue
        with Image.open(path) as img:
            w, h = img.size
            piece = img.convert("RGB").crop((0, 0, w // 2, h) if half == "left" else (w // 2, 0, w, h))
        if size:
            piece = piece.resize((size, size), Image.BICUBIC)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            piece.save(tmp, format="PNG")


def run(args) -> int:
    if not args.variants and not (args.reference and args.reference_like):
        raise SystemExit("bench quality: name --variants, or --reference with --reference-like, or both")
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "quality.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"points": []}
    val = validation_sets(args)
    if not any(p["variant"] == "input" for p in results["points"]):  # the untranslated inputs: the line to beat
        results["points"].append({"variant": "input", "minutes": 0, **score(val, val.inputs, args.imagenet_class)})
        write_text_atomic(results_path, json.dumps(results, indent=1))
    times = [round(args.score_every * k, 4) for k in range(1, int(args.minutes / args.score_every + 1e-9) + 1)]
    for variant in args.variants:
        for minutes in times:
            if any(p["variant"] == variant and p["minutes"] == minutes for p in results["points"]):
                continue  # done in an earlier, interrupted benchmark
            point = train_and_score(args, variant, minutes, val)
            results["points"].append(point)
            write_text_atomic(results_path, json.dumps(results, indent=1))
            print(json.dumps(point), flush=True)
    if args.reference:
        reference_run.train_and_score(args, times, val, results, results_path, translate_and_score)
    plot_quality(results["points"], args.out / "quality.png", args.imagenet_class)
    sample_sheet(args, val, args.out / "samples.png")
    print(f"wrote {results_path}, {args.out / 'quality.png'}, {args.out / 'samples.png'}")
    return 0


def train_and_score(args, variant: str, minutes: float, val: Validation) -> dict:
    run_dir = args.out / variant / "run"
    cfg = config_lib.load(args.recipe, train_overrides(args, minutes), preset=variant)
    command = [sys.executable, "-m", "translate", "train", str(args.recipe), "--preset", variant,
               *train_overrides(args, minutes), "--run-dir", str(run_dir)]
    if (run_dir / "checkpoints").is_dir():
        command.append("--resume")
    peak = run_measuring_memory(command, args.out / variant / "train.log")
    net = "G_AB" if cfg.model.name in ("cyclegan", "cut") else "G"
    scores = translate_and_score(args, val, run_dir / "export", net, args.out / variant, minutes, cfg.data.load_size)
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return {"variant": variant, "minutes": minutes, "step": last["step"],
            "sec_per_step": round(last["train_minutes"] * 60 / last["step"], 4),  # everything in the loop, averaged
            "peak_rss_mb": round(peak / 2**20), **scores}


def translate_and_score(args, val: Validation, model: Path, net: str | None, folder: Path, minutes: float, size: int,
                        extra: list[str] = ()) -> dict:
    """Translate the validation inputs into folder/minutes_M (and the remade inputs into folder/remade_minutes_M,
    scores prefixed `remade_`) and score them."""
    scores = {}
    for inputs, prefix in ((val.inputs, ""), (val.remade, "remade_")):
        if inputs is None:
            continue
        fakes = folder / f"{prefix}minutes_{minutes:g}"
        translate_folder(model, net, inputs, fakes, size, extra)
        scores.update({prefix + k: v for k, v in score(val, fakes, args.imagenet_class, inputs=inputs).items()})
    return scores


def translate_folder(model: Path, net: str | None, inputs: Path, outputs: Path, size: int,
                     extra: list[str] = ()) -> None:
    """`translate convert` at the scale the model was trained at: the one inference path users get. `model` is an
    export (`net` names its generator) or a reference .pth (`extra` gives its architecture)."""
    subprocess.run([sys.executable, "-m", "translate", "convert", str(model), str(inputs), str(outputs),
                    *(["--net", net] if net else []), *extra, "--size", f"{size}x{size}", "--overwrite",
                    "--compile", "off"], check=True, stdout=subprocess.DEVNULL)


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


def score(val: Validation, outputs: Path, imagenet_class: str | None, inputs: Path | None = None) -> dict:
    """Scores of the translations of `inputs` (default val.inputs) in `outputs` (the inputs themselves: the
    untranslated line to beat)."""
    inputs = inputs or val.inputs
    scores = evaluate("fid", outputs, real=val.real)
    if imagenet_class:
        scores.update(evaluate("imagenet_class", outputs, imagenet_class=imagenet_class))
    if val.targets:
        fakes = resized_folder(outputs, val.size) if outputs == inputs else outputs
        scores.update(evaluate("paired", fakes, target=val.targets))
    else:
        scores["structure_l1"] = structure_l1(inputs, outputs) if outputs != inputs else 0.0
    return {k: round(v, 5) for k, v in scores.items()}


def resized_folder(folder: Path, size: int) -> Path:
    """The untranslated inputs at the model's size, beside them, so paired scores compare equal-sized images."""
    dest = folder.with_name(f"{folder.name}_{size}")
    files = list_images(folder)
    for path in files:
        target = dest / path.relative_to(folder)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as img, atomic_path(target) as tmp:
                img.convert("RGB").resize((size, size), Image.BICUBIC).save(tmp, format="PNG")
    return dest


def structure_l1(inputs: Path, outputs: Path) -> float:
    """Mean |a - b| of 32 x 32 blurred greyscale input and output (0..1): what survives of layout and pose."""
    def small(path: Path) -> np.ndarray:
        with Image.open(path) as img:
            grey = img.convert("L").resize((32, 32), Image.BICUBIC).filter(ImageFilter.GaussianBlur(1))
        return np.asarray(grey, np.float32) / 255

    pairs = [(p, outputs / p.relative_to(inputs).with_suffix(".png")) for p in list_images(inputs)]
    return float(np.mean([np.abs(small(a) - small(b)).mean() for a, b in pairs]))


def sample_sheet(args, val: Validation, path: Path, side: int = 128) -> None:
    """Row 0: the first SAMPLES validation inputs; then one row per variant, its outputs at its last point. With
    remade inputs the same again for them; paired splits end with a row of the targets."""
    rows = []
    for inputs, prefix in ((val.inputs, ""), (val.remade, "remade_")):
        if inputs is None:
            continue
        first = list_images(inputs)[:SAMPLES]
        rows.append(first)
        for variant in [*args.variants, *(["reference"] if args.reference else [])]:
            folders = sorted((args.out / variant).glob(f"{prefix}minutes_*"),
                             key=lambda p: float(p.name.split("_")[-1]))
            if folders:
                rows.append([folders[-1] / p.relative_to(inputs).with_suffix(".png") for p in first])
    if val.targets:
        rows.append([val.targets / p.relative_to(val.inputs).with_suffix(".png") for p in rows[0]])
    write_sheet(rows, path, side)


def write_sheet(rows: list[list[Path]], path: Path, side: int = 128) -> None:
    """The images of `rows` as a grid of side x side cells, one row each, written atomically."""
    sheet = Image.new("RGB", (side * max(len(row) for row in rows), side * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image_path in enumerate(row):
            with Image.open(image_path) as img:
                sheet.paste(img.convert("RGB").resize((side, side), Image.BICUBIC), (c * side, r * side))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format=path.suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG")
