"""No write of convert or gallery lands in INPUT_DIR through a link placed in OUTPUT_DIR: every layout a hostile
user tried is refused whole, with one line and exit 2, and INPUT_DIR keeps every byte and gains no file."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_cyclegan_export
from translate import cli
from translate.convert.safe_paths import OutputFolder, UnsafeOutput


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_cyclegan_export(tmp_path_factory.mktemp("model") / "export")


def make_input(root: Path) -> Path:
    """IN with images in a subfolder and an index.html and a thumbs/ of its own, the names a gallery writes."""
    inp = root / "in"
    (inp / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "sub/b.png"]):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(inp / rel)
    (inp / "index.html").write_text("the user's own page")
    return inp


def snapshot(folder: Path) -> dict:
    """Every path under `folder` (links not followed) with the sha256 of each file."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=target.is_dir())


# (link below OUT, what it points to in IN): each would have led some write of convert --gallery into IN
LAYOUTS = {
    "OUT/_gallery -> IN": ("_gallery", ""),
    "OUT/_gallery/thumbs -> IN": ("_gallery/thumbs", ""),
    "OUT/_gallery/thumbs/in -> IN/sub": ("_gallery/thumbs/in", "sub"),
    "OUT/_gallery/index.html -> IN/index.html": ("_gallery/index.html", "index.html"),
    "OUT/manifest.json -> IN/index.html": ("manifest.json", "index.html"),
    "OUT/errors.txt -> IN/index.html": ("errors.txt", "index.html"),
    "OUT/sub -> IN/sub": ("sub", "sub"),
    "OUT/a.png -> IN/a.png": ("a.png", "a.png"),
}


def run_cli(*argv) -> int:
    return cli.main([str(a) for a in argv])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_convert_with_gallery_never_writes_into_the_input_through_a_link(layout, model_dir, tmp_path, capsys):
    inp, out = make_input(tmp_path), tmp_path / "out"
    where, target = LAYOUTS[layout]
    link(out / where, inp / target)
    before = snapshot(inp)
    assert run_cli("convert", model_dir, inp, out, "--net", "G_AB", "--workers", "0", "--gallery", "--overwrite") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out / where} is a link" in err, err
    assert snapshot(inp) == before


@pytest.mark.parametrize("layout", [name for name in LAYOUTS if name.startswith("OUT/_gallery")])
def test_gallery_never_writes_into_the_input_through_a_link(layout, model_dir, tmp_path, capsys):
    inp, out = make_input(tmp_path), tmp_path / "out"
    assert run_cli("convert", model_dir, inp, out, "--net", "G_AB", "--workers", "0") == 0
    capsys.readouterr()
    where, target = LAYOUTS[layout]
    link(out / where, inp / target)
    before = snapshot(inp)
    assert run_cli("gallery", inp, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out / where} is a link" in err, err
    assert snapshot(inp) == before


@pytest.mark.parametrize("command", ["convert", "gallery"])
def test_an_output_folder_that_is_a_link_to_the_input_is_refused(command, model_dir, tmp_path, capsys):
    inp = make_input(tmp_path)
    link(tmp_path / "out", inp)
    before = snapshot(inp)
    argv = [model_dir, inp, tmp_path / "out", "--net", "G_AB", "--workers", "0", "--overwrite"]
    assert run_cli(command, *(argv if command == "convert" else argv[1:3])) == 2
    assert "is the input folder" in capsys.readouterr().err
    assert snapshot(inp) == before


def test_an_input_that_is_a_link_to_its_own_output_is_refused(model_dir, tmp_path, capsys):
    inp, out = make_input(tmp_path), tmp_path / "out"
    out.mkdir()
    (inp / "a.png").rename(out / "a.png")
    link(inp / "a.png", out / "a.png")  # the input's real file is where its output goes
    before = snapshot(out)
    assert run_cli("convert", model_dir, inp, out, "--net", "G_AB", "--workers", "0", "--overwrite") == 2
    assert f"output {out / 'a.png'} is the file of an input" in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_manifest_naming_paths_outside_the_output_folder_is_refused(model_dir, tmp_path, capsys):
    inp, out = make_input(tmp_path), tmp_path / "out"
    assert run_cli("convert", model_dir, inp, out, "--net", "G_AB", "--workers", "0") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["images"][0]["input"] = "../../../in/evil"  # its thumbnail would be OUT/_gallery/thumbs/in/../../../..
    (out / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(inp)
    assert run_cli("gallery", inp, out) == 2
    assert "is not a path inside the output folder" in capsys.readouterr().err
    assert snapshot(inp) == before


def test_a_link_placed_after_the_check_is_not_followed_by_the_write(tmp_path):
    """The writes walk OUT with O_NOFOLLOW: a link made between check and write is refused there too, and a link
    at the final name is refused rather than replaced."""
    inp = make_input(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    folder = OutputFolder(inp, out)
    folder.check_all([out / "late" / "x.txt", out / "y.txt"])  # nothing there yet: fine
    before = snapshot(inp)
    link(out / "late", inp)
    link(out / "y.txt", inp / "index.html")
    for target in (out / "late" / "x.txt", out / "y.txt"):
        with pytest.raises(UnsafeOutput, match="is a link"):
            folder.write_text(target, "overwritten")
    assert snapshot(inp) == before
    assert not [p for p in out.rglob(".*partial*")]  # no temporary left behind


def test_writes_are_atomic_and_make_the_folders_they_need(tmp_path):
    inp = make_input(tmp_path)
    folder = OutputFolder(inp, tmp_path / "out")
    folder.check_writable()
    folder.write_text(tmp_path / "out" / "deep" / "er" / "x.txt", "one")
    folder.write_text(tmp_path / "out" / "deep" / "er" / "x.txt", "two")
    assert (tmp_path / "out" / "deep" / "er" / "x.txt").read_text() == "two"
    with pytest.raises(RuntimeError):
        with folder.open_atomic(tmp_path / "out" / "deep" / "er" / "x.txt") as file:
            file.write(b"half")
            raise RuntimeError("killed mid-write")
    assert (tmp_path / "out" / "deep" / "er" / "x.txt").read_text() == "two"
    assert sorted(p.name for p in (tmp_path / "out" / "deep" / "er").iterdir()) == ["x.txt"]
    folder.remove(tmp_path / "out" / "deep" / "er" / "x.txt")
    folder.remove(tmp_path / "out" / "absent" / "x.txt")
    assert not (tmp_path / "out" / "deep" / "er" / "x.txt").exists()
