from pathlib import Path

import pytest
import yaml

from translate import config
from translate.models.cyclegan import CycleGANConfig
from translate.models.pix2pix import Pix2PixConfig

# The reference implementation, junyanz/pytorch-CycleGAN-and-pix2pix: options/base_options.py (B),
# options/train_options.py (T), models/pix2pix_model.py (P) and models/cycle_gan_model.py (C), which set the per-model
# defaults in modify_commandline_options; and the papers: pix2pix (Isola et al. 2017), CycleGAN (Zhu et al. 2017).
PIX2PIX_REFERENCE = [
    ("generator", "unet_256", "P: netG='unet_256'; paper sec. 3.2.1, the U-Net"),
    ("discriminator", "patch", "B: netD='basic', the 70x70 PatchGAN (paper sec. 3.2.2)"),
    ("n_layers_d", 3, "B: n_layers_D=3 (70x70 receptive field)"),
    ("norm", "batch", "P: norm='batch'; paper sec. 3.3, batch norm with batch size 1"),
    ("dropout", True, "B: no_dropout=False; paper sec. 3.1, dropout is G's only noise"),
    ("gan_mode", "vanilla", "P: gan_mode='vanilla', the cGAN loss of eq. 1"),
    ("lambda_l1", 100.0, "P: lambda_L1=100.0"),
    ("inference_mode", "train", "paper sec. 3.3: dropout and batch statistics at test time too"),
    ("ngf", 64, "B: ngf=64"), ("ndf", 64, "B: ndf=64"),
    ("init_type", "normal", "B: init_type='normal'"), ("init_gain", 0.02, "B: init_gain=0.02"),
    ("lr", 2e-4, "T: lr=0.0002; paper sec. 3.3"), ("beta1", 0.5, "T: beta1=0.5; paper sec. 3.3"),
]
CYCLEGAN_REFERENCE = [
    ("generator", "resnet_9blocks", "B: netG='resnet_9blocks'; paper appendix 7.2, 9 blocks at 256x256"),
    ("discriminator", "patch", "B: netD='basic', the 70x70 PatchGAN"),
    ("norm", "instance", "B: norm='instance'"),
    ("dropout", False, "C: no_dropout=True"),
    ("gan_mode", "lsgan", "T: gan_mode='lsgan'; paper sec. 4, the least-squares loss"),
    ("lambda_a", 10.0, "C: lambda_A=10.0; paper eq. 3, lambda = 10"),
    ("lambda_b", 10.0, "C: lambda_B=10.0"),
    ("lambda_identity", 0.5, "C: lambda_identity=0.5; paper sec. 5.2, weight 0.5 lambda"),
    ("pool_size", 50, "T: pool_size=50; paper sec. 4, a history of 50 generated images"),
    ("ngf", 64, "B: ngf=64"), ("ndf", 64, "B: ndf=64"),
    ("init_type", "normal", "B: init_type='normal'"), ("init_gain", 0.02, "B: init_gain=0.02"),
    ("lr", 2e-4, "T: lr=0.0002; paper sec. 4"), ("beta1", 0.5, "T: beta1=0.5"),
]


@pytest.mark.parametrize("name, config_class, reference", [("pix2pix", Pix2PixConfig, PIX2PIX_REFERENCE),
                                                           ("cyclegan", CycleGANConfig, CYCLEGAN_REFERENCE)])
def test_model_defaults_are_the_papers(name, config_class, reference, tmp_path):
    """A recipe that only names the model trains with the reference's settings, and the saved config.yaml says so."""
    cfg = config.load(None, [f"model.name={name}"])
    assert isinstance(cfg.model, config_class)
    config.save(cfg, tmp_path / "config.yaml")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())["model"]
    for key, value, source in reference:
        assert getattr(cfg.model, key) == value, f"model.{key}: the reference has {value!r} ({source})"
        assert saved[key] == value, f"config.yaml model.{key}"
    assert config.load(tmp_path / "config.yaml") == cfg


def test_overrides_are_typed_and_nested(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: cyclegan, ngf: 32}\ntrain: {max_steps: 100}\n")
    cfg = config.load(recipe, ["train.max_steps=10", "train.decay_steps=5", "model.tricks.ema_decay=0.999",
                               "model.lambda_a=5", "data.direction=BtoA", "data.flip=false"])
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
    ("model.lr=1e39", "model.lr must be a finite number within the 32-bit float range"),  # overflows float32
    ("model.lambda_l1=-inf", "model.lambda_l1 must be a finite number"),
    ("model.lr=nan", "model.lr must be a finite number"),
    ("train.decay_steps=200001", "train.decay_steps=200001 is more than train.max_steps=200000"),
    ("data.crop_size=300", "data.crop_size=300 is larger than data.load_size=286"),
    ("model.lr=!!python/name:os.system", "override 'model.lr=!!python/name:os.system': line 1: unsupported YAML tag "
                                         "!!python/name:os.system"),
])
def test_bad_keys_and_values_are_errors(override, message):
    base = [] if override.startswith("model.name") else ["model.name=pix2pix"]
    with pytest.raises(config.ConfigError, match=message.replace(".", r"\.")):
        config.load(None, [*base, override])


def test_a_recipe_with_a_python_tag_or_broken_yaml_is_one_line_naming_file_line_and_tag(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix}\ntrain: !!python/object/new:collections.OrderedDict []\n")
    with pytest.raises(config.ConfigError) as error:
        config.load(recipe)
    assert str(error.value) == (f"{recipe}: line 2: unsupported YAML tag !!python/object/new:collections.OrderedDict;"
                                " only plain values (numbers, strings, lists, mappings) are read")
    recipe.write_text("model: {name: pix2pix\n")
    with pytest.raises(config.ConfigError, match=rf"^{recipe}: line 2: not valid YAML: [^\n]*$"):
        config.load(recipe)
    recipe.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(config.ConfigError, match="not a text file"):
        config.load(recipe)


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix, lr: 2e-4}\n")  # YAML 1.1 reads 2e-4 as a string
    assert config.load(recipe).model.lr == 2e-4
    assert config.load(None, ["model.name=pix2pix", "model.lr=1e-3"]).model.lr == 1e-3


def test_presets_apply_before_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix}\npresets:\n  cpu: [model.ngf=8, train.max_steps=7, "
                      "train.decay_steps=0]\n")
    cfg = config.load(recipe, ["train.max_steps=3"], preset="cpu")
    assert cfg.model.ngf == 8 and cfg.train.max_steps == 3
    with pytest.raises(config.ConfigError, match="no preset 'gpu'"):
        config.load(recipe, preset="gpu")


def test_a_preset_builds_on_another_in_place(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix}\npresets:\n  cpu: [model.ngf=8, model.lr=0.001, train.max_steps=7, "
                      "train.decay_steps=0]\n"
                      "  fast: [preset=cpu, model.lr=0.002]\n  first: [model.lr=0.003, preset=fast]\n"
                      "  loop: [preset=loop2]\n  loop2: [preset=loop]\n")
    fast = config.load(recipe, preset="fast")
    assert (fast.model.ngf, fast.model.lr, fast.train.max_steps) == (8, 0.002, 7)
    assert config.load(recipe, preset="first").model.lr == 0.002  # fast's items come where it is named
    with pytest.raises(config.ConfigError, match="loop -> loop2 -> loop"):
        config.load(recipe, preset="loop")


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
                     "train.decay_steps=0", "--run-dir", str(tmp_path / "run")]) == 0
    assert (seen["cfg"].train.seed, seen["cfg"].train.max_steps, seen["cfg"].model.ngf) == (3, 5, 8)
    with pytest.raises(SystemExit):
        cli.main(["train", str(recipe), "--bogus"])


@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_recipe_and_preset_loads(recipe):
    raw = yaml.safe_load(recipe.read_text())
    presets = raw.get("presets") or {}
    for preset in [None, *presets]:
        cfg = config.load(recipe, preset=preset)
        # a preset may switch the model (horse2zebra's cpu_cut): the last model.name it sets wins
        items = config.preset_overrides(presets, preset, recipe) if preset else []
        names = [o.split("=", 1)[1] for o in items if o.startswith("model.name=")]
        assert cfg.model.name == (names or [raw["model"]["name"]])[-1], preset


def test_no_yes_on_and_off_stay_strings_and_only_true_and_false_are_booleans(tmp_path):
    cfg = config.load(None, ["model.name=pix2pix", "train.mixed_precision=no", "data.flip=false"])
    assert cfg.train.mixed_precision == "no" and cfg.data.flip is False
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: pix2pix}\ntrain: {mixed_precision: no}\ndata: {flip: True}\n")
    cfg = config.load(recipe)
    assert cfg.train.mixed_precision == "no" and cfg.data.flip is True
    config.save(cfg, tmp_path / "saved.yaml")
    assert config.load(tmp_path / "saved.yaml").train.mixed_precision == "no"
