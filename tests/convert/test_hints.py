"""`translate convert --hints DIR`: each input takes DIR/REL.png when there is one, a bad map fails its own image
only, and a model that reads no hints refuses the flag."""

import json

import numpy as np
from PIL import Image

from tests.convert.test_folder import run_convert
from tests.helpers import HINTED, make_pix2pix_export


def sketch(path, size=(40, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((size[1], size[0], 3), 255, np.uint8)
    array[8:24, 10:30] = 0
    Image.fromarray(array).save(path)


def hint_map(path, size=(40, 32), colour=(255, 0, 0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 4), np.uint8)
    array[12:20, 14:26] = (*colour, 255)
    Image.fromarray(array, "RGBA").save(path)


def test_hints_are_found_by_relative_path_and_change_only_their_images(tmp_path, capsys):
    export = make_pix2pix_export(tmp_path / "model", 0, *HINTED)
    for name in ("a.jpg", "sub/b.png", "c.png", "d.png"):
        sketch(tmp_path / "in" / name)
    hint_map(tmp_path / "hints" / "a.png")
    hint_map(tmp_path / "hints" / "sub" / "b.png", colour=(0, 0, 255))
    hint_map(tmp_path / "hints" / "d.png", size=(10, 10))  # not the sketch's size
    assert run_convert(export, tmp_path / "in", tmp_path / "plain", "--size", "keep") == 0
    assert run_convert(export, tmp_path / "in", tmp_path / "out", "--size", "keep", "--hints", tmp_path / "hints") == 1
    read = lambda root, name: np.asarray(Image.open(root / name)).astype(int)  # noqa: E731
    assert np.abs(read(tmp_path / "out", "a.png") - read(tmp_path / "plain", "a.png")).max() > 0
    assert np.abs(read(tmp_path / "out", "sub/b.png") - read(tmp_path / "plain", "sub/b.png")).max() > 0
    assert np.array_equal(read(tmp_path / "out", "c.png"), read(tmp_path / "plain", "c.png"))
    errors = (tmp_path / "out" / "errors.txt").read_text()
    assert "d.png" in errors and "the hint map is 10x10 but its image is 40x32" in errors
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {r["input"] for r in manifest["images"] if r.get("hints")} == {"a.jpg", "sub/b.png"}
    assert manifest["settings"]["hints"] == str(tmp_path / "hints")


def test_a_model_without_hints_refuses_the_flag_in_one_line(tmp_path, capsys):
    export = make_pix2pix_export(tmp_path / "model", 0)
    sketch(tmp_path / "in" / "a.png")
    (tmp_path / "hints").mkdir()
    assert run_convert(export, tmp_path / "in", tmp_path / "out", "--hints", tmp_path / "hints") == 2
    assert "reads no colour hints" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_raw_hints_give_the_models_own_colours_and_the_manifest_says_so(tmp_path):
    from translate.inference import Translator

    export = make_pix2pix_export(tmp_path / "model", 0, *HINTED)
    sketch(tmp_path / "in" / "a.png")
    hint_map(tmp_path / "hints" / "a.png")
    for name, flags in (("carried", ()), ("raw", ("--raw-hints",))):
        assert run_convert(export, tmp_path / "in", tmp_path / name, "--size", "keep", "--hints", tmp_path / "hints",
                           *flags) == 0
    read = lambda name: np.asarray(Image.open(tmp_path / name / "a.png")).astype(int)  # noqa: E731
    own = Translator.from_export(export, size="keep", propagate_hints=False)(
        np.asarray(Image.open(tmp_path / "in" / "a.png").convert("RGB")),
        hints=np.asarray(Image.open(tmp_path / "hints" / "a.png")))
    assert np.abs(read("raw") - own).max() <= 1
    assert np.abs(read("carried") - read("raw")).max() > 8
    settings = lambda name: json.loads((tmp_path / name / "manifest.json").read_text())["settings"]  # noqa: E731
    assert settings("raw")["hint_propagation"] is False and settings("carried")["hint_propagation"] is True
