"""Write docs/configuration.md, the reference of every configuration key, from the config dataclasses themselves.

    python tools/config_reference.py           # (re)write docs/configuration.md
    python tools/config_reference.py --check   # exit 1 if docs/configuration.md is not what this would write

Sections `data`, `train` and `eval` come from translate/config.py; the `model` section is the Config dataclass of
each registered model (translate.models.MODELS), nested dataclasses (model.tricks) expanded into dotted keys. Each
key's description is the comment written beside its field in the source (on the same line, or the comment lines
directly above it), read with tokenize, so the reference cannot drift from the code: tests/test_docs.py fails when
the file is stale.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import json
import sys
import textwrap
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from translate import config as config_lib  # noqa: E402
from translate.models import MODELS  # noqa: E402

OUTPUT = REPO / "docs" / "configuration.md"

# Descriptions for keys whose field has no comment in the source yet. A comment written beside the field replaces
# the entry here (the source wins); model.* entries apply to every model that has the key.
FALLBACK = {
    "data.root": "dataset folder (paired: ROOT/<phase>/; unpaired: ROOT/<phase>A, ROOT/<phase>B); recipes use "
                 "${data}/NAME, the data root (TRANSLATE_DATA, default ./data)",
    "data.phase": "the subfolder(s) to train on: train, val, test ...",
    "data.load_size": "images are resized to this side before cropping",
    "data.crop_size": "the random crop the network trains on",
    "data.flip": "random horizontal flips",
    "data.batch_size": "images per step, per process",
    "data.num_workers": "decoding processes per training process (capped at the CPUs this process may use)",
    "train.max_steps": "optimisation steps of the run",
    "train.seed": "seeds weights, data order and augmentation: the same seed and step give the same batch",
    "train.channels_last": "NHWC memory format for images and networks",
    "train.log_every": "steps between lines of metrics.jsonl and TensorBoard",
    "train.sample_every": "steps between sample grids in samples/",
    "train.checkpoint_every": "steps between checkpoints (full state for --resume)",
    "train.keep_checkpoints": "how many of the newest checkpoints are kept",
    "eval.max_images": "held-out images scored at each evaluation",
    "eval.batch_size": "images per forward pass during evaluation",
    "model.name": "the model: one of the model sections on this page",
    "model.generator": "generator architecture, e.g. resnet_9blocks, resnet_6blocks, unet_256, unet_128, unet_lite1",
    "model.ngf": "generator width (filters in its first layer)",
    "model.ndf": "discriminator width (filters in its first layer)",
    "model.n_layers_d": "PatchGAN depth (3: the 70x70 PatchGAN)",
    "model.norm": "normalisation layers: batch, instance or none",
    "model.dropout": "dropout in the generator",
    "model.discriminator": "patch (PatchGAN), pixel (PixelGAN) or projected (frozen Lite1 features + small heads)",
    "model.spectral_norm": "spectral normalisation in the discriminator",
    "model.minibatch_std": "a minibatch standard deviation channel in the discriminator",
    "model.init_type": "weight initialisation: normal, xavier, kaiming or orthogonal",
    "model.init_gain": "scale of the initialisation",
    "model.gan_mode": "adversarial loss: vanilla, lsgan, hinge or wgangp",
    "model.lr": "learning rate",
    "model.beta1": "Adam beta1",
    "model.pool_size": "image pool of earlier fakes shown to the discriminators (0: none)",
    "model.lambda_l1": "weight of the L1 loss to the target",
    "model.lambda_gan": "weight of the adversarial loss",
    "model.in_channels": "input image channels",
    "model.out_channels": "output image channels",
    "model.channels": "image channels",
    "model.channels_a": "channels of domain A images",
    "model.channels_b": "channels of domain B images",
    "model.perceptual_encoder": "the frozen network of the perceptual loss (never efficientnet_lite0, the judge)",
    "model.embedding_dim": "width of the embedding",
    "model.image_size": "the encoder's input side",
    "model.hidden": "width of the hidden layer of the head",
    "model.num_classes": "number of classes",
    "model.classes": "label order; empty: the sorted class folders of the data",
    "model.optimizer": "adam or sgd",
    "model.momentum": "SGD momentum",
    "model.weight_decay": "weight decay",
    "model.ema_decay": "> 0: export an exponential moving average of the weights",
    "model.domain_hidden": "width of the domain classifier's hidden layers",
    "model.domain_layers": "hidden layers of the domain classifier",
    "model.grl_gamma": "gamma of the gradient reversal schedule lambda_p = 2 / (1 + exp(-gamma p)) - 1",
    "model.lr_alpha": "alpha of the DANN lr schedule",
    "model.lr_beta": "beta of the DANN lr schedule",
    "model.bn_per_domain": "separate batch-norm statistics per domain",
    "model.pseudo_weight": "weight of a pseudo-label loss on confident target samples (0: off)",
    "model.pseudo_threshold": "confidence above which a target sample gets a pseudo-label",
}


def field_comments(cls) -> dict[str, str]:
    """field name -> the comment beside it in `cls`'s own source (trailing, or the comment block just above)."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[int, str] = {}  # line number (1-based) -> comment text
    own_line: set[int] = set()  # lines that hold nothing but a comment
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            comments[row] = token.string.lstrip("#").strip()
            if not lines[row - 1][:col].strip():
                own_line.add(row)
    names = {f.name for f in dataclasses.fields(cls)}
    found = {}
    for row, line in enumerate(lines, 1):
        stripped = line.strip()
        name = stripped.split(":", 1)[0].strip()
        if ":" not in stripped or name not in names or not line.startswith("    ") or line.startswith("     "):
            continue
        above, r = [], row - 1
        while r in own_line:
            above.insert(0, comments[r])
            r -= 1
        parts = [*above, *([comments[row]] if row in comments and row not in own_line else [])]
        found[name] = " ".join(parts)
    return found


def declared_in(cls, name: str):
    """The class in cls's MRO whose own body declares field `name` last (a subclass redeclaring a default wins)."""
    for klass in cls.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            return klass
    return cls


def description(cls, name: str) -> str:
    """The comment beside the field where it is declared, else where a base class declares it."""
    for klass in cls.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            text = field_comments(klass).get(name, "")
            if text:
                return text
    return ""


def described(key: str, text: str) -> str:
    """The source comment; where there is none, FALLBACK's entry for the key."""
    return text or FALLBACK.get(key, "")


def render_default(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_default(v) for v in value) + "]"
    return repr(value)


def rows(cls, prefix: str) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) of every field of `cls`, nested dataclasses expanded."""
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        key = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(default):
            out += rows(type(default), key)
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        shown = "(required)" if default is dataclasses.MISSING else render_default(default)
        out.append((key, kind, shown, described(key, description(cls, f.name))))
    return out


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(entries: list[tuple[str, str, str, str]]) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, kind, default, text in entries:
        lines.append(f"| `{key}` | `{cell(kind)}` | `{cell(default)}` | {cell(text)} |")
    return lines


def source_path(cls) -> str:
    return Path(inspect.getsourcefile(cls)).resolve().relative_to(REPO).as_posix()


def docstring(cls) -> str:
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(cls.__name__ + "("):  # dataclass's generated signature: no real docstring
        return ""
    return " ".join(doc.split())


def generate() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by tools/config_reference.py from the config dataclasses; do not edit by hand. -->",
        "",
        "Every key a recipe, a preset or a `key=value` override can set, with its type, its default and the comment "
        "beside it in the source. Keys are checked: an unknown key or a value of the wrong type is an error that names "
        "the key. Set them in a recipe's sections or on the command line:",
        "",
        "```bash",
        "translate train recipes/horse2zebra.yaml train.max_steps=1000 data.batch_size=4 model.tricks.ema_decay=0.995",
        "```",
        "",
        "The sections are `data`, `model`, `train` and `eval`. The `model` section is the Config dataclass of the "
        "model "
        "that `model.name` chooses, holding that paper's defaults; each model's keys are listed below.",
        "",
        "Regenerate this page with `python tools/config_reference.py` after changing a config dataclass.",
        "",
    ]
    for section, cls in (("data", config_lib.DataConfig), ("train", config_lib.TrainConfig),
                         ("eval", config_lib.EvalConfig)):
        out += [f"## `{section}`", "", f"`{cls.__name__}` in {source_path(cls)}. {docstring(cls)}".rstrip(), ""]
        out += table(rows(cls, section)) + [""]
    out += ["## `model`", "", "One subsection per registered model (`model.name`)."
            " Models built on the shared GAN options (`GanOptions` and `GanTricks` in translate/models/adversarial.py)"
            " list those keys too, with the model's own defaults.", ""]
    for name, entry in MODELS.items():
        cls = entry.config
        out += [f"### `model.name: {name}`", "", f"`{cls.__name__}` in {source_path(cls)}. {docstring(cls)}".rstrip(),
                ""]
        out += table(rows(cls, "model")) + [""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with docs/configuration.md instead of writing")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python tools/config_reference.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
