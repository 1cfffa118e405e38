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


def test_stray_flags_are_rejected(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "classify", "--model", str(model_dir), "--folder", str(tmp_path), "--bogus"])
    assert exit_info.value.code == 2 and "--bogus" in capsys.readouterr().err


@pytest.mark.parametrize("argv, names", [
    (["eval", "fid", "--real", "{tmp}/none", "--fake", "{tmp}/none2"], "none"),
    (["eval", "paired", "--pred", "{tmp}/none", "--target", "{tmp}/none2"], "none"),
    (["gallery", "{tmp}/none", "{tmp}/out"], "out"),
    (["export", "{tmp}/none", "--format", "torchscript"], "none"),
    (["train", "{tmp}/none.yaml"], "none.yaml"),
])
def test_expected_errors_are_one_line_with_exit_code_2(argv, names, tmp_path, capsys):
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"translate {argv[0]}") and names in err[0], err


def test_a_truncated_safetensors_export_is_one_line(model_dir, tmp_path, capsys):
    weights = model_dir / "G_AB.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    write_images(tmp_path / "in", 1, (8, 8), seed=0)
    assert cli.main(["convert", str(model_dir), str(tmp_path / "in"), str(tmp_path / "out"), "--net", "G_AB"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "G_AB.safetensors" in err[0], err


def test_check_data_lists_unusable_training_images_and_training_names_the_file(tmp_path, capsys):
    write_images(tmp_path / "data" / "trainA", 3, (32, 32), seed=0)
    write_images(tmp_path / "data" / "trainB", 3, (32, 32), seed=1)
    (tmp_path / "data" / "trainA" / "001.png").write_bytes(b"junk")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    common = [str(recipe), "model.name=cyclegan", "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
              f"data.root={tmp_path / 'data'}", "data.load_size=32", "data.crop_size=32"]
    assert cli.main(["check-data", *common]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"bad\t{tmp_path / 'data' / 'trainA' / '001.png'}\tcannot read image {tmp_path / 'data' / 'trainA' / '001.png'}"
        ": not a recognised image format (corrupt, or not an image)"]
    assert cli.main(["train", *common, "data.num_workers=1", "train.max_steps=8", "train.decay_steps=0", "--run-dir",
                     str(tmp_path / "run")]) == 2
    assert f"cannot read image {tmp_path / 'data' / 'trainA' / '001.png'}" in capsys.readouterr().err
