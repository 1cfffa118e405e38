"""Typed run configuration: `load(recipe.yaml, ["train.max_steps=10", ...])`.

Four sections: `data`, `model` (a model's own Config dataclass, chosen by `model.name`, holding the paper's
defaults), `train` and `eval`. Every key is checked against the dataclasses: an unknown key or a value of the wrong
type is an error that names the key, never silently ignored. The resolved config is what a run saves next to its
results.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from translate import data_root


class ConfigError(ValueError):
    """A recipe or override that does not fit the configuration schema."""


@dataclass
class DataConfig:
    """Where images come from and how they are cropped; defaults are the reference's (286 -> random 256 crop)."""

    root: str = ""
    source: str = ""  # domain adaptation (DANN, DTN): source-domain folder (labeled: ROOT/<class>/<image>)
    # ... and target-domain folder (labels, if any, unused); pix2pix with model.domain_weight or target_gan_weight too
    target: str = ""
    phase: str = "train"
    direction: str = "AtoB"  # AtoB or BtoA: which side of a pair (or which domain) is the input
    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"  # resize_and_crop | crop | scale_width_and_crop | none
    flip: bool = True
    # pix2pix training only: make the input edge map look drawn, e.g. "width,dropout,wobble,remake", "strokes" or
    # "all"; "" = off (the paper). Ops and their strengths: translate/data/sketch.py
    sketch_augment: str = ""
    # the share of training samples that get those ops; the rest keep the dataset's own edges, which is what the
    # model is scored on (1.0: every sample; the ops' own probabilities still apply within it)
    sketch_augment_p: float = 1.0
    batch_size: int = 1
    num_workers: int = 4
    # training: an image file that cannot be read is skipped with one warning naming it, and a replacement drawn
    # from the sample's key (exact resume holds); false = stop with an error naming the file (translate check-data
    # finds such files beforehand). translate/data/skip.py
    skip_unreadable: bool = False


@dataclass
class TrainConfig:
    """The loop's schedule, counted in optimisation steps (never epochs)."""

    max_steps: int = 200_000
    max_minutes: float = 0.0  # > 0: also stop (checkpoint and export) after this much training time, over resumes
    # > 0: size the run in minutes on this machine: max_steps and decay_steps (keeping the recipe's share) are
    # fixed from the speed measured over the first steps, and recorded (translate/training/budget.py)
    budget_minutes: float = 0.0
    decay_steps: int = 100_000  # learning rate constant, then linear to zero over the last decay_steps
    seed: int = 0
    mixed_precision: str = "no"  # no | fp16 | bf16 | auto: bf16 where the hardware has it (training/precision.py)
    channels_last: bool = False
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 2
    log_with: str = "tensorboard"  # tensorboard | wandb | none: where metrics and sample grids are logged (Accelerate)
    # a loss or weight that is NaN or infinite: stop (before anything of it is saved), or rollback: reload the
    # newest checkpoint, halve every lr (kept by later checkpoints) and go on, at most 3 times, then stop. Exact
    # resume across a rollback holds where training is deterministic (CPU): translate/training/divergence.py
    on_nonfinite: str = "stop"


@dataclass
class EvalConfig:
    """Periodic evaluation during training: translate a fixed held-out set, score it, keep the best export."""

    every: int = 0  # steps between evaluations; 0 = off
    metrics: list[str] = dataclasses.field(default_factory=lambda: ["fid"])  # fid | paired | imagenet_class
    phase: str = "val"  # data.root/<phase> (paired) or <phase>A/<phase>B (unpaired), centre-cropped, no flip
    net: str = ""  # exported generator to score; default: G (pix2pix) or G_AB (CycleGAN)
    max_images: int = 200
    imagenet_class: str = ""  # for imagenet_class, e.g. zebra
    best: str = ""  # keep RUN_DIR/export_best by this score, e.g. fid (lower is better) or top1 (higher)
    batch_size: int = 16


@dataclass
class Config:
    data: DataConfig
    model: Any  # the Config dataclass of the model named by model.name
    train: TrainConfig
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load(path: str | Path | None = None, overrides: typing.Sequence[str] = (), preset: str | None = None) -> Config:
    """Read a recipe YAML (or start from defaults), apply a named preset, then dotted `key=value` overrides.

    A recipe may hold `presets: {name: [key=value, ...]}` (e.g. a small CPU version of the paper settings). An item
    `preset=OTHER` stands for OTHER's items at that place, so a variant names only what it changes.
    """
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"recipe not found: {path}")
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file; a recipe is YAML") from None
        raw = _parse_yaml(text, str(path)) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a recipe must be a mapping with sections data/model/train")
    presets = raw.pop("presets", None) or {}
    if preset is not None:
        overrides = [*preset_overrides(presets, preset, path), *overrides]
    for item in overrides:
        _apply_override(raw, item)
    data = raw.get("data")
    if isinstance(data, dict):  # `${data}/horse2zebra`: resolved here, so the saved config holds the real path
        raw["data"] = {key: data_root.expand(value) if key in data_root.PATH_KEYS else value
                       for key, value in data.items()}
    return from_dict(raw)


def preset_overrides(presets: dict, name: str, path, including: tuple[str, ...] = ()) -> list[str]:
    """A preset's overrides with each `preset=OTHER` item replaced by OTHER's, recursively."""
    if name not in presets:
        raise ConfigError(f"{path}: no preset {name!r}; it has {sorted(presets) or 'none'}")
    if name in including:
        raise ConfigError(f"{path}: preset {name!r} includes itself ({' -> '.join((*including, name))})")
    items = []
    for item in presets[name]:
        if isinstance(item, str) and item.startswith("preset="):
            items += preset_overrides(presets, item.removeprefix("preset="), path, (*including, name))
        else:
            items.append(item)
    return items


def from_dict(raw: dict) -> Config:
    from translate.models import MODELS  # models import config; import here to keep the dependency one-way

    unknown = set(raw) - {"data", "model", "train", "eval"}
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; valid: data, model, train, eval")
    for section, values in raw.items():
        if values is not None and not isinstance(values, dict):
            raise ConfigError(f"{section} must be a mapping of keys to values, got {values!r}")
    model_raw = dict(raw.get("model") or {})
    name = model_raw.get("name")
    if name not in MODELS:
        raise ConfigError(f"model.name must be one of {sorted(MODELS)}, got {name!r}")
    config = Config(
        data=_build(DataConfig, raw.get("data") or {}, "data"),
        model=_build(MODELS[name].config, model_raw, "model"),
        train=_build(TrainConfig, raw.get("train") or {}, "train"),
        eval=_build(EvalConfig, raw.get("eval") or {}, "eval"),
    )
    check_ranges(config)
    return config


# Keys whose values must lie in a range, where it applies (a model without `ngf` has no such key).
AT_LEAST = {"train.max_steps": 1, "train.max_minutes": 0, "train.budget_minutes": 0, "train.decay_steps": 0,
            "train.log_every": 1, "train.sample_every": 1, "train.checkpoint_every": 1, "train.keep_checkpoints": 0,
            "data.batch_size": 1, "data.num_workers": 0, "data.load_size": 1, "data.crop_size": 1, "eval.every": 0,
            "eval.max_images": 1, "eval.batch_size": 1, "model.ngf": 1, "model.ndf": 1, "model.n_layers_d": 1,
            "model.pool_size": 0, "model.num_classes": 1, "model.embedding_dim": 1, "model.image_size": 1,
            "model.num_patches": 1, "model.freeze_encoder_steps": 0}
SKETCH_MODELS = ("pix2pix", "crossmatch")  # the models that read sketch | photo pairs
POSITIVE = ("model.lr", "model.nce_t", "model.temperature")
CHOICES = {"train.mixed_precision": ("no", "fp16", "bf16", "auto"), "train.on_nonfinite": ("stop", "rollback"),
           "data.direction": ("AtoB", "BtoA"), "train.log_with": ("tensorboard", "wandb", "none")}


def check_ranges(config: Config) -> None:
    """Values that would only fail later (a division by zero after the data is loaded, untrained weights exported
    with exit code 0) are refused here, naming the key."""
    sections = {"data": config.data, "model": config.model, "train": config.train, "eval": config.eval}

    def value(key):
        section, field_name = key.split(".")
        return getattr(sections[section], field_name, None)

    for key, low in AT_LEAST.items():
        if value(key) is not None and value(key) < low:
            raise ConfigError(f"{key} must be at least {low}, got {value(key)}")
    for key in POSITIVE:
        if value(key) is not None and not value(key) > 0:
            raise ConfigError(f"{key} must be positive, got {value(key)}")
    for key, options in CHOICES.items():
        if value(key) not in options:
            raise ConfigError(f"{key} must be one of {', '.join(options)}, got {value(key)!r}")
    _check_pairs(config)
    _check_sketch_augment(config)
    if config.train.log_with == "wandb" and importlib.util.find_spec("wandb") is None:
        raise ConfigError("train.log_with=wandb needs the wandb package: pip install wandb (or train.log_with=none)")


def _check_pairs(config: Config) -> None:
    """Two keys that are each in range but contradict each other: both named."""
    train, data = config.train, config.data
    if train.decay_steps > train.max_steps:
        raise ConfigError(f"train.decay_steps={train.decay_steps} is more than train.max_steps={train.max_steps}: "
                          "the lr decays to zero over the last decay_steps of the run; set train.decay_steps to at "
                          f"most {train.max_steps} (0: a constant lr)")
    if data.preprocess.endswith("_crop") and data.crop_size > data.load_size:
        raise ConfigError(f"data.crop_size={data.crop_size} is larger than data.load_size={data.load_size}: "
                          f"data.preprocess={data.preprocess} scales images to load_size, then crops")


def _check_sketch_augment(config: Config) -> None:
    from translate.data.sketch import parse_ops

    try:
        ops = parse_ops(config.data.sketch_augment)
    except ValueError as err:
        raise ConfigError(f"data.sketch_augment: {err}") from None
    if not 0 <= config.data.sketch_augment_p <= 1:
        raise ConfigError(f"data.sketch_augment_p is the share of samples augmented, in [0, 1]; "
                          f"got {config.data.sketch_augment_p}")
    if ops and config.model.name not in SKETCH_MODELS:
        raise ConfigError(f"data.sketch_augment applies to the paired edges of {' and '.join(SKETCH_MODELS)} only, "
                          f"not {config.model.name}; leave it empty")


def save(config: Config, path: str | Path) -> None:
    from translate.utils import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def _apply_override(raw: dict, item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[leaf] = _parse_yaml(text, f"override {item!r}") if text.strip() else ""


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's booleans: only true/false. YAML 1.1 also reads no, yes, on and off as booleans,
    which made `train.mixed_precision=no` (the key's own default, a string) a bool and an error."""


_PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_PlainLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


def _parse_yaml(text: str, where: str):
    """YAML as _PlainLoader reads it, any YAML error one ConfigError line naming `where`. A safe loader never
    constructs a tag such as !!python/object/apply (so nothing in a recipe or a run's config.yaml runs), but its
    refusal is a multi-line exception; the line and the tag are what a user needs."""
    try:
        return yaml.load(text, Loader=_PlainLoader)  # a SafeLoader: constructs plain values only
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        tag = re.search(r"constructor for the tag '([^']*)'", problem)
        if tag:
            name = tag.group(1).replace("tag:yaml.org,2002:", "!!", 1)  # as the recipe spells it
            raise ConfigError(f"{where}: {at}unsupported YAML tag {name}; only plain values (numbers, strings, "
                              "lists, mappings) are read") from None
        raise ConfigError(f"{where}: {at}not valid YAML: {problem}") from None


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(where + '.' + k for k in unknown)}; valid: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in values.items()}
    return cls(**kwargs)


def _coerce(kind, value, where: str):
    if dataclasses.is_dataclass(kind):
        return _build(kind, value or {}, where)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        kind = next(k for k in options if k is not type(None))
        origin = typing.get_origin(kind)
    if origin in (list, tuple):
        (item_kind, *_) = typing.get_args(kind) or (Any,)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return origin(_coerce(item_kind, v, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is Any:
        return value
    if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return _finite_float(value, where)
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}")
    return value



FLOAT32_MAX = 3.4028234663852886e38


def _finite_float(value: int | float | str, where: str) -> float:
    """A float key's value (YAML 1.1 reads 2e-4, without a dot, as a string). Networks train in 32-bit floats: a value
    beyond their range (model.lr=1e39) fails deep inside an optimizer step, and an infinite or NaN one only shows up
    later as a diverged run, so both are refused here, naming the key."""
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{where} must be a number, got {value!r}") from None
    except OverflowError:  # an integer too large for any float
        number = math.inf
    if not (math.isfinite(number) and abs(number) <= FLOAT32_MAX):
        raise ConfigError(f"{where} must be a finite number within the 32-bit float range (|x| <= 3.4e38), got {value}")
    return number
