"""translate: image-to-image translation. Train pix2pix, CycleGAN, CUT or a domain-adaptation model from a recipe,
then translate folders of images, serve a drawing studio in the browser, and score the results.

  translate train horse2zebra --preset cpu        train a shipped recipe (translate recipes lists them)
  translate convert runs/horse2zebra/export photos/ zebras/
  translate serve runs/horse2zebra/export         the studio on http://127.0.0.1:7860
  translate pretrained horse2zebra                the reference's published weights, as an export

Each command's --help says more.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from pathlib import Path

# Subcommands owned by a module with add_arguments(parser) and run(args) -> int. A module is imported only when its
# command is chosen (its flags are needed then), so that `translate --help` does not load torch.
COMMANDS = {
    "convert": ("translate.convert.folder", "translate a folder tree of images with a trained generator"),
    "export": ("translate.inference.portable", "write a generator as ONNX or TorchScript, checked against eager"),
    "gallery": ("translate.convert.gallery", "an HTML page of input | output pairs for a converted folder"),
    "serve": ("translate.serve.command", "the web studio: draw or drop images, see them translated (HTTP API too)"),
    "check-data": ("translate.data.check", "decode every image a recipe would train on; list the unusable ones"),
    "recipes": ("translate.catalog", "list the shipped recipes and their presets"),
    "pretrained": ("translate.pretrained:pretrained", "download a published reference model as an export folder"),
    "import": ("translate.pretrained:import", "make a reference .pth generator file into an export folder"),
}
EVAL_COMMANDS = {
    "fid": ("translate.evaluation.fid", "FID and KID between two folders (offline EfficientNet-Lite0 features)"),
    "paired": ("translate.evaluation.paired", "PSNR, SSIM, L1 and perceptual distance of paired folders"),
    "imagenet-class": ("translate.evaluation.imagenet_class", "ImageNet class probability / top-1 / top-5 rate"),
    "retrieval": ("translate.evaluation.retrieval", "Recall@K, mAP, CMC of class or instance retrieval"),
    "classify": ("translate.evaluation.classify", "accuracy, per-class accuracy, confusion of a labeled folder"),
}


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in every flag's help; descriptions keep their line breaks (the examples above)."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser([word for word in argv if not word.startswith("-")])
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":  # overrides may also follow the options: `train R.yaml --preset cpu a.b=1`
        args.overrides += [item for item in extra if "=" in item and not item.startswith("-")]
        extra = [item for item in extra if item not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    name = " ".join(part for part in (args.command, getattr(args, "metric", None)) if part)
    try:
        if hasattr(args, "run"):
            return args.run(args)
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


def build_parser(words: list[str]) -> argparse.ArgumentParser:
    """The parser, with the flags of the command that `words` (the command line without options) chooses."""
    from translate import __version__

    parser = argparse.ArgumentParser(prog="translate", description=__doc__, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"translate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a recipe (a shipped name or a YAML file)",
                       description="train a model from a recipe; writes RUN_DIR/config.yaml, metrics, samples, "
                       "checkpoints and RUN_DIR/export", formatter_class=Formatter)
    p.add_argument("recipe", help="a shipped recipe's name (translate recipes) or a recipe YAML file")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=10 data.root=DIR")
    p.add_argument("--run-dir", help="run folder (default: runs/<recipe name>)")
    p.add_argument("--preset", help="a preset named in the recipe's presets section, e.g. cpu")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in the run folder")

    p = sub.add_parser("demo", help="train a tiny pix2pix on generated shapes, then translate held-out sketches",
                       description="train a tiny pix2pix on generated shapes (about a minute on a CPU), then "
                       "translate held-out sketches into RUN_DIR/demo_result.png", formatter_class=Formatter)
    p.add_argument("--run-dir", default="runs/demo", help="where the run and its result go")
    p.add_argument("--steps", type=int, default=300, help="training steps")

    for name, (module, help_text) in COMMANDS.items():
        _add_module_command(sub, name, module, help_text, chosen=words[:1] == [name])
    evaluate = sub.add_parser("eval", help="score images or a model; prints one JSON object on stdout",
                              formatter_class=Formatter)
    eval_sub = evaluate.add_subparsers(dest="metric", required=True, metavar="METRIC")
    for name, (module, help_text) in EVAL_COMMANDS.items():
        _add_module_command(eval_sub, name, module, help_text, chosen=words[:2] == ["eval", name])

    return parser


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
    from translate.catalog import find_recipe
    from translate.training.loop import train

    recipe = find_recipe(args.recipe)
    cfg = config.load(recipe, args.overrides, preset=args.preset)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / recipe.stem
    export_dir = train(cfg, run_dir, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch / torchrun every rank returns here
        print(f"export: {export_dir}")
    return 0


def _add_module_command(sub, name: str, module: str, help_text: str, chosen: bool) -> None:
    """A subcommand whose flags come from `module` (`module:prefix` for add_<prefix>_arguments / run_<prefix>);
    the module is imported only when the command was chosen."""
    parser = sub.add_parser(name, help=help_text, description=help_text, formatter_class=Formatter)
    if not chosen:
        return
    module, _, prefix = module.partition(":")
    owner = importlib.import_module(module)
    getattr(owner, f"add_{prefix}_arguments" if prefix else "add_arguments")(parser)
    parser.set_defaults(run=getattr(owner, f"run_{prefix}" if prefix else "run"))
