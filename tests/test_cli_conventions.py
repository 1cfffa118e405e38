"""The command line as a user meets it: --version, help for every flag, a fast --help, recipes by name."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from tests.helpers import REPO, write_images
from translate import __version__, cli


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"translate {__version__}"


def subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


@pytest.mark.parametrize("words", [[name] for name in ("train", "demo", *cli.COMMANDS)] +
                         [["eval", name] for name in cli.EVAL_COMMANDS])
def test_every_flag_says_what_it_does(words):
    parser = cli.build_parser(words)
    for word in words:
        parser = dict(subparsers(parser))[word]
    silent = [action.dest for action in parser._actions
              if not isinstance(action, argparse._HelpAction) and not action.help]
    assert silent == [], f"translate {' '.join(words)}: flags without help: {silent}"
    assert parser.formatter_class.__mro__[1] is argparse.ArgumentDefaultsHelpFormatter  # defaults are shown


def test_help_does_not_load_torch():
    code = ("import sys\nfrom translate import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip().endswith("False") and "pretrained" in done.stdout


def test_a_shipped_recipe_trains_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no recipes/ here, as after `pip install`
    monkeypatch.setenv("TRANSLATE_DATA", str(tmp_path / "data"))
    write_images(tmp_path / "data" / "horse2zebra" / "trainA", 3, (32, 32), seed=0)
    write_images(tmp_path / "data" / "horse2zebra" / "trainB", 3, (32, 32), seed=1)
    tiny = ["model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4", "data.load_size=32", "data.crop_size=32",
            "data.num_workers=0", "train.max_steps=2", "train.decay_steps=0", "train.sample_every=2",
            "train.checkpoint_every=2"]
    assert cli.main(["train", "horse2zebra", *tiny]) == 0
    assert capsys.readouterr().out.strip() == "export: runs/horse2zebra/export"
    assert (tmp_path / "runs" / "horse2zebra" / "export" / "config.json").is_file()


def test_a_missing_dataset_is_one_line_naming_the_prepare_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRANSLATE_DATA", str(tmp_path / "data"))
    assert cli.main(["train", "horse2zebra", "--preset", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "python datasets/prepare.py horse2zebra" in err
    assert not (tmp_path / "runs").exists()


def test_the_demo_prints_a_serve_command_that_runs_from_the_same_shell(monkeypatch, tmp_path):
    from translate import demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".venv" / "bin" / "python"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / ".venv"))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    assert demo.command_prefix() == ".venv/bin/"  # make demo: the venv is not activated in the user's shell
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / ".venv"))
    assert demo.command_prefix() == ""  # activated: `translate` is on PATH
