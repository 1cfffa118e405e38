"""A training set with a corrupt image: the run stops naming the file, or with data.skip_unreadable steps over it."""

import logging

import numpy as np
from PIL import Image

from tests.helpers import PIX2PIX_TINY
from translate import cli, config
from translate.training.loop import train


def test_a_truncated_jpeg_stops_training_with_its_name_unless_skipped(tmp_path, capsys, caplog):
    rng = np.random.default_rng(0)
    (tmp_path / "data" / "train").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 64, 3), np.uint8)).save(tmp_path / "data" / "train" / f"{i}.jpg")
    bad = tmp_path / "data" / "train" / "1.jpg"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("{}\n")
    overrides = [*PIX2PIX_TINY, f"data.root={tmp_path / 'data'}", "train.max_steps=3"]  # 6 draws of 3 files

    assert cli.main(["train", str(recipe), *overrides, "--run-dir", str(tmp_path / "stops")]) == 2
    err = capsys.readouterr().err
    assert f"translate train: error: cannot read image {bad}: OSError: image file is truncated" in err, err[-500:]

    export = train(config.load(recipe, [*overrides, "data.skip_unreadable=true"]), tmp_path / "skips")
    assert (export / "G.safetensors").is_file()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(bad) in r.getMessage()]
    assert len(warnings) == 1 and "skipping unreadable training image" in warnings[0], warnings
