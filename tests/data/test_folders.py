"""list_images, detect_layout and twin-folder pairing, including the error messages."""

import pytest
from PIL import Image

from translate.data.folders import detect_layout, list_images, match_pairs


def touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)
    return path


def test_list_images_sorted_recursive_and_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "sub/c.tif", ".hidden.png", ".cache/d.png"]:
        touch_image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    assert list_images(tmp_path) == [tmp_path / "a.JPG", tmp_path / "b.png", tmp_path / "sub" / "c.tif"]
    assert list_images(tmp_path, recursive=False) == [tmp_path / "a.JPG", tmp_path / "b.png"]


def test_list_images_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_images(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images found in .*empty"):
        list_images(tmp_path / "empty")


def test_detect_layouts(tmp_path):
    touch_image(tmp_path / "aligned" / "train" / "1.jpg")
    touch_image(tmp_path / "twin" / "train" / "A" / "1.png")
    touch_image(tmp_path / "twin" / "train" / "B" / "1.png")
    touch_image(tmp_path / "unaligned" / "trainA" / "1.png")
    touch_image(tmp_path / "unaligned" / "trainB" / "2.png")
    assert detect_layout(tmp_path / "aligned", "train") == "aligned"
    assert detect_layout(tmp_path / "twin", "train") == "twin"
    assert detect_layout(tmp_path / "unaligned", "train") == "unaligned"


def test_detect_layout_errors_say_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_layout(tmp_path / "missing", "train")
    (tmp_path / "test").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        detect_layout(tmp_path, "test")
    message = str(info.value)
    assert "aligned" in message and "twin" in message and "testA" in message and "testB" in message


def test_match_pairs_by_relative_stem(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    for name in ["x.png", "sub/y.png"]:
        touch_image(a / name)
    for name in ["x.bmp", "sub/y.jpg"]:
        touch_image(b / name)
    assert match_pairs(a, b) == [(a / "sub" / "y.png", b / "sub" / "y.jpg"), (a / "x.png", b / "x.bmp")]


def test_match_pairs_missing_partner_and_ambiguous(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    for name in ["1.png", "2.png", "lonely.png"]:
        touch_image(a / name)
    for name in ["1.png", "2.png", "stray.png"]:
        touch_image(b / name)
    with pytest.raises(ValueError, match=r"lonely.*stray"):
        match_pairs(a, b)
    touch_image(b / "lonely.png")
    touch_image(a / "stray.jpg")
    touch_image(a / "stray.png")
    with pytest.raises(ValueError, match="ambiguous"):
        match_pairs(a, b)
