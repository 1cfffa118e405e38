"""Digit sets into the labeled folder spec OUT/<label>/<index>.png, original pixels (MNIST and USPS grey, MNIST-M
RGB), so the domain adaptation recipes can read them:

  python datasets/prepare.py mnist --images F-images-idx3-ubyte.gz --labels F-labels-idx1-ubyte.gz --out DIR
  python datasets/prepare.py mnist_m --images-dir DIR --labels mnist_m_train_labels.txt --out DIR
  python datasets/prepare.py usps --npz usps_train.npz --out DIR

--start / --stop keep records [start, stop) only (record order: the IDX/npz order, the label file's order for
MNIST-M), e.g. to split ../shared/data MNIST-M into target-train 0-3999 and held-out 4000-4999. Files are named by
record index, so the splits of one set never collide. Any mismatch (magic number, counts, sizes, missing files)
is a ValueError naming the file.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (gzip or raw) as uint8: (n, rows, cols) for images (magic 2051), (n,) for labels (2049)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: broken gzip file ({err})") from err
    dims = magic & 0xFF
    header = 4 + 4 * dims
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
        kind = "images (idx3)" if magic == IDX_IMAGES else "labels (idx1)"
        raise ValueError(f"{path}: not an IDX {kind} file (magic {found!r}, expected {magic})")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path}: header says {shape} ({expected} bytes), the file holds {len(data)} bytes")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def write_labeled(images, labels, out: Path, start: int, stop: int | None) -> int:
    """Write records [start, stop) as OUT/<label>/<index>.png; returns the count. `images[i]` may be a path
    (copied as it is) or an array (saved as PNG)."""
    stop = len(labels) if stop is None else min(stop, len(labels))
    if not 0 <= start < stop:
        raise ValueError(f"--start {start} / --stop {stop}: empty range for {len(labels)} records")
    for i in range(start, stop):
        folder = out / str(int(labels[i]))
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(images[i], Path):
            shutil.copyfile(images[i], folder / f"{i:05d}{images[i].suffix}")
        else:
            Image.fromarray(images[i]).save(folder / f"{i:05d}.png")
    return stop - start


def convert_mnist(images: Path, labels: Path, out: Path, start: int = 0, stop: int | None = None) -> int:
    pixels, classes = read_idx(images, IDX_IMAGES), read_idx(labels, IDX_LABELS)
    if len(pixels) != len(classes):
        raise ValueError(f"{images} holds {len(pixels)} images but {labels} holds {len(classes)} labels")
    return write_labeled(pixels, classes, out, start, stop)


def convert_mnist_m(images_dir: Path, labels: Path, out: Path, start: int = 0, stop: int | None = None) -> int:
    """MNIST-M: a folder of PNGs and a text file of `filename label` lines (the DANN authors' release)."""
    if not images_dir.is_dir():
        raise ValueError(f"{images_dir}: not a folder of MNIST-M images")
    names, classes = [], []
    for number, line in enumerate(labels.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"{labels}:{number}: expected 'filename label', got {line!r}")
        names.append(images_dir / parts[0])
        classes.append(int(parts[1]))
    if not names:
        raise ValueError(f"{labels}: no 'filename label' lines")
    missing = [p.name for p in names if not p.is_file()]
    if missing:
        raise ValueError(f"{labels} names {len(missing)} files missing from {images_dir}, e.g. {missing[0]}")
    return write_labeled(names, classes, out, start, stop)


def convert_usps(npz: Path, out: Path, start: int = 0, stop: int | None = None) -> int:
    """USPS as an npz with `data` (n, 256) in [0, 1] (16x16 row-major) and `target` (n,) labels."""
    try:
        arrays = np.load(npz)
        data, target = arrays["data"], arrays["target"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{npz}: not a USPS npz with arrays data and target ({err})") from err
    if data.ndim != 2 or data.shape[1] != 256 or len(data) != len(target):
        raise ValueError(f"{npz}: data {data.shape} / target {target.shape}: expected (n, 256) and (n,)")
    if data.min() < 0 or data.max() > 1:
        raise ValueError(f"{npz}: data outside [0, 1] ({data.min()} .. {data.max()})")
    pixels = np.rint(data.reshape(-1, 16, 16) * 255).astype(np.uint8)
    return write_labeled(pixels, target, out, start, stop)


def _range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="labeled folder to write: OUT/<label>/<index>.png")
    parser.add_argument("--start", type=int, default=0, help="first record to keep (default 0)")
    parser.add_argument("--stop", type=int, help="keep records before this one (default: all)")


def add_mnist_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, type=Path, help="IDX3 images file, .gz or raw")
    parser.add_argument("--labels", required=True, type=Path, help="IDX1 labels file, .gz or raw")
    _range_arguments(parser)


def add_mnist_m_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images-dir", required=True, type=Path, help="folder of MNIST-M PNG files")
    parser.add_argument("--labels", required=True, type=Path, help="text file of 'filename label' lines")
    _range_arguments(parser)


def add_usps_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--npz", required=True, type=Path, help="npz with data (n, 256) in [0, 1] and target (n,)")
    _range_arguments(parser)


def _done(name: str, count: int, out: Path) -> int:
    print(f"{name}: {count} images in {out}")
    return 0


def run_mnist(args) -> int:
    return _done("mnist", convert_mnist(args.images, args.labels, args.out, args.start, args.stop), args.out)


def run_mnist_m(args) -> int:
    return _done("mnist_m", convert_mnist_m(args.images_dir, args.labels, args.out, args.start, args.stop), args.out)


def run_usps(args) -> int:
    return _done("usps", convert_usps(args.npz, args.out, args.start, args.stop), args.out)


# rows for prepare.py's SUBCOMMANDS: name -> (help, add_arguments, run)
COMMANDS = {
    "mnist": ("labeled folder from MNIST IDX files", add_mnist_arguments, run_mnist),
    "mnist_m": ("labeled folder from MNIST-M PNGs + label file", add_mnist_m_arguments, run_mnist_m),
    "usps": ("labeled folder from a USPS npz", add_usps_arguments, run_usps),
}
