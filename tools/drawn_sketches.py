"""Handbags from sketches people drew: how a sketch -> handbag export does on real hand-drawn sketches (QMUL-Handbag)
beside the dataset's own edges, scored the same way on the same validation photos.

    python tools/split_holdout.py data/edges2handbags runs/handbags_split --count 100
    python tools/drawn_sketches.py split data/qmul_handbags runs/qmul_split          # 300 train / 100 val, by index
    python tools/drawn_sketches.py score runs/hb_cpu_s0/export --split runs/handbags_split --drawn runs/qmul_split \
        --out runs/drawn/cpu_s0 [--before NORMALISER_EXPORT]

`score` translates (edges) the left halves of SPLIT/val, (drawn) DRAWN/val/sketch and (photo_edges)
DRAWN/val/photo_edges, the edge maps of the photos those sketches were drawn from, with `translate convert` at the
model's training scale (with --before, every set first goes through that export, a sketch normaliser), and scores
each set: KID and FID (EfficientNet-Lite0) against the SPLIT/val photos at the model's size, and the share of outputs
whose Lite0 top 5 holds a bag class (purse, mailbag, backpack, wallet); the photos themselves are scored for that
share too, the line a translation can reach. photo_edges separates the two things that differ between the drawings
and the dataset edges: its bags are the drawings' (other bags than the validation photos, framed with more margin),
its lines an edge detector's. Prints and writes OUT/scores.json; OUT/samples.png shows drawn sketches, their
outputs, the photo edges of the same bags, their outputs, dataset edges, their outputs, and the photos of those
edges.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import cut_halves, write_sheet  # noqa: E402  tools/quality.py

from translate.data.folders import list_images  # noqa: E402
from translate.evaluation.api import evaluate  # noqa: E402
from translate.export import read_export_config  # noqa: E402
from translate.utils import write_text_atomic  # noqa: E402

BAGS = "purse,mailbag,backpack,wallet"  # ImageNet 748, 636, 414, 893
VALIDATION = 100  # the last 100 of the 400 sketches, by index
SAMPLES = 8


def split(source: Path, out: Path) -> dict:
    """OUT/{train,val}/{sketch,photo_edges}/N.png as links to SOURCE/train/...: the first 300 for training, the last
    100 (by index) for validation, sketch N and edge map N always on the same side."""
    counts = {}
    for kind in ("sketch", "photo_edges"):
        files = list_images(source / "train" / kind)
        for part, chosen in (("train", files[:-VALIDATION]), ("val", files[-VALIDATION:])):
            folder = out / part / kind
            folder.mkdir(parents=True, exist_ok=True)
            for path in chosen:
                link = folder / path.name
                if not link.exists():
                    link.symlink_to(os.path.relpath(path.resolve(), folder))
            counts[f"{part}/{kind}"] = len(chosen)
    return counts


def convert(model: Path, inputs: Path, outputs: Path, *flags: str) -> None:
    subprocess.run([sys.executable, "-m", "translate", "convert", str(model), str(inputs), str(outputs), *flags,
                    "--overwrite", "--compile", "off", "--workers", "0"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def score(args) -> dict:
    size = read_export_config(args.model)["preprocess"]["crop_size"]
    data = args.out / "data"
    pairs = list_images(args.split / "val")
    cut_halves(pairs, args.split / "val", data / "edges", "left")
    cut_halves(pairs, args.split / "val", data / f"photos_{size}", "right", size)
    photos = data / f"photos_{size}"
    sets = {"edges": data / "edges", "drawn": args.drawn / "val" / "sketch",
            "photo_edges": args.drawn / "val" / "photo_edges"}
    scores = {"photos": {"bag_top5": evaluate("imagenet_class", photos, imagenet_class=BAGS)["top5"]}}
    for name, inputs in sets.items():
        outputs = args.out / name
        convert(args.model, inputs, outputs, *(["--before", str(args.before)] if args.before else []))
        fid = evaluate("fid", outputs, real=photos)
        scores[name] = {"kid": fid["kid_mean"], "fid": fid["fid"],
                        "bag_top5": evaluate("imagenet_class", outputs, imagenet_class=BAGS)["top5"],
                        "n": len(list_images(outputs))}
    scores = {"model": str(args.model), "before": str(args.before) if args.before else None, "size": size, **scores}
    write_text_atomic(args.out / "scores.json", json.dumps(scores, indent=2))
    sample_sheet(args, photos, args.out / "samples.png")
    return scores


def sample_sheet(args, photos: Path, path: Path) -> None:
    drawn = list_images(args.drawn / "val" / "sketch")[:SAMPLES]
    photo_edges = list_images(args.drawn / "val" / "photo_edges")[:SAMPLES]
    edges = list_images(args.out / "data" / "edges")[:SAMPLES]
    write_sheet([drawn, [args.out / "drawn" / p.with_suffix(".png").name for p in drawn],
                 photo_edges, [args.out / "photo_edges" / p.with_suffix(".png").name for p in photo_edges],
                 edges, [args.out / "edges" / p.name for p in edges], [photos / p.name for p in edges]], path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split", help="split the 400 QMUL sketches 300 / 100 by index, as links")
    p.add_argument("source", type=Path, help="the qmul_handbags folder (with train/sketch, train/photo_edges)")
    p.add_argument("out", type=Path)
    p = sub.add_parser("score", help="score an export on dataset edges and on drawn sketches")
    p.add_argument("model", type=Path, help="a sketch -> handbag export")
    p.add_argument("--split", type=Path, required=True, help="the edges2handbags split (SPLIT/val: A|B files)")
    p.add_argument("--drawn", type=Path, required=True, help="the QMUL split (DRAWN/val/sketch, photo_edges)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--before", type=Path, help="an export every sketch goes through first (a sketch normaliser)")
    args = parser.parse_args(argv)
    result = split(args.source, args.out) if args.command == "split" else score(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
