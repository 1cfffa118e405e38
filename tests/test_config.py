from pathlib import Path

import pytest
import yaml

from translate import config
from translate.models.cyclegan import CycleGANConfig
from translate.models.pix2pix import Pix2PixConfig


def test_model_defaults_are_the_papers():
    p = config.load(None, ["model.name=pix2pix"]).model
    assert isinstance(p, Pix2PixConfig)
    assert (p.generator, p.discriminator, p.norm, p.dropout, p.gan_mode, p.lambda_l1) == (
        "unet_256", "patch", "batch", True, "vanilla", 100.0)
    c = config.load(None, ["model.name=cyclegan"]).model
    assert isinstance(c, CycleGANConfig)
    assert (c.generator, c.norm, c.gan_mode, c.lambda_a, c.lambda_identity, c.pool_size) == (
        "resnet_9blocks", "instance", "lsgan", 10.0, 0.5, 50)
    assert (c.lr, c.beta1) == (2e-4, 0.5)


def test_overrides_are_typed_and_nested(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: cyclegan, ngf: 32}\ntrain: {max_steps: 100}\n")
    cfg = config.load(recipe, ["train.max_steps=10", "model.tricks.ema_decay=0.999", "model.lambda_a=5",
                               "data.direction=BtoA", "data.flip=false"])
    assert cfg.train.max_steps == 10 and cfg.model.ngf == 32
    assert cfg.model.tricks.ema_decay == 0.999
    assert cfg.model.lambda_a == 5.0 and isinstance(cfg.model.lambda_a, float)
    assert cfg.data.direction == "BtoA" and cfg.data.flip is False


@pytest.mark.parametrize("override, message", [
    ("train.max_step=10", "train.max_step"),
    ("model.tricks.nope=1", "model.tricks.nope"),
    ("bogus.key=1", "bogus"),
    ("train.max_steps=ten", "train.max_steps must be int"),
    ("train.max_steps=1.5", "train.max_steps must be int"),
    ("data.flip=3", "data.flip must be bool"),
    ("model.name=stylegan", "model.name must be one of"),
    ("novalue", "must look like"),
    ("train.checkpoint_every=0", "train.checkpoint_every must be at least 1, got 0"),
    ("train.log_every=0", "train.log_every must be at least 1"),
    ("train.max_steps=-5", "train.max_steps must be at least 1, got -5"),
    ("model.ngf=0", "model.ngf must be at least 1"),
    ("model.lr=0", "model.lr must be positive"),
    ("model.lr=abc", "model.lr must be a number"),
    ("train.mixed_precision=fp8", "train.mixed_precision must be one of no, fp16, bf16"),
    ("data.direction=AB", "data.direction must be one of AtoB, BtoA"),
    ("train=5", "train must be a mapping"),
])
def test_bad_keys_and_values_are_errors(override, message):
    base = [] if override.startswith("model.name") else ["model.name=pix2pix"]
    with pytest.raises(config.ConfigError, match=message.replace(".", r"\.")):
        config.load(None, [*base, override])


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix, lr: 2e-4}\n")  # YAML 1.1 reads 2e-4 as a string
    assert config.load(recipe).model.lr == 2e-4
    assert config.load(None, ["model.name=pix2pix", "model.lr=1e-3"]).model.lr == 1e-3


def test_presets_apply_before_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix}\npresets:\n  cpu: [model.ngf=8, train.max_steps=7]\n")
    cfg = config.load(recipe, ["train.max_steps=3"], preset="cpu")
    assert cfg.model.ngf == 8 and cfg.train.max_steps == 3
    with pytest.raises(config.ConfigError, match="no preset 'gpu'"):
        config.load(recipe, preset="gpu")


def test_missing_recipe_names_the_path(tmp_path):
    with pytest.raises(config.ConfigError, match="nothere.yaml"):
        config.load(tmp_path / "nothere.yaml")


def test_save_then_load_round_trips(tmp_path):
    cfg = config.load(None, ["model.name=cyclegan", "model.tricks.diffaugment=color,translation"])
    config.save(cfg, tmp_path / "config.yaml")
    assert config.load(tmp_path / "config.yaml") == cfg


def test_cli_accepts_overrides_before_and_after_options(tmp_path, monkeypatch):
    import translate.training.loop
    from translate import cli

    seen = {}
    monkeypatch.setattr(translate.training.loop, "train",
                        lambda cfg, run_dir, resume: seen.update(cfg=cfg, run=run_dir))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix}\npresets:\n  cpu: [model.ngf=8]\n")
    assert cli.main(["train", str(recipe), "train.seed=3", "--preset", "cpu", "train.max_steps=5",
                     "--run-dir", str(tmp_path / "run")]) == 0
    assert (seen["cfg"].train.seed, seen["cfg"].train.max_steps, seen["cfg"].model.ngf) == (3, 5, 8)
    with pytest.raises(SystemExit):
        cli.main(["train", str(recipe), "--bogus"])


@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_recipe_and_preset_loads(recipe):
    raw = yaml.safe_load(recipe.read_text())
    for preset in [None, *(raw.get("presets") or {})]:
        cfg = config.load(recipe, preset=preset)
        assert cfg.model.name == raw["model"]["name"]
