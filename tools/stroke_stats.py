"""How sketches are built, per image at 256 px: the statistics the `strokes` sketch augmentation is modelled on.

    python tools/stroke_stats.py runs/qmul_split/train/sketch                        # hand-drawn sketches
    python tools/stroke_stats.py runs/handbags_split/train --left                    # dataset edges (A|B files)
    python tools/stroke_stats.py runs/handbags_split/train --left --restroke --sheet strokes.png  # redrawn by the op

Ink is what is darker than mid-grey; lines are its one-pixel skeleton (translate.data.strokes.thin). Per image:
ink share; line length (skeleton pixels); pieces (8-connected components of the lines) and specks (pieces under 12
px); stroke ends (line pixels with one neighbour) and branch points (crossing number >= 3). Prints the means over
the images (at most --limit, first by name) as JSON. --restroke redraws every sketch by the strokes op first (seeded
by its index); --sheet writes the first eight, before and after, as one image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from translate.data.folders import list_images  # noqa: E402
from translate.data.strokes import SPECK, branch_points, components, restroke, thin  # noqa: E402

SIDE = 256
SHEET = 8


def load(path: Path, left: bool) -> torch.Tensor:
    """A sketch as (1, SIDE, SIDE) in [-1, 1]; with `left`, the left half of an A|B pair."""
    image = Image.open(path).convert("L")
    if left:
        image = image.crop((0, 0, image.width // 2, image.height))
    pixels = torch.from_numpy(np.asarray(image.resize((SIDE, SIDE), Image.BILINEAR), dtype=np.float32))
    return (pixels / 127.5 - 1)[None]


def statistics(sketch: torch.Tensor) -> dict[str, float]:
    """The module docstring's statistics of one (1, H, W) sketch in [-1, 1]."""
    ink = sketch[None] < 0
    lines = thin(ink)
    labels, count = components(lines.numpy())
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    neighbours = F.conv2d(lines.float(), torch.ones(1, 1, 3, 3), padding=1) - lines.float()
    return {"ink_share": ink.float().mean().item(), "line_px": int(lines.sum()), "pieces": count,
            "specks": int((sizes < SPECK).sum()), "stroke_ends": int((lines & (neighbours == 1)).sum()),
            "branch_points": int(branch_points(lines).sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--left", action="store_true", help="A|B pair files: the sketch is the left half")
    parser.add_argument("--restroke", action="store_true", help="redraw each sketch by the strokes op first")
    parser.add_argument("--sheet", type=Path, help="write the first eight sketches (and redrawn ones) here")
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args(argv)
    rows, shown = [], []
    for index, path in enumerate(list_images(args.folder)[:args.limit]):
        sketch = load(path, args.left)
        drawn = restroke(sketch[None], torch.Generator().manual_seed(index))[0] if args.restroke else sketch
        rows.append(statistics(drawn))
        if len(shown) < SHEET:
            shown.append(torch.cat([sketch, drawn], dim=-2) if args.restroke else sketch)
    if args.sheet:
        sheet = ((torch.cat(shown, dim=-1)[0] + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        Image.fromarray(sheet).save(args.sheet)
    means = {key: round(float(np.mean([row[key] for row in rows])), 4) for key in rows[0]}
    print(json.dumps({"folder": str(args.folder), "restroke": args.restroke, "images": len(rows), **means}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
