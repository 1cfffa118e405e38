"""Permissions, tested as they bite: the suite runs as root, whom chmod does not stop, so `translate` runs here
in a subprocess as the unprivileged user nobody (setpriv). An unreadable input image or folder is reported and
the rest converted; an output folder this user may not write is one line and exit 2 before any work; a read-only
output subfolder fails its own outputs only. Nothing is lost: inputs and earlier outputs keep every byte."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import make_cyclegan_export

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
pytestmark = pytest.mark.slow  # each test runs translate in a subprocess


def as_nobody(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                           "-m", "translate", *map(str, argv)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"})


@pytest.fixture(scope="module")
def place():
    """A folder nobody can reach (pytest's own tmp folders are root's, mode 0700), with a model export in it."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run translate as the unprivileged user nobody")
    root = Path(tempfile.mkdtemp(prefix="translate-permissions-"))
    root.chmod(0o755)
    make_cyclegan_export(root / "export")
    for path in [root / "export", *(root / "export").iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    probe = as_nobody("--help")
    if probe.returncode != 0:
        shutil.rmtree(root)
        pytest.skip(f"the user nobody cannot run translate from {REPO}: {probe.stderr.strip()[-200:]}")
    yield root
    shutil.rmtree(root)


@pytest.fixture
def case(place, request):
    """This test's own folder under `place`, with IN holding a.png, b.png, locked/c.png, all readable by all."""
    folder = place / request.node.name
    (folder / "in" / "locked").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "b.png", "locked/c.png"]):
        Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)).save(folder / "in" / rel)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def convert(place: Path, folder: Path, *extra) -> subprocess.CompletedProcess:
    return as_nobody("convert", place / "export", folder / "in", folder / "out", "--net", "G_AB", "--workers", "0",
                     "--compile", "off", *extra)


def writable_out(folder: Path) -> Path:
    (folder / "out").mkdir()
    os.chown(folder / "out", NOBODY, NOBODY)
    return folder / "out"


def test_unreadable_input_image_and_folder_are_reported_and_the_rest_converted(place, case):
    (case / "in" / "a.png").chmod(0o000)
    (case / "in" / "locked").chmod(0o000)
    out = writable_out(case)
    before = snapshot(case / "in")
    done = convert(place, case)
    assert done.returncode == 1, done.stderr
    assert "converted 1," in done.stdout and "failed: a.png: " in done.stdout
    records = sorted(line.split("\t")[:2] for line in (out / "errors.txt").read_text().splitlines())
    assert records == [["failed", "a.png"], ["skipped", "locked"]]
    assert "Permission denied" in (out / "errors.txt").read_text()
    assert (out / "b.png").is_file() and not (out / "a.png").exists()
    assert snapshot(case / "in") == before


@pytest.mark.parametrize("command", ["convert", "gallery"])
def test_an_output_folder_this_user_cannot_write_is_one_line_and_exit_2(command, place, case):
    out = case / "out"
    out.mkdir()
    Image.new("RGB", (8, 8)).save(out / "a.png")  # an earlier output, root's: kept as it is
    before = snapshot(case)
    done = convert(place, case, "--overwrite") if command == "convert" else as_nobody("gallery", case / "in", out)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert err.splitlines() == [f"translate {command}: error: output folder {out} is not writable by this user; "
                                "fix its permissions or choose another output folder"], err
    assert snapshot(case) == before


def test_an_output_folder_that_cannot_be_created_is_one_line_and_exit_2(place, case):
    done = as_nobody("convert", place / "export", case / "in", case / "new" / "out", "--net", "G_AB",
                     "--workers", "0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"translate convert: error: cannot create the output folder {case / 'new' / 'out'}: permission denied"]
    assert not (case / "new").exists()


def test_a_read_only_output_subfolder_fails_its_outputs_only(place, case):
    (case / "in" / "locked").rename(case / "in" / "sub")
    out = writable_out(case)
    assert convert(place, case).returncode == 0
    kept = (out / "sub" / "c.png").read_bytes()
    (out / "sub").chmod(0o555)
    os.chown(out / "sub", 0, 0)
    done = convert(place, case, "--overwrite")
    assert done.returncode == 1, done.stderr
    assert f"failed: sub/c.png: cannot write {out / 'sub' / 'c.png'}: Permission denied" in done.stdout
    assert (out / "sub" / "c.png").read_bytes() == kept and (out / "b.png").is_file()
    assert "failed\tsub/c.png\tcannot write" in (out / "errors.txt").read_text()
