"""DANN, DTN and the cross-domain embedding under `accelerate launch` with two CPU processes (gloo DDP): both ranks
train, the export loads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import CROSSMATCH_TINY, DANN_TINY, DTN_TINY, make_classifier_export, write_images, write_labeled
from translate.export import load_classifier, load_encoder, load_generator

REPO = Path(__file__).resolve().parents[2]


def launch_two_processes(tmp_path: Path, overrides: list[str]) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "-m", "translate", "train", str(recipe), *overrides, "train.max_steps=3",
                           "--run-dir", str(run)],
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (run / "checkpoints" / "step_00000003" / "rng_1.pt").exists(), "the second rank never ran"
    return run / "export"


pytestmark = [pytest.mark.slow, pytest.mark.skipif(torch.cuda.is_available(),
                                                   reason="checks CPU DDP; on a GPU machine --multi_gpu uses GPUs")]


def test_dann_trains_on_two_processes(tmp_path):
    source = write_labeled(tmp_path / "source", per_class=4)
    target = write_labeled(tmp_path / "target", mode="RGB", seed=3)
    export = launch_two_processes(tmp_path, [*DANN_TINY, f"data.source={source}", f"data.target={target}"])
    assert load_classifier(export)(torch.zeros(2, 3, 16, 16)).shape == (2, 2)


def test_dtn_trains_on_two_processes(tmp_path):
    f = make_classifier_export(tmp_path / "f")
    source = write_labeled(tmp_path / "source", per_class=3, mode="RGB")
    target = write_labeled(tmp_path / "target", per_class=3, seed=2)
    export = launch_two_processes(tmp_path, [*DTN_TINY, f"model.encoder={f}", f"data.source={source}",
                                             f"data.target={target}"])
    assert load_generator(export)(torch.zeros(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_crossmatch_trains_on_two_processes(tmp_path):
    write_images(tmp_path / "pairs" / "train", 8, (64, 32), seed=0)
    export = launch_two_processes(tmp_path, [*CROSSMATCH_TINY, f"data.root={tmp_path / 'pairs'}", "data.batch_size=2"])
    assert load_encoder(export)(torch.zeros(2, 3, 16, 16)).shape == (2, 8)
