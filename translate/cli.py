"""Thin subcommands; each parses its flags and hands over to the module that owns the work."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="translate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from a recipe YAML")
    p.add_argument("recipe", help="recipe YAML (see recipes/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=10 data.root=DIR")
    p.add_argument("--run-dir", help="run folder (default: runs/<recipe name>)")
    p.add_argument("--preset", help="a preset named in the recipe's presets section, e.g. cpu")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in the run folder")

    p = sub.add_parser("demo", help="train a tiny pix2pix on generated shapes, then translate held-out sketches")
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--steps", type=int, default=300)

    args, extra = parser.parse_known_args(argv)
    if args.command == "train":  # overrides may also follow the options: `train R.yaml --preset cpu a.b=1`
        args.overrides += [item for item in extra if "=" in item and not item.startswith("-")]
        extra = [item for item in extra if item not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "demo":
            from translate.demo import run_demo

            run_demo(Path(args.run_dir), steps=args.steps)
            return 0
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"translate {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 1


def _train(args) -> int:
    from translate import config
    from translate.train import train

    cfg = config.load(args.recipe, args.overrides, preset=args.preset)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.recipe).stem
    export_dir = train(cfg, run_dir, resume=args.resume)
    print(f"export: {export_dir}")
    return 0
