"""datasets/prepare.py mnist / mnist_m / usps on small fake IDX, PNG and npz files."""

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets"))
import prepare  # noqa: E402

IMAGES = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
LABELS = np.array([7, 0, 7], dtype=np.uint8)


def idx(path: Path, array: np.ndarray, magic: int, compress: bool = True) -> Path:
    data = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_mnist_writes_original_pixels_per_class(tmp_path, capsys):
    images, labels = idx(tmp_path / "i.gz", IMAGES, 2051), idx(tmp_path / "l", LABELS, 2049, compress=False)
    assert prepare.main(["mnist", "--images", str(images), "--labels", str(labels), "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.png")) == \
        ["0/00001.png", "7/00000.png", "7/00002.png"]
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / "o" / "7" / "00002.png")), IMAGES[2])
    assert "3 images" in capsys.readouterr().out


def test_mnist_range_and_errors(tmp_path, capsys):
    images, labels = idx(tmp_path / "i.gz", IMAGES, 2051), idx(tmp_path / "l.gz", LABELS, 2049)
    assert prepare.main(["mnist", "--images", str(images), "--labels", str(labels), "--out", str(tmp_path / "o"),
                         "--start", "1", "--stop", "2"]) == 0
    assert [p.name for p in (tmp_path / "o").rglob("*.png")] == ["00001.png"]
    short = idx(tmp_path / "short.gz", LABELS[:2], 2049)
    assert prepare.main(["mnist", "--images", str(images), "--labels", str(short), "--out", str(tmp_path / "x")]) == 2
    assert "3 images" in capsys.readouterr().err
    assert prepare.main(["mnist", "--images", str(labels), "--labels", str(labels), "--out", str(tmp_path / "x")]) == 2
    assert "not an IDX images" in capsys.readouterr().err
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8bnot really gzip")
    assert prepare.main(["mnist", "--images", str(tmp_path / "bad.gz"), "--labels", str(labels), "--out", "x"]) == 2
    assert "broken gzip" in capsys.readouterr().err
    truncated = idx(tmp_path / "t", IMAGES, 2051, compress=False)
    truncated.write_bytes(truncated.read_bytes()[:-1])
    argv = ["mnist", "--images", str(truncated), "--labels", str(labels), "--out", str(tmp_path / "x")]
    assert prepare.main(argv) == 2
    assert "header says" in capsys.readouterr().err


def test_mnist_m_copies_files_by_label_file(tmp_path, capsys):
    (tmp_path / "png").mkdir()
    for i in range(3):
        Image.new("RGB", (32, 32), (i * 50, 0, 0)).save(tmp_path / "png" / f"{i:08d}.png")
    labels = tmp_path / "labels.txt"
    labels.write_text("00000000.png 5\n00000001.png 0\n00000002.png 5\n")
    args = ["mnist_m", "--images-dir", str(tmp_path / "png"), "--labels", str(labels), "--out", str(tmp_path / "o")]
    assert prepare.main(args) == 0
    assert (tmp_path / "o" / "5" / "00002.png").read_bytes() == (tmp_path / "png" / "00000002.png").read_bytes()
    labels.write_text("00000000.png 5\n00000009.png 1\n")
    assert prepare.main(args) == 2
    assert "missing" in capsys.readouterr().err
    labels.write_text("00000000.png five\n")
    assert prepare.main(args) == 2
    assert "labels.txt:1" in capsys.readouterr().err


def test_usps_from_npz(tmp_path, capsys):
    data = np.linspace(0, 1, 2 * 256, dtype=np.float32).reshape(2, 256)
    np.savez(tmp_path / "u.npz", data=data, target=np.array([3, 1], dtype=np.int32))
    assert prepare.main(["usps", "--npz", str(tmp_path / "u.npz"), "--out", str(tmp_path / "o")]) == 0
    pixels = np.array(Image.open(tmp_path / "o" / "3" / "00000.png"))
    assert pixels.shape == (16, 16) and pixels[0, 0] == 0 and pixels[-1, -1] == round(255 * 255 / 511)
    np.savez(tmp_path / "bad.npz", data=data[:, :100], target=np.array([3, 1]))
    assert prepare.main(["usps", "--npz", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "x")]) == 2
    assert "expected (n, 256)" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["mnist", "mnist_m", "usps"])
def test_registered_in_prepare(command):
    assert command in prepare.SUBCOMMANDS
