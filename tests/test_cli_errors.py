"""`translate train` with a bad recipe, override or run folder: one line on stderr that names the file or the key and
the problem, exit code 2, and no run folder left behind (a hostile tester's findings, each once a traceback)."""

from pathlib import Path

import pytest
import torch

from tests.helpers import PIX2PIX_TINY
from translate import cli


def train_cli(args: list[str], capsys) -> tuple[int, list[str]]:
    """`translate train ARGS` in-process: its exit code and its stderr lines."""
    code = cli.main(["train", *args])
    return code, capsys.readouterr().err.splitlines()


def assert_one_line_error(code: int, lines: list[str], *fragments: str) -> None:
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("translate train: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def recipe(tmp_path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text("{}\n")
    return path


@pytest.mark.parametrize("value", ["1e39", "-1e39", "1e400", "inf", ".inf", "nan", ".nan"])
def test_a_float_that_is_not_finite_in_float32_names_the_key(value, recipe, aligned_root, tmp_path, capsys):
    run = tmp_path / "run"
    code, lines = train_cli([str(recipe), *PIX2PIX_TINY, f"data.root={aligned_root}", f"model.lr={value}",
                             "--run-dir", str(run)], capsys)
    assert_one_line_error(code, lines, "model.lr must be a finite number")
    assert not run.exists()


@pytest.mark.parametrize("generator, crop, fits", [("resnet_6blocks", 31, "multiples of 4"),
                                                   ("resnet_6blocks", 4, "at least 8"),
                                                   ("unet_128", 32, "multiples of 128"),
                                                   ("unet_256", 128, "multiples of 256")])
def test_a_crop_the_generator_cannot_take_is_refused_before_the_run_folder(generator, crop, fits, recipe,
                                                                          aligned_root, tmp_path, capsys):
    run = tmp_path / "run"
    code, lines = train_cli([str(recipe), *PIX2PIX_TINY, f"data.root={aligned_root}", f"model.generator={generator}",
                             f"data.load_size={max(crop, 36)}", f"data.crop_size={crop}", "--run-dir", str(run)],
                            capsys)
    assert_one_line_error(code, lines, f"data.crop_size={crop}", f"model.generator={generator}", fits)
    assert not run.exists()


def test_a_model_the_config_cannot_build_leaves_no_run_folder(recipe, aligned_root, tmp_path, capsys):
    run = tmp_path / "run"
    code, lines = train_cli([str(recipe), *PIX2PIX_TINY, f"data.root={aligned_root}",
                             "model.freeze_encoder_steps=5", "--run-dir", str(run)], capsys)
    assert_one_line_error(code, lines, "model.freeze_encoder_steps")
    assert not run.exists()


def test_decay_steps_beyond_max_steps_names_both_keys(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    code, lines = train_cli([str(recipe), *PIX2PIX_TINY, "train.max_steps=10", "train.decay_steps=20",
                             "--run-dir", str(run)], capsys)
    assert_one_line_error(code, lines, "train.decay_steps=20", "train.max_steps=10")
    assert not run.exists()


UNSAFE = "model:\n  name: pix2pix\n  lr: !!python/object/apply:os.system ['touch {marker}']\n"


def test_a_python_tag_in_a_recipe_runs_nothing_and_names_the_file_and_tag(tmp_path, capsys):
    marker, recipe, run = tmp_path / "code_ran", tmp_path / "recipe.yaml", tmp_path / "run"
    recipe.write_text(UNSAFE.format(marker=marker))
    code, lines = train_cli([str(recipe), "--run-dir", str(run)], capsys)
    assert_one_line_error(code, lines, str(recipe), "line 3", "!!python/object/apply:os.system")
    assert not marker.exists() and not run.exists()


def test_an_unknown_tag_or_broken_yaml_in_an_override_names_the_override(recipe, tmp_path, capsys):
    for override, problem in [("model.lr=!!float64 1", "!!float64"), ("model.lr=[1", "not valid YAML")]:
        code, lines = train_cli([str(recipe), *PIX2PIX_TINY, override, "--run-dir", str(tmp_path / "run")], capsys)
        assert_one_line_error(code, lines, repr(override), problem)


def test_a_python_tag_in_a_runs_config_yaml_stops_resume_naming_the_file(recipe, aligned_root, tmp_path, capsys):
    run, marker = tmp_path / "run", tmp_path / "code_ran"
    args = [str(recipe), *PIX2PIX_TINY, f"data.root={aligned_root}", "train.max_steps=2", "--run-dir", str(run)]
    assert cli.main(["train", *args]) == 0
    capsys.readouterr()
    saved = run / "config.yaml"
    saved.write_text(saved.read_text() + f"extra: !!python/object/apply:os.system ['touch {marker}']\n")
    code, lines = train_cli([*args, "--resume"], capsys)
    assert_one_line_error(code, lines, str(saved), "!!python/object/apply:os.system")
    assert not marker.exists()


def test_a_resume_whose_every_rng_state_is_the_wrong_size_names_each_file(recipe, aligned_root, tmp_path, capsys):
    run = tmp_path / "run"
    args = [str(recipe), *PIX2PIX_TINY, f"data.root={aligned_root}", "--run-dir", str(run)]
    assert cli.main(["train", *args]) == 0
    capsys.readouterr()
    for path in (run / "checkpoints").glob("step_*/rng_0.pt"):
        states = torch.load(path, weights_only=True)
        version, internal, gauss = states["python"]
        torch.save({**states, "python": (version, internal[:100], gauss)}, path)
    code, lines = train_cli([*args, "--resume", "train.max_steps=6"], capsys)
    assert_one_line_error(code, lines, "step_00000002/rng_0.pt", "step_00000004/rng_0.pt", "wrong size")
