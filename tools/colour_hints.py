"""Colour hints measured: how close a hinted sketch -> handbag export gets to the true photo's colours with 0, 1, 3
and 10 hints taken from that photo, beside exports without hints, on the same validation pairs.

    python tools/colour_hints.py --split runs/handbags_split --out runs/colour \
        --model hints=runs/hb_colour_s0/export --model today=runs/hb_cpu_s0/export

Each validation pair SPLIT/val/*.jpg (edges | photo) is translated through the Python API at the export's training
scale. Hints are drawn as a person would give them, on the sketch at its own size: k patches (translate/data/hints.py,
1..9 px at 256 px) centred on bag pixels of the true photo, each carrying its patch's mean colour, the same patches
for every model (seeded by the pair's index). Scores at the model's output size, against the photo resized alike:

  colour error   mean CIE76 colour difference (Euclidean distance in CIE Lab, kornia) over the bag's pixels, those
                 of the true photo that are not paper-white (some channel below 230)
  perceptual     the LPIPS-form distance on EfficientNet-Lite0 of `translate eval paired` (whole image)

Models without hints are scored with none. Writes OUT/scores.json (and prints the table), OUT/hints.png (sketch,
output without hints, the 10 hints on the sketch, output with them, photo) and OUT/colours.png (sketches, each with
the same three patches in red, blue and mustard, and what the first hinted model makes of them); with --drawn, OUT/
drawn_colours.png shows hand-drawn sketches alike (three patches around the middle of the drawing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from translate.data.folders import list_images  # noqa: E402
from translate.data.hints import sample_hints  # noqa: E402
from translate.evaluation.perceptual import FeatureDistance  # noqa: E402
from translate.inference import Translator  # noqa: E402
from translate.utils import write_text_atomic  # noqa: E402

HINT_COUNTS = (0, 1, 3, 10)
PAPER_WHITE = 230
SHEET_ROWS = 6
COLOURS = {"red": (200, 30, 35), "blue": (30, 70, 200), "mustard": (215, 165, 40)}


def validation_pairs(split: Path) -> list[tuple[Image.Image, Image.Image]]:
    """(sketch, photo) PIL images of SPLIT/val's aligned A|B files."""
    pairs = []
    for path in list_images(split / "val"):
        with Image.open(path) as ab:
            ab = ab.convert("RGB")
            half = ab.width // 2
            pairs.append((ab.crop((0, 0, half, ab.height)), ab.crop((half, 0, 2 * half, ab.height))))
    return pairs


def bag_region(photo: np.ndarray) -> np.ndarray:
    """HxW bool: the photo's pixels that are not paper-white (edges2handbags photos are on white)."""
    return (photo < PAPER_WHITE).any(axis=2)


def hints_from_photo(photo: np.ndarray, count: int, seed: int) -> np.ndarray:
    """An HxWx4 uint8 hint map of `count` patches of `photo` (HxWx3 uint8) centred on its bag pixels."""
    tensor = torch.from_numpy(photo).permute(2, 0, 1).float() / 127.5 - 1
    planes = sample_hints(tensor, np.random.default_rng(seed), count=count,
                          where=torch.from_numpy(bag_region(photo)))
    rgba = np.zeros((*photo.shape[:2], 4), np.uint8)
    mask = planes[3].numpy() > 0
    colour = ((planes[:3].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    rgba[mask] = np.concatenate([colour[mask], np.full((mask.sum(), 1), 255, np.uint8)], axis=1)
    return rgba


def colour_error(output: np.ndarray, photo: np.ndarray) -> float:
    """Mean CIE76 difference over the photo's bag pixels (both HxWx3 uint8)."""
    from kornia.color import rgb_to_lab

    lab = [rgb_to_lab(torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255)[0] for a in (output, photo)]
    distance = (lab[0] - lab[1]).square().sum(0).sqrt()
    mask = torch.from_numpy(bag_region(photo))
    return float(distance[mask].mean()) if mask.any() else float("nan")


def overlay(sketch: Image.Image, hints: np.ndarray) -> Image.Image:
    """The hints painted over the sketch, as a person sees them."""
    out = np.asarray(sketch.convert("RGB")).copy()
    mask = hints[:, :, 3] > 0
    out[mask] = hints[:, :, :3][mask]
    return Image.fromarray(out)


def score(models: dict[str, Translator], pairs, perceptual: FeatureDistance) -> tuple[list[dict], dict]:
    """One row per (model, hint count); the outputs kept for the sheets."""
    rows, kept = [], {}
    for name, translator in models.items():
        counts = HINT_COUNTS if translator.hint_channels else (0,)
        for count in counts:
            errors, distances = [], []
            for index, (sketch, photo) in enumerate(pairs):
                hints = hints_from_photo(np.asarray(photo), count, seed=index) if count else None
                output = np.asarray(translator(sketch, hints=hints) if hints is not None else translator(sketch))
                target = np.asarray(photo.resize(output.shape[1::-1], Image.Resampling.BICUBIC))
                errors.append(colour_error(output, target))
                as_batch = [torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in (output, target)]
                distances.append(float(perceptual(*as_batch)[0]))
                if index < SHEET_ROWS:
                    kept[(name, count, index)] = (output, hints)
            rows.append({"model": name, "hints": count, "colour_error": round(float(np.nanmean(errors)), 3),
                         "perceptual": round(float(np.mean(distances)), 4), "pairs": len(pairs)})
            print(f"{name:>12}  {count:>2} hints  colour error {rows[-1]['colour_error']:6.2f}  "
                  f"perceptual {rows[-1]['perceptual']:.4f}", flush=True)
    return rows, kept


def grid(cells: list[list[Image.Image]], side: int = 128) -> Image.Image:
    sheet = Image.new("RGB", (side * max(map(len, cells)), side * len(cells)), "white")
    for r, row in enumerate(cells):
        for c, image in enumerate(row):
            sheet.paste(image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC), (c * side, r * side))
    return sheet


def in_three_colours(translator: Translator, sketch: Image.Image, places: np.ndarray) -> list[Image.Image]:
    """The hint patches `places` (an HxWx4 map) painted in each of COLOURS over the sketch, each with its output."""
    cells = []
    for colour in COLOURS.values():
        hints = places.copy()
        hints[hints[:, :, 3] > 0, :3] = colour
        cells += [overlay(sketch, hints), Image.fromarray(np.asarray(translator(sketch, hints=hints)))]
    return cells


def colour_sheet(translator: Translator, pairs) -> Image.Image:
    """Each sketch with the same three patches in each of COLOURS, and the outputs."""
    return grid([[sketch, *in_three_colours(translator, sketch, hints_from_photo(np.asarray(photo), 3, seed=index))]
                 for index, (sketch, photo) in enumerate(pairs[:SHEET_ROWS // 2])])


def drawn_hint_places(sketch: Image.Image) -> np.ndarray:
    """An HxWx4 hint map of three 7-px patches inside a drawing, where a person would colour its body: around the
    middle of the bounding box of its ink, a little below the centre (handles are drawn on top)."""
    ink = np.asarray(sketch.convert("L")) < 128
    rows, cols = np.nonzero(ink)
    hints = np.zeros((*ink.shape, 4), np.uint8)
    if not len(rows):
        return hints
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    cy, cx = top + (bottom - top) * 0.6, (left + right) / 2
    for dy, dx in ((0, 0), (0.12, -0.2), (0.12, 0.2)):
        y, x = int(cy + dy * (bottom - top)), int(cx + dx * (right - left))
        hints[y - 3:y + 4, x - 3:x + 4] = 255
    return hints


def drawn_colour_sheet(translator: Translator, sketches: list[Image.Image]) -> Image.Image:
    """Hand-drawn sketches, their outputs without hints, and with the same three patches in each of COLOURS."""
    return grid([[sketch, Image.fromarray(np.asarray(translator(sketch))),
                  *in_three_colours(translator, sketch, drawn_hint_places(sketch))] for sketch in sketches])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", type=Path, required=True, help="a tools/split_holdout.py folder with val/*.jpg")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=EXPORT",
                        help="an export to score (repeat); those reading hints are scored with 0, 1, 3 and 10")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="score only the first N validation pairs")
    parser.add_argument("--drawn", type=Path, metavar="DIR", help="hand-drawn sketches (e.g. a drawn_sketches.py "
                        "split's val/sketch): OUT/drawn_colours.png shows the first few in three hint colours")
    parser.add_argument("--raw", action="store_true", help="also score each hinted model without hint propagation "
                        "(its generator's own output), as NAME-raw")
    args = parser.parse_args(argv)
    models = {}
    for item in args.model:
        name, _, path = item.partition("=")
        models[name] = Translator.from_export(path, device="cpu")
        if args.raw and models[name].hint_channels:
            models[f"{name}-raw"] = Translator.from_export(path, device="cpu", propagate_hints=False)
    pairs = validation_pairs(args.split)[:args.limit]
    rows, kept = score(models, pairs, FeatureDistance())
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "scores.json", json.dumps({"split": str(args.split), "rows": rows}, indent=2))
    hinted = next((n for n, t in models.items() if t.hint_channels), None)
    if hinted:
        cells = [[sketch, Image.fromarray(kept[(hinted, 0, i)][0]), overlay(sketch, kept[(hinted, 10, i)][1]),
                  Image.fromarray(kept[(hinted, 10, i)][0]), photo]
                 for i, (sketch, photo) in enumerate(pairs[:SHEET_ROWS])]
        grid(cells).save(args.out / "hints.png")
        colour_sheet(models[hinted], pairs).save(args.out / "colours.png")
        if args.drawn:
            drawn = [Image.open(path).convert("RGB") for path in list_images(args.drawn)[:SHEET_ROWS // 2 + 1]]
            drawn_colour_sheet(models[hinted], drawn).save(args.out / "drawn_colours.png")
    print(f"wrote {args.out / 'scores.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
