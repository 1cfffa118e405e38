"""The README's commands work as printed: every `translate` command parses and names recipes, presets and keys that
exist; every script and make target it runs is there; and the two paths of "Translate your own photos" run end to
end in an empty folder, with tiny training settings and a local HTTP server standing in for the download."""

from __future__ import annotations

import http.server
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, write_images
from translate import cli, config
from translate.backbones import build_generator
from translate.catalog import find_recipe

README = REPO / "README.md"
BIN = Path(sys.executable).parent  # the environment's `translate`, as after `source .venv/bin/activate`
# The horse2zebra cpu preset at test size: two steps on 32 px images (the preset's projected discriminator needs
# larger images than a test can afford), counted in steps: the preset's budget in minutes is turned off.
TINY_TRAIN = ["model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4", "model.discriminator=patch",
              "model.gan_mode=lsgan", "model.tricks.diffaugment=", "data.load_size=32", "data.crop_size=32",
              "data.batch_size=2", "data.num_workers=0", "train.max_steps=2", "train.decay_steps=0",
              "train.sample_every=2", "train.checkpoint_every=2", "train.budget_minutes=0"]


def shell_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(the heading above it, its commands) for each ```bash block: continuation lines joined, comments dropped."""
    blocks, heading = [], ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```bash\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
            continue
        joined = match.group(2).replace("\\\n", " ")
        commands = [shlex.split(line, comments=True) for line in joined.splitlines()]
        blocks.append((heading, [" ".join(shlex.quote(w) for w in words) for words in commands if words]))
    return blocks


COMMANDS = [command for _, commands in shell_blocks(README.read_text()) for command in commands]


def prepare_module():
    """datasets/prepare.py (a script, not a package module), loaded once."""
    if "datasets_prepare" not in sys.modules:
        spec = importlib.util.spec_from_file_location("datasets_prepare", REPO / "datasets" / "prepare.py")
        sys.modules["datasets_prepare"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["datasets_prepare"])
    return sys.modules["datasets_prepare"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_names_what_exists(command):
    words = shlex.split(command)
    if words[:3] == ["accelerate", "launch", "-m"]:
        words = words[3:]
    if words[0] == "translate":
        argv = words[1:]
        parser = cli.build_parser([w for w in argv if not w.startswith("-")])
        args, extra = parser.parse_known_args(argv)  # a flag that does not exist exits here
        if args.command == "train":
            overrides = args.overrides + [w for w in extra if "=" in w and not w.startswith("-")]
            extra = [w for w in extra if w not in overrides]
            if args.recipe != "my_recipe.yaml":  # the README's example of a recipe file of one's own
                config.load(find_recipe(args.recipe), overrides, preset=args.preset)  # recipe, preset, keys exist
        assert extra == []
    elif words[:2] == ["python", "datasets/prepare.py"]:
        assert words[2] in prepare_module().SUBCOMMANDS
    elif words[0] == "python":
        assert (REPO / words[1]).is_file()
    elif words[0] == "make":
        assert re.search(rf"^{words[1]}:", (REPO / "Makefile").read_text(), re.M)
    else:
        assert words[0] in ("source", "curl"), f"a README command this test does not know: {command}"


@pytest.fixture
def newcomer(tmp_path, monkeypatch):
    """An empty working folder with a few photos of one's own, `translate` on PATH, the data root at ./data and
    a local server holding a published-format horse2zebra.pth (ResNet-9, as the reference publishes it)."""
    served = tmp_path / "server"
    served.mkdir()
    torch.manual_seed(0)
    torch.save(build_generator("resnet_9blocks", norm="instance").state_dict(), served / "horse2zebra.pth")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    home = tmp_path / "home"
    write_images(home / "my_photos", 2, (40, 30), seed=0)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TRANSLATE_DATA": "data",
           "TRANSLATE_PRETRAINED_URL": f"http://127.0.0.1:{server.server_address[1]}", "OMP_NUM_THREADS": "1"}
    yield home, env
    server.shutdown()


def run_as_printed(command: str, home: Path, env: dict) -> None:
    words = shlex.split(command)
    if words[0] == "source":
        return  # the environment's bin is already on PATH
    if words[:2] == ["python", "datasets/prepare.py"]:  # the download, stood in for: the set it would write
        write_images(home / "data" / words[2] / "trainA", 2, (32, 32), seed=1)
        write_images(home / "data" / words[2] / "trainB", 2, (32, 32), seed=2)
        return
    if words[:2] == ["translate", "train"]:
        words += TINY_TRAIN
    done = subprocess.run(words, cwd=home, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"


def test_translate_your_own_photos_runs_as_printed(newcomer):
    home, env = newcomer
    blocks = [commands for heading, commands in shell_blocks(README.read_text())
              if heading == "Translate your own photos"]
    assert len(blocks) == 2 and all(len(commands) <= 5 for commands in blocks)
    for commands in blocks:
        for command in commands:
            run_as_printed(command, home, env)
    outputs = [p for p in home.rglob("*.png") if "my_photos" not in p.parts and "_gallery" not in p.parts
               and "runs" not in p.parts and "data" not in p.parts]
    assert len(outputs) == 4  # both photos, by the published weights and by the model trained here
    assert (home / "zebras" / "_gallery" / "index.html").is_file()
