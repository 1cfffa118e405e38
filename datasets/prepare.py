#!/usr/bin/env python
"""Put public datasets into the toolkit's folder spec, or make an edges -> photo set out of your own photos.

  python datasets/prepare.py list                                      # the known sets, counts and sources
  python datasets/prepare.py facades                                   # download into $TRANSLATE_DATA/facades
  python datasets/prepare.py horse2zebra --from h2z.zip                # ingest a local copy (zip, tar or folder)
  python datasets/prepare.py edges --photos DIR --out DIR [--method canny|xdog]
  python datasets/prepare.py edges --photos AB_DIR --pairs --method xdog --thickness 3 --val-fraction 1 --out DIR
                                                                       # "(b)" sketches of the photos of a paired set

Every subcommand is one row of SUBCOMMANDS (help, add_arguments, run); a new data source is a new row.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path[1:1] = [str(HERE), str(HERE.parent)]  # the prepare_* modules beside this file; translate/ in a checkout

from prepare_catalog import SOURCES, DatasetSource, count_differences  # noqa: E402
from prepare_digits import COMMANDS as DIGIT_COMMANDS  # noqa: E402
from prepare_edges import FITS, make_edges_dataset  # noqa: E402
from prepare_fetch import download  # noqa: E402
from prepare_ingest import ingest  # noqa: E402

from translate.data.sketch import METHODS  # noqa: E402
from translate.data_root import DEFAULT, VARIABLE, data_root  # noqa: E402

log = logging.getLogger("prepare")

COUNT_NOTE = ("local copies often differ from the release (mirrors drop, add or re-split files, e.g. a "
              "horse2zebra copy with 1,066 / 1,333 training images and no test split, on purpose); "
              "the toolkit works with any counts, so this is only a warning")


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, help="dataset folder to create (default: DATA_ROOT/NAME, where the "
                        f"recipes look; DATA_ROOT is ${VARIABLE}, else ./{DEFAULT})")
    parser.add_argument("--from", dest="source", type=Path, help="ingest a local copy (folder, .zip or .tar.gz) "
                                                                 "instead of downloading")
    parser.add_argument("--download-dir", type=Path, help="where the archive is kept (default: beside --root)")
    parser.add_argument("--overwrite", action="store_true", help="replace splits that already hold images")


def run_dataset(source: DatasetSource, args: argparse.Namespace) -> int:
    args.root = args.root or data_root() / source.name
    if args.source is None and source.url is None:
        print(source.instructions, file=sys.stderr)
        return 1
    if args.source is None:
        folder = args.download_dir or args.root.resolve().parent
        archive = download(source.url, folder / source.url.rsplit("/", 1)[1])
        counts = ingest(archive, args.root, source, args.overwrite)
    else:
        counts = ingest(args.source, args.root, source, args.overwrite)
    differences = count_differences(source, counts)
    if differences:
        unverified = "" if source.verified else " (the expected counts of this set are unverified)"
        log.warning("%s: %s%s; %s", source.name, "; ".join(differences), unverified, COUNT_NOTE)
    print(f"{source.name}: {', '.join(f'{k} {v}' for k, v in counts.items())} images in {args.root}")
    return 0


def add_edges_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", required=True, type=Path, help="folder of photos (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to write (OUT/train, OUT/val)")
    parser.add_argument("--method", choices=METHODS, default="canny")
    parser.add_argument("--size", type=int, default=256, help="side of each half, in pixels (default 256)")
    parser.add_argument("--fit", choices=FITS, default="crop", help="crop: fill the square; pad: keep the whole "
                                                                  "photo on white (product shots)")
    parser.add_argument("--sigma", type=float, default=2.0, help="smoothing in pixels: larger = fewer, longer "
                                                                 "strokes (default 2)")
    parser.add_argument("--low", type=float, default=0.1, help="canny low threshold (default 0.1)")
    parser.add_argument("--high", type=float, default=0.2, help="canny high threshold (default 0.2)")
    parser.add_argument("--thickness", type=int, default=1, help="stroke width in pixels (default 1)")
    parser.add_argument("--pairs", action="store_true", help="PHOTOS holds aligned A|B files: sketch their photo "
                                                             "halves (B), e.g. for (b) sketches of an evaluation set")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of photos for OUT/val (default 0.1; "
                                                                        "1: all, an evaluation set)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")


def run_edges(args: argparse.Namespace) -> int:
    counts = make_edges_dataset(args.photos, args.out, method=args.method, size=args.size, fit=args.fit,
                                val_fraction=args.val_fraction, seed=args.seed, batch_size=args.batch_size,
                                device=args.device, ext=f".{args.format}", sigma=args.sigma, low=args.low,
                                high=args.high, thickness=args.thickness, pairs=args.pairs)
    print(f"edges: train {counts['train']}, val {counts['val']} pairs (edges | photo) in {args.out}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for s in SOURCES.values():
        counts = ", ".join(f"{k} {v:,}" for k, v in s.counts.items())
        print(f"{s.name:24} {s.layout:9} {counts}{'' if s.verified else ' (unverified)'}\n"
              f"{'':24} {s.url or 'manual download: see the instructions'}")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "list": Subcommand("list the known datasets", lambda parser: None, run_list),
    **{name: Subcommand(f"{source.layout}: {source.origin}", add_dataset_arguments,
                        functools.partial(run_dataset, source)) for name, source in SOURCES.items()},
    "edges": Subcommand("make an edges -> photo paired set from a folder of photos", add_edges_arguments,
                        run_edges),
    **{name: Subcommand(*row) for name, row in DIGIT_COMMANDS.items()},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prepare.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in SUBCOMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="prepare: %(message)s", stream=sys.stderr)
    try:
        return SUBCOMMANDS[args.command].run(args)
    except (OSError, ValueError) as error:
        print(f"prepare.py {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
