"""load_image: every Pillow mode to a fixed channel count, EXIF orientation, and loud, named failures."""

import pickle

import numpy as np
import pytest
from PIL import Image
from torch._utils import ExceptionWrapper

from translate.data.images import ImageReadError, is_image_file, load_image


def save(tmp_path, name, img, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


def test_gray_to_1_3_4_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = save(tmp_path, "g.png", Image.fromarray(gray, "L"))
    one, three, four = (load_image(path, c) for c in (1, 3, 4))
    assert one.shape == (3, 4, 1) and one.dtype == np.uint8
    np.testing.assert_array_equal(one[:, :, 0], gray)
    np.testing.assert_array_equal(three, np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(four[:, :, :3], three)
    assert (four[:, :, 3] == 255).all()


def test_rgb_to_gray_uses_pillow_luma(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    path = save(tmp_path, "c.png", Image.fromarray(rgb))
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(load_image(path, 1)[:, :, 0], expected)


def test_rgba_to_rgb_drops_alpha(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, (4, 5, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 0  # fully transparent pixel keeps its stored colour
    path = save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(load_image(path, 3), rgba[:, :, :3])
    np.testing.assert_array_equal(load_image(path, 4), rgba)


def test_la_image(tmp_path):
    la = np.stack([np.full((3, 3), 77, np.uint8), np.full((3, 3), 9, np.uint8)], axis=2)
    path = save(tmp_path, "la.png", Image.fromarray(la, "LA"))
    assert (load_image(path, 1) == 77).all()
    assert (load_image(path, 3) == 77).all()
    rgba = load_image(path, 4)
    assert (rgba[:, :, :3] == 77).all() and (rgba[:, :, 3] == 9).all()


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_image(tmp_path, transparent):
    pal = Image.new("P", (4, 2))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putdata([0, 1, 0, 1, 1, 0, 1, 0])
    kw = {"transparency": 1} if transparent else {}
    path = save(tmp_path, "p.png", pal, **kw)
    rgb = load_image(path, 3)
    assert rgb.shape == (2, 4, 3)
    np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(rgb[0, 1], [0, 255, 0])
    alpha = load_image(path, 4)[:, :, 3]
    assert alpha[0, 0] == 255 and alpha[0, 1] == (0 if transparent else 255)


@pytest.mark.parametrize("name", ["d16.png", "d16.tif"])
def test_16bit_scales_not_clips(tmp_path, name):
    data = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = save(tmp_path, name, Image.fromarray(data))
    with Image.open(path) as img:
        assert img.mode.startswith("I")
    np.testing.assert_array_equal(load_image(path, 1)[:, :, 0], [[0, 1, 128, 255]])
    assert (load_image(path, 3)[0, 3] == 255).all()


def test_16bit_big_endian_tiff(tmp_path):
    data = np.array([[0, 32768, 65535]], dtype=">u2")
    path = save(tmp_path, "be.tif", Image.frombytes("I;16B", (3, 1), data.tobytes()))
    with Image.open(path) as img:
        assert img.mode == "I;16B"
    np.testing.assert_array_equal(load_image(path, 1)[:, :, 0], [[0, 128, 255]])


def test_float_and_bilevel_and_cmyk(tmp_path):
    f = save(tmp_path, "f.tif", Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F"))
    np.testing.assert_array_equal(load_image(f, 1)[:, :, 0], [[0, 128, 255]])
    bw = save(tmp_path, "b.png", Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1"))
    np.testing.assert_array_equal(load_image(bw, 1)[:, :, 0], [[0, 255]])
    cmyk = save(tmp_path, "k.tif", Image.new("CMYK", (3, 2), (0, 255, 255, 0)))  # pure red
    np.testing.assert_array_equal(load_image(cmyk, 3)[0, 0], [255, 0, 0])


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high, white block in the top-left corner
    arr[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = save(tmp_path, "r.jpg", Image.fromarray(arr), exif=exif, quality=95)
    out = load_image(path, 3)
    assert out.shape == (40, 20, 3)
    assert out[:8, -8:].mean() > 200 and out[-8:, :8].mean() < 50  # top-left went to the top-right


@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "text", "directory"])
def test_unreadable_files_raise_named_error(tmp_path, case):
    path = tmp_path / "bad.png"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path = tmp_path / "bad.jpg"
        good = tmp_path / "good.jpg"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(good)
        path.write_bytes(good.read_bytes()[:800])
    elif case == "text":
        path.write_text("this is not an image\n")
    elif case == "directory":
        path.mkdir()
    with pytest.raises(ImageReadError) as info:
        load_image(path, 3)
    assert str(path) in str(info.value) and isinstance(info.value, OSError)
    assert info.value.path == str(path) and info.value.reason


def test_error_survives_pickle_and_worker_reraise(tmp_path):
    err = ImageReadError("/x/y.png", "file is empty (0 bytes)")
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.reason, str(back)) == (err.path, err.reason, str(err))
    (tmp_path / "w.png").write_bytes(b"")
    try:
        load_image(tmp_path / "w.png")
    except ImageReadError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")  # what a worker sends back
    with pytest.raises(ImageReadError, match=r"worker process 0(.|\n)*w\.png"):
        wrapped.reraise()


def test_bad_channel_count(tmp_path):
    path = save(tmp_path, "g.png", Image.new("L", (2, 2)))
    with pytest.raises(ValueError, match="channels"):
        load_image(path, 2)


def test_is_image_file():
    assert all(is_image_file(n) for n in ["a.jpg", "B.JPEG", "c.Png", "d.bmp", "e.tif", "f.TIFF", "g.webp",
                                          "h.ppm", "i.pgm"])
    assert not any(is_image_file(n) for n in ["a.txt", "b", "c.png.bak", "d.gif"])
