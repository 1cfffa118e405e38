"""datasets/prepare.py: the URL/count table, ingesting local copies (zip, tar, folder), resumable download against
a loopback server, edge maps, and the facades recipe on the layout it writes. No test reaches the network."""

import http.server
import importlib.util
import io
import logging
import sys
import tarfile
import threading
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import shared_data
from translate.data.folders import list_images

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("datasets_prepare", REPO / "datasets" / "prepare.py")
prepare = sys.modules["datasets_prepare"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prepare)  # also puts datasets/ on sys.path for the prepare_* modules
import prepare_catalog as catalog  # noqa: E402
import prepare_edges as edges  # noqa: E402
import prepare_fetch as fetch  # noqa: E402


def jpeg_bytes(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_every_dataset_has_a_canonical_url_or_instructions_and_counts():
    assert {"facades", "maps", "edges2shoes", "edges2handbags", "night2day", "cityscapes", "horse2zebra",
            "apple2orange", "summer2winter_yosemite", "monet2photo"} <= set(catalog.SOURCES)
    for name, source in catalog.SOURCES.items():
        assert source.counts and all(isinstance(n, int) and n > 0 for n in source.counts.values()), name
        assert source.origin and source.license, name
        if source.layout == "aligned":
            assert set(source.counts) <= {"train", "val", "test"}, name
            expected_url = f"http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
        else:
            assert source.layout == "unaligned" and set(source.counts) == {"trainA", "trainB", "testA", "testB"}
            expected_url = f"http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
        if source.url is None:
            assert "register" in source.instructions, name
        else:
            assert source.url == expected_url
    assert [n for n, s in catalog.SOURCES.items() if s.url is None] == ["cityscapes"]
    assert catalog.SOURCES["horse2zebra"].counts == {"trainA": 1067, "trainB": 1334, "testA": 120, "testB": 140}
    assert catalog.SOURCES["facades"].counts == {"train": 400, "val": 100, "test": 106}


def test_subcommand_table_covers_every_dataset():
    assert set(catalog.SOURCES) | {"edges", "list"} <= set(prepare.SUBCOMMANDS)


def make_cyclegan_zip(path: Path, counts: dict[str, int]) -> Path:
    """A Kaggle-style mirror: splits one folder down, plus a CSV and macOS junk that must be ignored."""
    with zipfile.ZipFile(path, "w") as zf:
        for split, n in counts.items():
            for i in range(n):
                zf.writestr(f"horse2zebra/{split}/img_{i}.jpg", jpeg_bytes(8, 8, i))
        zf.writestr("horse2zebra/metadata.csv", "id,domain\n")
        zf.writestr("__MACOSX/horse2zebra/._x.jpg", b"junk")
    return path


def test_ingest_a_zip_warns_about_counts_and_is_resumable(tmp_path, caplog, capsys):
    archive = make_cyclegan_zip(tmp_path / "h2z.zip", {"trainA": 3, "trainB": 2, "testA": 1})
    root = tmp_path / "data" / "horse2zebra"
    with caplog.at_level(logging.WARNING, logger="prepare"):
        assert prepare.main(["horse2zebra", "--root", str(root), "--from", str(archive)]) == 0
    assert "trainA 3, trainB 2, testA 1" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "trainA").iterdir()) == ["img_0.jpg", "img_1.jpg", "img_2.jpg"]
    assert not (root / "metadata.csv").exists() and not list(tmp_path.glob("data/.horse2zebra.extract-*"))
    assert "trainA: 3 images, the release has 1067" in caplog.text and "only a warning" in caplog.text
    (root / "trainA" / "img_0.jpg").unlink()  # a second run keeps what is there ...
    assert prepare.main(["horse2zebra", "--root", str(root), "--from", str(archive)]) == 0
    assert len(list((root / "trainA").iterdir())) == 2
    assert prepare.main(["horse2zebra", "--root", str(root), "--from", str(archive), "--overwrite"]) == 0
    assert len(list((root / "trainA").iterdir())) == 3  # ... unless told to replace it


def test_ingest_a_tar_and_a_folder_of_an_aligned_set(tmp_path):
    src = tmp_path / "src" / "facades"
    for split, n in {"train": 4, "val": 2}.items():
        (src / split).mkdir(parents=True)
        for i in range(n):
            (src / split / f"{i + 1}.jpg").write_bytes(jpeg_bytes(16, 8, i))
    with tarfile.open(tmp_path / "facades.tar.gz", "w:gz") as tf:
        tf.add(src, arcname="facades")
    from_tar = prepare.ingest(tmp_path / "facades.tar.gz", tmp_path / "a", catalog.SOURCES["facades"])
    from_folder = prepare.ingest(tmp_path / "src", tmp_path / "b", catalog.SOURCES["facades"])
    assert from_tar == from_folder == {"train": 4, "val": 2}
    from translate.data.folders import detect_layout

    assert detect_layout(tmp_path / "a", "train") == "aligned"


def test_archives_that_escape_the_target_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../outside.jpg", b"x")
    with pytest.raises(ValueError, match="outside"):
        fetch.extract(tmp_path / "evil.zip", tmp_path / "into")
    assert not (tmp_path / "outside.jpg").exists()


def test_ingest_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        prepare.ingest(tmp_path / "nothing-here", tmp_path / "root", catalog.SOURCES["facades"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no split folder"):
        prepare.ingest(tmp_path / "empty", tmp_path / "root", catalog.SOURCES["facades"])


def test_cityscapes_prints_instructions(tmp_path, capsys):
    assert prepare.main(["cityscapes", "--root", str(tmp_path / "c")]) == 1
    assert "cityscapes-dataset.com" in capsys.readouterr().err


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `payload`, honouring 'Range: bytes=N-' unless `ignore_range`."""

    payload = b""
    ignore_range = False

    def do_GET(self):
        start = 0
        if self.headers.get("Range") and not self.ignore_range:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload) - start))
        self.end_headers()
        self.wfile.write(self.payload[start:])

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("ignore_range", [False, True])
def test_download_resumes_a_partial_file_from_a_loopback_server(tmp_path, monkeypatch, ignore_range):
    monkeypatch.undo()  # this test talks to its own server on 127.0.0.1 only
    payload = bytes(range(256)) * 1000
    handler = type("Handler", (RangeHandler,), {"payload": payload, "ignore_range": ignore_range})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "set.zip"
        (tmp_path / "set.zip.part").write_bytes(payload[:1000])  # what an interrupted run left
        fetch.download(f"http://127.0.0.1:{server.server_port}/set.zip", dest, timeout=10, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert dest.read_bytes() == payload and not (tmp_path / "set.zip.part").exists()


def test_canny_sketch_is_thin_dark_strokes_on_white():
    photo = torch.zeros(2, 3, 64, 64)
    photo[:, :, 16:48, 16:48] = 1.0  # a white square on black: its outline is the only edge
    sketch = edges.sketch(photo)
    assert sketch.shape == (2, 1, 64, 64) and set(sketch.unique().tolist()) <= {0.0, 1.0}
    dark = sketch[0, 0] == 0
    assert dark.float().mean() < 0.1  # mostly white paper
    assert dark[14:18, 16:48].any(dim=0).float().mean() > 0.9  # the top side is drawn along its length
    assert not dark[24:40, 24:40].any() and not dark[:8, :8].any()  # nothing inside or far outside
    thick = edges.sketch(photo, thickness=3)
    assert (thick == 0).sum() > (sketch == 0).sum()
    assert edges.sketch(photo, method="xdog").shape == (2, 1, 64, 64)
    with pytest.raises(ValueError, match="unknown edge method"):
        edges.sketch(photo, method="hed")


def test_edges_dataset_from_photos(tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i, (w, h) in enumerate([(40, 30), (30, 50), (64, 64), (50, 20), (33, 33)]):
        folder = photos / "sub" if i == 4 else photos
        Image.fromarray(np.full((h, w, 3), 40 * i, dtype=np.uint8)).save(folder / f"p{i}.png")
    out = tmp_path / "edges"
    assert prepare.main(["edges", "--photos", str(photos), "--out", str(out), "--size", "32",
                         "--val-fraction", "0.4", "--format", "png"]) == 0
    written = sorted(out.glob("*/*.png"))
    assert len(list(out.glob("train/*.png"))) == 3 and len(list(out.glob("val/*.png"))) == 2
    assert "sub_p4.png" in [p.name for p in written]
    pair = np.asarray(Image.open(written[0]))
    assert pair.shape == (32, 64, 3) and (pair[:, :32] == 255).all()  # flat photo: blank sketch | photo
    assert prepare.main(["edges", "--photos", str(photos), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_fit_square_crops_or_pads():
    photo = torch.rand(3, 20, 40)
    assert edges.fit_square(photo, 16, "crop").shape == (3, 16, 16)
    padded = edges.fit_square(photo, 16, "pad")
    assert padded.shape == (3, 16, 16) and (padded[:, :4] == 1).all()  # white bands above and below


def test_facades_recipe_reads_the_aligned_layout():
    from translate import config
    from translate.data.folders import detect_layout

    cfg = config.load(REPO / "recipes" / "facades.yaml", preset="cpu")
    assert cfg.model.name == "pix2pix" and cfg.data.direction == "BtoA" and cfg.model.generator == "unet_128"
    root = shared_data((REPO / cfg.data.root).resolve())
    assert detect_layout(root, "train") == detect_layout(root, "val") == "aligned"


def test_without_root_a_dataset_goes_where_the_recipes_look(tmp_path, monkeypatch):
    from translate import config

    monkeypatch.setenv("TRANSLATE_DATA", str(tmp_path / "data"))
    archive = make_cyclegan_zip(tmp_path / "h2z.zip", {"trainA": 2, "trainB": 2})
    assert prepare.main(["horse2zebra", "--from", str(archive)]) == 0
    root = config.load(REPO / "recipes" / "horse2zebra.yaml").data.root
    assert root == str(tmp_path / "data" / "horse2zebra") and len(list_images(root)) == 4
