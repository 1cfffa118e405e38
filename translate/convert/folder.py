"""`translate convert MODEL INPUT_DIR OUTPUT_DIR`: translate every image of a folder tree into a mirrored tree.

Each image is first brought to the model's training scale (--size train, the default: translate.inference.scale),
or kept at its own size (--size keep); either way the net sees it reflect-padded to its size multiple and the
output is cropped back to that size. Inputs are decoded in DataLoader workers and outputs encoded in writer
threads while the net runs, same-size images are batched, large images can be tiled. Nothing is
lost: bad files are listed with the reason in the summary and OUTPUT_DIR/errors.txt, outputs are written atomically
and a rerun skips the ones already there. INPUT_DIR is never written to, not even through a link in OUTPUT_DIR:
every file written goes through translate.convert.safe_paths. Under `accelerate launch` each process converts a
rank-strided share.

Any input mode works (grayscale, RGBA, palette, 16-bit PNG/TIFF, EXIF-rotated); it is converted to the model's
channel count, alpha is carried over to 1- and 3-channel outputs, and outputs are 8-bit. Compared with the
reference's test script on the same weights: identical within 1/255 on images whose sides are multiples of 4. On
other sizes the reference resizes the image to the nearest multiple of 4 (and its output keeps that size); we
reflect-pad to the multiple and crop back, so the output has the input's exact size and no pixel is resampled.

A model trained with colour hints (model.colour_hints) takes them from --hints DIR: INPUT_DIR/x/a.jpg's map is
DIR/x/a.png, an RGBA image of the input's size whose opaque pixels carry the colour (translate/data/hints.py);
inputs without a map are translated without hints. The model's output then takes the hint colours over the regions
they were painted on (translate/inference/hint_propagation.py); --raw-hints keeps the model's own colours.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from translate.convert.io import HALVES, DecodeDataset, keep, output_image, save_atomic
from translate.convert.manifest import (
    ERRORS,
    MANIFEST,
    check_same_settings,
    existing_record,
    one_line,
    write_errors,
    write_manifest,
)
from translate.convert.plan import FORMATS, Job, plan, shard
from translate.convert.safe_paths import OutputFolder
from translate.export import read_export_config
from translate.inference import MODES, PRECISIONS, Translator, group_by_size, prepare_for_inference
from translate.inference.allocator import retain_freed_memory
from translate.inference.chain import Chain
from translate.inference.compiled import COMPILE_MODES
from translate.inference.model import add_model_arguments, load_model, load_model_from_args
from translate.inference.scale import SIZE_HELP, resolve_size
from translate.utils import die_with_parent, distributed_without_gpus, remove_stale_temporaries

TILE_HINT = 512  # the --tile a failed out-of-memory image is told to try


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    parser.add_argument("input_dir", type=Path, help="folder of images, walked recursively; never written to")
    parser.add_argument("output_dir", type=Path, help="where the mirrored tree, manifest.json and errors.txt go")
    parser.add_argument("--mode", choices=MODES, help="eval or train (dropout, per-image statistics); default: "
                        "the model's own (pix2pix exports: train; .pth files: train, as the reference's test.py)")
    parser.add_argument("--batch-size", type=int, help="images per forward pass; default 1 on CPU (fastest "
                        "there), 8 on GPU")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ...; default: the GPU of this process if any")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16/fp16 run under autocast")
    parser.add_argument("--compile", choices=COMPILE_MODES, default="auto",
                        help="torch.compile: auto compiles image sizes that recur (8 or more images) on a GPU, "
                        "where it pays; on: also on a CPU; cached")
    parser.add_argument("--size", default="train", help=SIZE_HELP)
    parser.add_argument("--half", choices=HALVES, help="translate only this half of each image: the A (left) or B "
                        "(right) side of pix2pix's aligned A|B files")
    parser.add_argument("--tile", type=int, help="translate images larger than this in overlapping tiles (pixels)")
    parser.add_argument("--overlap", type=int, default=32, help="overlap between tiles, blended smoothly")
    parser.add_argument("--format", choices=FORMATS, default="png", help="output format; same: the input's")
    parser.add_argument("--workers", type=int, help="decoding processes; default: CPU cores - 1, at most 4")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    parser.add_argument("--gallery", action="store_true", help="also write an HTML gallery (see translate gallery)")
    parser.add_argument("--hints", type=Path, metavar="DIR", help="colour hints for a model trained with them: "
                        "DIR/REL.png (RGBA, the input's size; opaque pixels give the colour) for input REL")
    parser.add_argument("--raw-hints", action="store_true", help="hints reach the model only: their colours are "
                        "not carried over the regions they were painted on afterwards")
    parser.add_argument("--before", type=Path, metavar="EXPORT", help="an export each image goes through first "
                        "(e.g. a sketch normaliser); its outputs are translated by MODEL as if converted again")


def run(args) -> int:
    """Exit code: 0 all converted, 1 some files failed (listed in errors.txt), 2 nothing done (one-line error,
    reported by translate.cli)."""
    return convert(args)


def convert(args) -> int:
    from accelerate import PartialState

    start = time.perf_counter()
    folder = OutputFolder(args.input_dir, args.output_dir)
    model = load_model_from_args(args)
    before = load_model(args.before) if args.before else None
    size = resolve_size(args.size, read_export_config(args.model) if args.model.is_dir() else None)
    second_size = size
    if before is not None:  # images are read for the first net; the second gets its outputs at its own scale
        size = resolve_size(args.size, read_export_config(args.before))
    check_hints(args.hints, model)
    jobs, skipped = plan(args.input_dir, args.output_dir, args.format)
    # before anything is written: the run is refused whole, or every write is known to stay in OUTPUT_DIR
    folder.check_all(written_paths(args, jobs), [job.source for job in jobs])
    if not jobs:
        raise ValueError(f"no image files under {args.input_dir} ({len(skipped)} other files or unreadable folders)")
    settings = {"model": model.describe(args.model), "mode": args.mode or model.inference_mode,
                "size": str(size) if size else "keep", "half": args.half, "tile": args.tile,
                "overlap": args.overlap if args.tile else None, "precision": args.precision,
                **({"before": before.describe(args.before)} if before else {}),
                **({"hints": str(args.hints), "hint_propagation": not args.raw_hints} if args.hints else {})}
    check_same_settings(args.output_dir, settings, args.overwrite)
    state = PartialState(cpu=args.device == "cpu" or distributed_without_gpus())
    device = pick_device(args.device, state)
    retain_freed_memory()  # this process is ours: see translate/inference/allocator.py
    mine = shard(jobs, state.process_index, state.num_processes)  # before looking at outputs: same split for all
    exists = [not args.overwrite and job.target.exists() for job in mine]
    todo = [job for job, e in zip(mine, exists) if not e]
    done = [job for job, e in zip(mine, exists) if e]
    if state.is_main_process:
        folder.check_writable()
        say_size(args.size, size)
        remove_stale_temporaries(args.output_dir)  # half-written outputs of a killed run
        write_manifest(folder, settings, complete=False)
    batch_size = args.batch_size or (1 if device.type == "cpu" else 8)
    translator = Translator(prepare_for_inference(model.net, settings["mode"]), model.size_multiple, device,
                            args.precision, args.tile, args.overlap, batch_size, args.compile,
                            hint_channels=model.hint_channels, propagate_hints=not args.raw_hints)
    first = before or model
    if before is not None:
        translator = Chain(Translator(prepare_for_inference(before.net, before.inference_mode), before.size_multiple,
                                      device, args.precision, args.tile, args.overlap, batch_size, args.compile),
                           translator, model.in_channels, second_size)
    carry_alpha = 4 not in (first.in_channels, model.out_channels)
    loop_start = time.perf_counter()
    with tqdm(total=len(mine), initial=len(done), unit="img", disable=not state.is_main_process) as progress:
        converted, failed = convert_jobs(todo, folder, translator, first.in_channels, size, args.half, carry_alpha,
                                         default_workers() if args.workers is None else args.workers, progress,
                                         args.hints)
    loop_s = time.perf_counter() - loop_start
    existing = [existing_record(job) for job in done]
    results = [{"converted": converted, "existing": existing, "failed": failed, "loop_s": loop_s}]
    if state.num_processes > 1:
        from accelerate.utils import gather_object

        results = gather_object(results)
        state.destroy_process_group()  # left to interpreter exit, gloo sometimes aborts
    if not state.is_main_process:
        return 1 if any(r["failed"] for r in results) else 0
    return finish(args, folder, settings, results, skipped, time.perf_counter() - start)


def check_hints(hints_dir: Path | None, model) -> None:
    """--hints needs a model that reads them and a folder to read them from."""
    if hints_dir is None:
        return
    if not model.hint_channels:
        raise ValueError(f"--hints {hints_dir}: this model reads no colour hints (it was trained without "
                         "model.colour_hints)")
    if not hints_dir.is_dir():
        raise ValueError(f"--hints {hints_dir}: {'not a folder' if hints_dir.exists() else 'does not exist'}")


def say_size(requested: str, size) -> None:
    """Once per run: the scale images are translated at, since outputs then differ in size from the inputs."""
    if requested == "train" and size is not None:
        print(f"resizing each image to the model's training scale ({size}); --size keep translates at the "
              "image's own size", file=sys.stderr)
    elif requested == "train":
        print("the model records no training resize: images are translated at their own size", file=sys.stderr)


def written_paths(args, jobs: list[Job]) -> list[Path]:
    """Every path this run may write: the outputs, manifest.json, errors.txt and, with --gallery, the gallery."""
    paths = [job.target for job in jobs] + [args.output_dir / MANIFEST, args.output_dir / ERRORS]
    if args.gallery:
        from translate.convert.gallery import gallery_paths

        paths += gallery_paths(args.output_dir, [(job.rel, job.out) for job in jobs])
    return paths


def pick_device(requested: str | None, state) -> torch.device:
    """The process's own device by default (accelerate: cuda:<local rank>, else cpu)."""
    if requested is None:
        return state.device
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {requested}: no CUDA device is available here")
    if requested == "cuda":
        return torch.device("cuda", state.local_process_index % torch.cuda.device_count())
    return torch.device(requested)


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def convert_jobs(jobs: list[Job], folder: OutputFolder, translator: Translator, channels: int, size, half,
                 carry_alpha: bool, workers: int, progress, hints_dir: Path | None = None) -> tuple[list[dict],
                                                                                               list[dict]]:
    """Decode (workers) -> batches of one size -> net -> encode (threads); returns (converted, failed) records."""
    converted, failed = [], []
    if not jobs:
        return converted, failed
    loader = DataLoader(DecodeDataset(jobs, channels, size, half, hints_dir), batch_size=None, num_workers=workers,
                        collate_fn=keep, prefetch_factor=4 if workers else None, worker_init_fn=die_with_parent)

    def decoded():
        for item in loader:
            if item.error is None:
                if item.frames > 1:
                    tqdm.write(f"warning: {one_line(jobs[item.index].rel)} has {item.frames} frames (multi-page or "
                               "animated); only the first is converted", file=sys.stderr)
                yield item
            else:
                failed.append({"input": jobs[item.index].rel, "reason": item.error})
                progress.update()

    def collect(item, future) -> None:
        job = jobs[item.index]
        try:
            record = {"input": job.rel, "output": job.out, "size": future.result(),
                      **({"hints": True} if item.hints is not None else {})}
            converted.append({**record, "frames": item.frames} if item.frames > 1 else record)
        except Exception as error:  # a folder made read-only, a full disk: this output fails, the run goes on
            why = error.strerror if isinstance(error, OSError) and error.strerror else error
            failed.append({"input": job.rel, "reason": f"cannot write {job.target}: {why}"})
        progress.update()

    pending: deque = deque()
    with ThreadPoolExecutor(max(2, workers)) as pool:
        for group in group_by_size(decoded(), lambda item: item.image.shape, translator.batch_size):
            try:
                images = [item.image for item in group]
                outputs = translator(images, hints=[item.hints for item in group]) if hints_dir else translator(images)
            except Exception as error:  # e.g. out of memory on a huge image: that image fails, the run goes on
                reason = f"translation failed: {type(error).__name__}: {str(error).strip().splitlines()[0]}"
                if out_of_memory(error):
                    reason += f"; the image is too large for this memory at once: use --tile {TILE_HINT}"
                for item in group:
                    failed.append({"input": jobs[item.index].rel, "reason": reason})
                    progress.update()
                continue
            for item, out in zip(group, outputs):
                alpha = item.alpha if carry_alpha else None
                pending.append((item, pool.submit(write_output, out, alpha, jobs[item.index].target, folder)))
            while pending and (len(pending) > 8 * max(2, workers) or pending[0][1].done()):
                collect(*pending.popleft())
        while pending:
            collect(*pending.popleft())
    return converted, failed


def out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator's RuntimeError."""
    text = str(error)
    return isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)) or "can't allocate memory" in text or \
        "out of memory" in text


def write_output(array, alpha, target: Path, folder: OutputFolder) -> list[int]:
    img = output_image(array, alpha)
    save_atomic(img, target, folder)
    return list(img.size)


def finish(args, folder: OutputFolder, settings: dict, results: list[dict], skipped: list[tuple[Path, str]],
           total_s: float) -> int:
    """Merge every process's records into manifest.json and errors.txt, print the summary; the exit code."""
    converted = [r for res in results for r in res["converted"]]
    existing = [r for res in results for r in res["existing"]]
    failed = sorted((r for res in results for r in res["failed"]), key=lambda r: r["input"])
    skipped = [{"input": p.relative_to(args.input_dir).as_posix(), "reason": reason} for p, reason in skipped]
    loop_s = max(res["loop_s"] for res in results)
    timing = {"loop_s": round(loop_s, 3), "total_s": round(total_s, 3),
              "images_per_s_loop": round(len(converted) / loop_s, 3) if converted else None,
              "images_per_s_total": round(len(converted) / total_s, 3) if converted else None,
              "processes": len(results)}
    images = sorted(converted + existing, key=lambda r: r["input"])
    write_errors(folder, failed, skipped)  # before the manifest says complete: a crash between leaves it incomplete
    write_manifest(folder, settings, complete=True, images=images, failed=failed, skipped=skipped, timing=timing)
    rate = f"{timing['images_per_s_loop']:.2f} images/s over the loop, " if converted else ""
    print(f"converted {len(converted)}, skipped {len(existing) + len(skipped)} ({len(existing)} already done, "
          f"{len(skipped)} not images or unreadable), failed {len(failed)}; {rate}{total_s:.1f} s in all")
    for r in failed[:10]:
        print(f"  failed: {one_line(r['input'])}: {one_line(r['reason'])}")
    several = sum("frames" in r for r in converted)
    if several:
        print(f"  {several} inputs have several frames (multi-page TIFF, animated WebP/PNG): only the first of each "
              "was converted; manifest.json gives each one's frame count")
    if failed or skipped:
        print(f"  the full list is in {args.output_dir / ERRORS}")
    if args.gallery:
        from translate.convert.gallery import build_gallery

        print(f"gallery: {build_gallery(args.input_dir, args.output_dir)}")
    return 1 if failed else 0
