"""Benchmarks that print and save JSON. Subcommands:

  convert   images/s of `translate convert` against the reference's test path: with --reference PATH, a
            checkout's own test.py; without, tests/reference_test_script.py (the tests' re-implementation and
            pixel-parity oracle, run as a script),
            same weights, same images, same run: over the whole command (process start to exit, measured here)
            and over the loop (reported by each). Variants run in turns, so load on a shared machine hits all.

    python tools/bench.py convert --images 300 --json bench_convert.json
    python tools/bench.py convert --device cuda --precision bf16 --batch-size 16     (GPU: ours batched bf16)

  forward   steady-state forward passes of eager, torch.compile'd and bf16-autocast generators, called in turns in
            one process, so that a busy machine slows all of them alike: the ratios hold where absolute numbers
            do not.

    python tools/bench.py forward --calls 10

  quality   scores against training minutes for presets of a recipe, each trained for the same time, scored through
            `translate convert` on a validation split; JSON, a plot and a sample sheet (tools/quality.py).

    python tools/bench.py quality recipes/horse2zebra.yaml --split runs/h2z_split --variants cpu cpu_cut \
        --minutes 15 --score-every 5 --imagenet-class zebra --out runs/quality_h2z

  serve     200 sketches from 8 concurrent clients and 50 malformed uploads against `translate serve` on loopback:
            latency percentiles, memory, status codes (tools/serve_load.py).

    python tools/bench.py serve --json bench_serve.json

  plot      redraw the plot of a quality JSON (quality.json, or a merged one such as docs/benchmarks/h2z_b4.json) in
            the one style every plot of this tool has: titles in words with the better direction, the legend below
            the panels, at most 1,500 px wide. `bench quality` draws its quality.png with the same function.

    python tools/bench.py plot docs/benchmarks/h2z_b4.json --imagenet-class zebra --title "Horse to zebra"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import quality  # noqa: E402  (tools/quality.py)
import serve_load  # noqa: E402  (tools/serve_load.py)
from plots import plot_quality  # noqa: E402  (tools/plots.py)

from translate.backbones import build_generator  # noqa: E402


def make_inputs(folder: Path, count: int, size: int, seed: int = 0) -> None:
    """Smooth random JPEGs (photo-like, as horse2zebra's test set), generated once per work folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        path = folder / f"{i:05d}.jpg"
        if not path.exists():
            walk = np.cumsum(np.cumsum(rng.normal(0, 2, (size, size, 3)), axis=0), axis=1)
            walk = (walk - walk.min()) / (np.ptp(walk) + 1e-9) * 255
            Image.fromarray(walk.astype(np.uint8)).save(path, quality=90)


def make_weights(path: Path, arch: str, ngf: int) -> None:
    """A reference-layout state dict: our generators keep the reference's module names (translate.export's
    load_reference_generator reads such files as they are), with the papers' N(0, 0.02) init."""
    torch.manual_seed(0)
    net = build_generator(arch, 3, 3, ngf=ngf, norm="instance", dropout=False)
    torch.save(net.state_dict(), path)


def timed(cmd: list[str], env: dict, cwd: Path = REPO) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def bench_convert(args) -> dict:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_convert_"))
    inputs, weights = work / "inputs", work / "latest_net_G_A.pth"
    make_inputs(inputs, args.images, args.size)
    make_weights(weights, args.arch, args.ngf)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ours = [str(weights), str(inputs), "--arch", args.arch, "--ngf", str(args.ngf), "--overwrite",
            "--precision", args.precision] + (["--device", args.device] if args.device else [])
    ours += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    variants = {
        "reference": None,
        "ours_eager": ["--compile", "off"],
        "ours_compile_cold": ["--compile", "on"],  # a fresh inductor cache: pays the full compile (auto: GPUs only)
        "ours_compile_cached": ["--compile", "on"],  # the cache the cold run filled
    }
    runs = []
    for repeat in range(args.repeats):
        cache = work / f"inductor_cache_{repeat}"
        for name, extra in variants.items():
            out = work / name
            if extra is None and args.reference:
                reference_env = {**env, **({} if (args.device or "cpu").startswith("cuda") else
                                           {"CUDA_VISIBLE_DEVICES": ""})}  # it takes the first GPU if it sees one
                whole = timed(reference_test_command(args, inputs, weights, out), reference_env, cwd=args.reference)
                loop = None  # the reference reports no loop time
            elif extra is None:
                timing_file = work / "reference_timing.json"
                whole = timed([sys.executable, str(REPO / "tests" / "reference_test_script.py"), "--dataroot",
                               str(inputs), "--weights", str(weights), "--results_dir", str(out), "--arch", args.arch,
                               "--ngf", str(args.ngf), "--no_dropout", "--num_test", str(args.images), "--device",
                               args.device or "cpu", "--timing_json", str(timing_file)], env)
                loop = json.loads(timing_file.read_text())["loop_s"] if timing_file.exists() else None
            else:
                run_env = {**env, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
                command = [sys.executable, "-m", "translate", "convert", *ours[:2], str(out), *ours[2:], *extra]
                whole = timed(command, run_env)
                loop = json.loads((out / "manifest.json").read_text())["timing"]["loop_s"]
            runs.append({"variant": name, "repeat": repeat, "whole_s": round(whole, 2),
                         "whole_images_per_s": round(args.images / whole, 3),
                         "loop_s": round(loop, 2) if loop else None,
                         "loop_images_per_s": round(args.images / loop, 3) if loop else None})
            print(json.dumps(runs[-1]), flush=True)
    summary = {name: {key: statistics.median(r[key] for r in runs if r["variant"] == name)
                      for key in ("whole_images_per_s", "loop_images_per_s")} for name in variants}
    reference = summary["reference"]["whole_images_per_s"]
    for name in variants:
        summary[name]["whole_speedup_vs_reference"] = round(summary[name]["whole_images_per_s"] / reference, 3)
    reference_images = work / "reference" / ("bench/test_latest/images" if args.reference else "images")
    return {"benchmark": "convert", "reference": str(args.reference or "tests/reference_test_script.py"),
            "arch": args.arch, "ngf": args.ngf, "size": args.size, "images": args.images,
            "device": args.device or "cpu", "precision": args.precision, "batch_size": args.batch_size,
            "max_abs_diff_to_reference": max_diff(reference_images, work / "ours_eager"),
            "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "torch": torch.__version__, "load_average_after": os.getloadavg()},
            "summary": summary, "runs": runs, "workdir": str(work)}


def reference_test_command(args, inputs: Path, weights: Path, out: Path) -> list[str]:
    """The reference checkout's own test.py on the same weights and images: its `test` model (one generator, train
    mode as there), the single-folder loader without resizing, results under OUT/bench/test_latest/images."""
    checkpoints = weights.parent / "reference_checkpoints"
    (checkpoints / "bench").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, checkpoints / "bench" / "latest_net_G_A.pth")
    return [args.reference_python, "test.py", "--dataroot", str(inputs), "--name", "bench", "--model", "test",
            "--model_suffix", "_A", "--checkpoints_dir", str(checkpoints), "--results_dir", str(out),
            "--dataset_mode", "single", "--preprocess", "none", "--no_flip", "--netG", args.arch, "--ngf",
            str(args.ngf), "--norm", "instance", "--no_dropout", "--num_test", str(args.images)]


def max_diff(reference_images: Path, ours: Path) -> int:
    """Largest per-pixel difference between the reference's *_fake.png and our outputs (0..255)."""
    worst = 0
    for fake in sorted(reference_images.glob("*_fake.png"))[:20]:
        theirs = np.asarray(Image.open(fake), dtype=int)
        mine = np.asarray(Image.open(ours / (fake.name.removesuffix("_fake.png") + ".png")), dtype=int)
        worst = max(worst, int(np.abs(theirs - mine).max()))
    return worst


def bench_forward(args) -> dict:
    from translate.backbones import build_generator
    from translate.inference.compiled import persistent_cache_dir

    persistent_cache_dir()
    torch.manual_seed(0)
    net = build_generator(args.arch, 3, 3, ngf=args.ngf, norm="instance").eval()
    x = torch.randn(1, 3, args.size, args.size)

    def bf16(t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return net(t)

    variants = {"eager": net, "compiled": torch.compile(net, dynamic=False), "bf16_autocast": bf16}
    seconds = {name: [] for name in variants}
    with torch.inference_mode():
        expected = net(x)
        start = time.perf_counter()
        variants["compiled"](x)
        compile_s = time.perf_counter() - start
        diff = {name: round(float((f(x).float() - expected).abs().max()) * 127.5, 3) for name, f in variants.items()}
        for _ in range(args.calls):
            for name, f in variants.items():
                start = time.perf_counter()
                f(x)
                seconds[name].append(time.perf_counter() - start)
    eager = seconds["eager"]
    return {"benchmark": "forward", "arch": args.arch, "ngf": args.ngf, "size": args.size, "calls": args.calls,
            "first_compile_s": round(compile_s, 2), "max_abs_diff_to_eager_in_levels": diff,
            "images_per_s_median": {n: round(1 / statistics.median(t), 3) for n, t in seconds.items()},
            "speedup_vs_eager_pairwise_median": {n: round(statistics.median(e / v for e, v in zip(eager, t)), 3)
                                                 for n, t in seconds.items()},
            "torch": torch.__version__, "threads": torch.get_num_threads(), "load_average_after": os.getloadavg()}


def replot(args) -> int:
    for source in args.json:
        out = args.out if args.out and len(args.json) == 1 else source.with_suffix(".png")
        plot_quality(json.loads(source.read_text())["points"], out, args.imagenet_class, args.title)
        print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("convert", help="translate convert vs the reference's test script")
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--arch", default="resnet_9blocks")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1, help="rounds of all variants; the summary takes medians")
    p.add_argument("--device", help="for both (default cpu)")
    p.add_argument("--precision", default="fp32", help="ours only (the reference has none)")
    p.add_argument("--batch-size", type=int, help="ours only (the reference runs batch 1)")
    p.add_argument("--workdir", help="keep inputs and outputs here (default: a new temporary folder)")
    p.add_argument("--reference", type=Path, metavar="PATH", help="a checkout of pytorch-CycleGAN-and-pix2pix: time "
                   "its own test.py (default: tests/reference_test_script.py, the tests' re-implementation)")
    p.add_argument("--reference-python", default=sys.executable, help="the Python that runs it (needs dominate, wandb)")
    p.add_argument("--json", type=Path, help="also write the result here")
    p = sub.add_parser("forward", help="eager vs compiled vs bf16 forward passes, in turns")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--arch", default="resnet_9blocks")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--json", type=Path, help="also write the result here")
    p = sub.add_parser("quality", help="quality vs training minutes of recipe presets (tools/quality.py)")
    quality.add_arguments(p)
    p = sub.add_parser("serve", help="load test of translate serve on loopback (tools/serve_load.py)")
    serve_load.add_arguments(p)
    p = sub.add_parser("plot", help="redraw the plot of quality JSON files")
    p.add_argument("json", type=Path, nargs="+", help="quality.json files (a 'points' list each)")
    p.add_argument("--out", type=Path, help="the PNG (one JSON only; default: the JSON's name with .png)")
    p.add_argument("--imagenet-class", help="the class whose top-1 rate was scored, for the panel's title")
    p.add_argument("--title", help="a title above the panels")
    args = parser.parse_args(argv)
    if args.command == "plot":
        return replot(args)
    if args.command == "quality":
        return quality.run(args)
    if args.command == "serve":
        return serve_load.run(args)
    result = bench_convert(args) if args.command == "convert" else bench_forward(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
