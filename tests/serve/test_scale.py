"""The studio translates uploads at the model's training scale, as convert does (--size keep: their own size)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from translate import cli, config
from translate.export import write_export
from translate.models import MODELS
from translate.serve.worker import export_names


@pytest.fixture(scope="module")
def resized_export(tmp_path_factory) -> Path:
    """A tiny CycleGAN export whose training resized images to load_size 36."""
    cfg = config.load(None, ["model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
                             "model.lambda_identity=0", "data.load_size=36", "data.crop_size=32"])
    torch.manual_seed(0)
    export = tmp_path_factory.mktemp("runs") / "h2z" / "export"
    return write_export(export, MODELS["cyclegan"].build(cfg.model).export_nets(), cfg)


def png(width: int, height: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("size, expected", [("train", (54, 36)), ("keep", (72, 48))])
def test_uploads_come_back_at_the_scale_convert_writes(make_app, connect, resized_export, tmp_path, size, expected):
    app, worker = make_app(exports=[resized_export], size=size)
    answer = connect(app).post("/api/translate", files={"image": ("a.png", png(72, 48), "image/png")},
                               data={"model": "h2z/export", "net": "G_AB"})
    assert answer.status_code == 200, answer.text
    served = Image.open(io.BytesIO(answer.content))
    assert served.size == expected
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(png(72, 48))
    assert cli.main(["convert", str(resized_export), str(tmp_path / "in"), str(tmp_path / "out"), "--net", "G_AB",
                     "--workers", "0", "--size", size]) == 0
    assert np.array_equal(np.asarray(served), np.asarray(Image.open(tmp_path / "out" / "a.png")))


def test_a_model_is_named_by_its_run_folder():
    assert export_names([Path("/x/runs/horse2zebra/export")]) == ["horse2zebra/export"]
    assert export_names([Path("/x/a/run/export"), Path("/x/b/run/export")]) == ["a/run/export", "b/run/export"]
