"""`translate` as a user types it: every subcommand is reachable, hands its exit code back, and rejects stray flags."""

import json

import pytest

from tests.helpers import make_cyclegan_export, write_images
from translate import cli


@pytest.fixture
def model_dir(tmp_path):
    return make_cyclegan_export(tmp_path / "export")


def test_convert_then_gallery_then_fid(model_dir, tmp_path, capsys):
    write_images(tmp_path / "in" / "sub", 3, (20, 12), seed=0)
    assert cli.main(["convert", str(model_dir), str(tmp_path / "in"), str(tmp_path / "out"), "--net", "G_AB",
                     "--workers", "0", "--compile", "off"]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "sub").iterdir()) == ["000.png", "001.png", "002.png"]
    assert cli.main(["gallery", str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "_gallery").is_dir()
    capsys.readouterr()
    assert cli.main(["eval", "fid", "--real", str(tmp_path / "in"), "--fake", str(tmp_path / "out"),
                     "--image-size", "32", "--no-progress", "--kid-subsets", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["features"] == "efficientnet_lite0" and result["fid"] >= 0


def test_export_onnx_through_the_cli(model_dir, tmp_path):
    pytest.importorskip("onnx")
    output = tmp_path / "g.onnx"
    assert cli.main(["export", str(model_dir), "--net", "G_BA", "--format", "onnx", "--output", str(output)]) == 0
    assert output.stat().st_size > 0


def test_a_missing_model_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code = cli.main(["convert", str(tmp_path / "nothing"), str(tmp_path / "in"), str(tmp_path / "out")])
    assert code == 2
    assert str(tmp_path / "nothing") in capsys.readouterr().err


def test_stray_flags_are_rejected(model_dir, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["eval", "classify", "--model", str(model_dir), "--folder", str(tmp_path), "--bogus"])
