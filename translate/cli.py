"""Thin subcommands; each parses its flags and hands over to the module that owns the work."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from pathlib import Path

# Subcommands owned by a module with add_arguments(parser) and run(args) -> int, imported only when chosen so that
# `translate --help` stays fast.
COMMANDS = {
    "convert": ("translate.convert.folder", "translate a folder tree of images with a trained generator"),
    "export": ("translate.inference.portable", "write a generator as ONNX or TorchScript, checked against eager"),
    "gallery": ("translate.convert.gallery", "an HTML page of input | output pairs for a converted folder"),
    "serve": ("translate.serve.command", "the web studio: draw or drop images, see them translated (HTTP API too)"),
    "check-data": ("translate.data.check", "decode every image a recipe would train on; list the unusable ones"),
}
EVAL_COMMANDS = {
    "fid": ("translate.evaluation.fid", "FID and KID between two folders (offline EfficientNet-Lite0 features)"),
    "paired": ("translate.evaluation.paired", "PSNR, SSIM, L1 and perceptual distance of paired folders"),
    "imagenet-class": ("translate.evaluation.imagenet_class", "ImageNet class probability / top-1 / top-5 rate"),
    "retrieval": ("translate.evaluation.retrieval", "Recall@K, mAP, CMC of class or instance retrieval"),
    "classify": ("translate.evaluation.classify", "accuracy, per-class accuracy, confusion of a labeled folder"),
}


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

    for name, (module, help_text) in COMMANDS.items():
        _add_module_command(sub, name, module, help_text)
    evaluate = sub.add_parser("eval", help="score images or a model; prints one JSON object on stdout")
    eval_sub = evaluate.add_subparsers(dest="metric", required=True)
    for name, (module, help_text) in EVAL_COMMANDS.items():
        _add_module_command(eval_sub, name, module, help_text)

    args, extra = parser.parse_known_args(argv)
    if args.command == "train":  # overrides may also follow the options: `train R.yaml --preset cpu a.b=1`
        args.overrides += [item for item in extra if "=" in item and not item.startswith("-")]
        extra = [item for item in extra if item not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    name = " ".join(part for part in (args.command, getattr(args, "metric", None)) if part)
    try:
        if hasattr(args, "module"):
            return importlib.import_module(args.module).run(args)
        if args.command == "train":
            return _train(args)
        from translate.demo import run_demo

        run_demo(Path(args.run_dir), steps=args.steps)
        return 0
    except Exception as error:
        if not isinstance(error, expected_errors()):
            raise
        print(f"translate {name}: error: {describe(error)}", file=sys.stderr)
        return 2


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the input, the request or the machine is wrong, not the program: every command reports them
    in one line with exit code 2 (a missing or damaged file, a bad option value, a full disk, an unusable
    checkpoint, a run that diverged). Anything else is a bug and keeps its traceback. Imported here, when an error
    happened, so that `translate --help` does not load torch."""
    from safetensors import SafetensorError

    from translate.training.checkpoints import CheckpointError

    return OSError, ValueError, KeyError, SafetensorError, CheckpointError, FloatingPointError


def describe(error: BaseException) -> str:
    """One line for an expected error: its message (a KeyError's without quotes), a full disk called so."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"disk full: {error.filename or error}; free space and run again (finished outputs are kept)"
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
        return lines[-1].split(": ", 1)[-1]  # a worker's error arrives as its traceback: its last line is the error
    return lines[0] if lines else type(error).__name__


def _train(args) -> int:
    from translate import config
    from translate.training.loop import train

    cfg = config.load(args.recipe, args.overrides, preset=args.preset)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.recipe).stem
    export_dir = train(cfg, run_dir, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch / torchrun every rank returns here
        print(f"export: {export_dir}")
    return 0


def _add_module_command(sub, name: str, module: str, help_text: str) -> None:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    importlib.import_module(module).add_arguments(parser)
    parser.set_defaults(module=module)
