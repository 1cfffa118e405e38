"""The gallery pairs inputs with outputs, pages them, reuses thumbnails and never writes into the input folder."""

import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image

from translate import cli
from translate.convert.gallery import build_gallery


def make_pairs(root: Path, count: int) -> tuple[Path, Path]:
    inp, out = root / "in", root / "out"
    for i in range(count):
        folder = "sub/" if i % 2 else ""
        for base, ext in ((inp, ".jpg"), (out, ".png")):
            (base / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((40, 60, 3), i, np.uint8)).save(base / f"{folder}{i:03d} name{ext}")
    return inp, out


def links(page: Path) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]+)"', page.read_text())


def test_pages_of_thumbnails_link_to_real_files(tmp_path):
    inp, out = make_pairs(tmp_path, 5)
    before = sorted(inp.rglob("*"))
    index = build_gallery(inp, out, per_page=2, thumb_size=16)
    pages = sorted(index.parent.glob("*.html"))
    assert [p.name for p in pages] == ["index.html", "page-2.html", "page-3.html"]
    for page in pages:
        for link in links(page):
            assert (page.parent / unquote(link)).is_file(), link
    thumbs = list((index.parent / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == 10 and all(max(Image.open(t).size) <= 16 for t in thumbs)
    assert sorted(inp.rglob("*")) == before  # the input folder is only read
    assert 'loading="lazy"' in index.read_text()


def test_rebuilding_reuses_thumbnails(tmp_path):
    inp, out = make_pairs(tmp_path, 3)
    build_gallery(inp, out, thumb_size=16)
    thumb = next((out / "_gallery" / "thumbs").rglob("*.jpg"))
    stamp = thumb.stat().st_mtime_ns
    build_gallery(inp, out, thumb_size=16)
    assert thumb.stat().st_mtime_ns == stamp


def test_unreadable_output_is_shown_as_text_and_command_errors(tmp_path, capsys):
    inp, out = make_pairs(tmp_path, 2)
    (out / "000 name.png").write_bytes(b"broken")
    assert cli.main(["gallery", str(inp), str(out)]) == 0
    assert "(unreadable)" in (out / "_gallery" / "index.html").read_text()
    assert cli.main(["gallery", str(inp), str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["gallery", str(inp), str(inp)]) == 2
    assert not (inp / "_gallery").exists()


def test_thumbnails_show_a_progress_bar_unless_told_not_to(tmp_path, capsys):
    from tests.helpers import write_images
    from translate import cli

    write_images(tmp_path / "in", 3, (16, 16), seed=0)
    write_images(tmp_path / "out", 3, (16, 16), seed=1)
    assert cli.main(["gallery", str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "thumbnails: 100%" in err and "6/6" in err  # an input and an output thumbnail per pair
    assert cli.main(["gallery", str(tmp_path / "in"), str(tmp_path / "out"), "--no-progress"]) == 0
    assert "thumbnails" not in capsys.readouterr().err
