"""`translate check-data RECIPE [key=value ...]`: read every image a run would read, before the run.

A corrupt file otherwise stops training at the step that first draws it (the error names the file), possibly hours
in, and again at the same step after every resume. This decodes each image of the recipe's training folders (and of
the evaluation phase when periodic evaluation is on) in parallel and lists the ones that cannot be used, with the
reason; exit code 1 if any.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from translate import config as config_lib
from translate.catalog import find_recipe
from translate.data.folders import visible_files
from translate.data.images import ImageReadError, is_image_file, load_image
from translate.utils import printable


def add_arguments(parser) -> None:
    parser.add_argument("recipe", help="a shipped recipe's name or a recipe YAML file")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.root=DIR")
    parser.add_argument("--preset", help="a preset named in the recipe's presets section")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="decoding processes (default: the CPU count, at most 8)")


def folders_to_check(cfg) -> list[Path]:
    """The folders a run reads: data.root's phase folders (train, trainA, trainB...), data.source, data.target."""
    phases = [cfg.data.phase] + ([cfg.eval.phase] if cfg.eval.every else [])
    found = []
    if cfg.data.root:
        root = Path(cfg.data.root)
        if not root.is_dir():
            raise FileNotFoundError(f"data.root {root} is not a folder")
        found += sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(tuple(phases)))
    found += [Path(p) for p in (cfg.data.source, cfg.data.target) if p]
    if not found:
        raise ValueError("the recipe names no data folder: set data.root (or data.source and data.target)")
    return found


def problem(path: Path) -> str | None:
    try:
        load_image(path)
    except ImageReadError as error:
        return str(error)
    return None


def run(args) -> int:
    cfg = config_lib.load(find_recipe(args.recipe), args.overrides, preset=args.preset)
    files = sorted(p for folder in folders_to_check(cfg) for p in visible_files(folder) if is_image_file(p))
    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        problems = list(tqdm(pool.map(problem, files), total=len(files), unit="img", file=sys.stderr))
    bad = [(path, reason) for path, reason in zip(files, problems) if reason]
    for path, reason in bad:
        print(printable(f"bad\t{path}\t{reason}"))
    print(f"checked {len(files)} images: {len(bad)} cannot be used", file=sys.stderr)
    return 1 if bad else 0
