"""convert --size train (the default) and --half: images at the training scale, one side of aligned A|B files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate import cli, config
from translate.export import write_export
from translate.models import MODELS


@pytest.fixture(scope="module")
def resized_export(tmp_path_factory) -> Path:
    """A tiny CycleGAN export whose training resized images to load_size 36."""
    cfg = config.load(None, ["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
                             "model.lambda_identity=0", "data.load_size=36", "data.crop_size=32"])
    torch.manual_seed(0)
    return write_export(tmp_path_factory.mktemp("model") / "export", MODELS["cyclegan"].build(cfg.model).export_nets(),
                        cfg)


def convert(export, inp, out, *flags) -> int:
    return cli.main(["convert", str(export), str(inp), str(out), "--net", "G_AB", "--workers", "0", *flags])


def photo(path: Path, width: int, height: int, seed: int = 0) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def test_by_default_images_are_translated_at_the_training_scale_and_it_is_said(resized_export, tmp_path, capsys):
    photo(tmp_path / "in" / "a.png", 72, 48)
    assert convert(resized_export, tmp_path / "in", tmp_path / "out") == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (54, 36)  # the shorter side at load_size, aspect kept
    assert "training scale (shorter side 36 px); --size keep" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["settings"]["size"] == "shorter side 36 px"
    assert convert(resized_export, tmp_path / "in", tmp_path / "kept", "--size", "keep") == 0
    assert Image.open(tmp_path / "kept" / "a.png").size == (72, 48)


def test_a_reference_file_records_no_scale_and_keeps_the_size(tmp_path, capsys):
    from translate.backbones import build_generator

    torch.save(build_generator("resnet_6blocks", ngf=4).state_dict(), tmp_path / "latest_net_G.pth")
    photo(tmp_path / "in" / "a.png", 40, 28)
    assert cli.main(["convert", str(tmp_path / "latest_net_G.pth"), str(tmp_path / "in"), str(tmp_path / "out"),
                     "--arch", "resnet_6blocks", "--ngf", "4", "--workers", "0"]) == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (40, 28)
    assert "records no training resize" in capsys.readouterr().err


@pytest.mark.parametrize("half, columns", [("left", slice(0, 32)), ("right", slice(32, 64))])
def test_half_translates_one_side_of_aligned_files(resized_export, tmp_path, half, columns):
    pair = photo(tmp_path / "in" / "pair.png", 64, 32)
    photo(tmp_path / "alone" / "pair.png", 32, 32)
    Image.fromarray(pair[:, columns]).save(tmp_path / "alone" / "pair.png")
    assert convert(resized_export, tmp_path / "in", tmp_path / "out", "--half", half) == 0
    assert convert(resized_export, tmp_path / "alone", tmp_path / "expected") == 0
    ours, expected = (np.asarray(Image.open(tmp_path / d / "pair.png")) for d in ("out", "expected"))
    assert ours.shape == (36, 36, 3) and np.array_equal(ours, expected)
