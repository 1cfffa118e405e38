"""Sketch augmentation (translate/data/sketch.py) on drawn test images: each op keeps shape, dtype and range, changes
A as documented (thicker, broken, wobbled, re-made from B) and never B; one key, one sketch; the config option;
evaluation never augmented; a pix2pix step on an augmented batch; the (b)-sketch tool of datasets/prepare.py."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy import ndimage

from tests.helpers import PIX2PIX_TINY, FakeAccelerator, shared_data
from translate import config
from translate.data import PairedDataset
from translate.data.sketch import (
    OPS,
    SketchAugment,
    drop_strokes,
    edge_sketch,
    hysteresis,
    parse_ops,
    remake,
    thicken,
    wobble,
)
from translate.models import MODELS
from translate.models.common import Progress

REPO = Path(__file__).resolve().parents[2]
KEYS = range(16)


def drawing_array(size: int = 96) -> np.ndarray:
    """A bag-like line drawing, HxWx3 uint8: dark 1-2 px strokes on white."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    s = size / 96
    draw.rectangle([16 * s, 36 * s, 80 * s, 84 * s], outline="black", width=2)
    draw.arc([30 * s, 10 * s, 66 * s, 60 * s], 180, 360, fill="black", width=2)
    draw.line([16 * s, 60 * s, 80 * s, 60 * s], fill="black", width=1)
    draw.line([48 * s, 36 * s, 48 * s, 84 * s], fill="black", width=1)
    return np.asarray(image)


def photo_array(size: int = 96) -> np.ndarray:
    """The 'photo' of that bag: a coloured body and handle on a light gradient, HxWx3 uint8."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = Image.fromarray(np.dstack([200 + xx * 40 // size, 200 + yy * 40 // size, np.full_like(xx, 220)])
                            .astype(np.uint8))
    s = size / 96
    draw = ImageDraw.Draw(image)
    draw.rectangle([16 * s, 36 * s, 80 * s, 84 * s], fill=(120, 40, 30))
    draw.arc([30 * s, 10 * s, 66 * s, 60 * s], 180, 360, fill=(60, 30, 20), width=4)
    return np.asarray(image)


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1


def dark(sketch: torch.Tensor) -> np.ndarray:
    return (sketch[0] < 0).numpy()


def components(sketch: torch.Tensor) -> int:
    return ndimage.label(dark(sketch), structure=np.ones((3, 3)))[1]


@pytest.fixture
def pair():
    return tensor(drawing_array()), tensor(photo_array())


def test_parse_ops():
    assert parse_ops("") == () and parse_ops("all") == OPS
    assert parse_ops(" wobble, width ") == ("width", "wobble")  # always applied in OPS order
    with pytest.raises(ValueError, match="'blur'.*valid: remake, strokes, width, dropout, wobble"):
        parse_ops("width,blur")


@pytest.mark.parametrize("op", OPS)
def test_each_op_keeps_shape_dtype_range_changes_a_and_never_b(pair, op):
    a, b = pair
    b_before = b.clone()
    augment = SketchAugment(op)
    outs = [augment(a, b, key) for key in KEYS]
    for out in outs:
        assert out.shape == a.shape and out.dtype == a.dtype
        assert out.min() >= -1 and out.max() <= 1
    changed = [not torch.equal(out, a) for out in outs]
    assert 0 < sum(changed) < len(KEYS)  # applied now and then: some samples keep the dataset's edges
    assert torch.equal(b, b_before)


def test_same_key_same_sketch_other_keys_other_sketches(pair):
    a, b = pair
    augment = SketchAugment("all")
    torch.manual_seed(1)
    first = augment(a, b, 12345)
    state = torch.random.get_rng_state()
    torch.manual_seed(2)  # the global RNG plays no part ...
    assert torch.equal(first, SketchAugment("all")(a, b, 12345))  # ... nor does the instance (worker)
    torch.manual_seed(1)
    augment(a, b, 12345)
    assert torch.equal(torch.random.get_rng_state(), state)  # and it is not consumed
    sketches = {augment(a, b, key).numpy().tobytes() for key in KEYS}
    assert len(sketches) >= len(KEYS) - 1  # at most one key with no op applied at all


def test_share_p_keeps_the_rest_clean_and_the_augmented_ones_unchanged(pair):
    a, b = pair
    every, half = SketchAugment("width", p=1.0), SketchAugment("width", p=0.5)
    augmented = [key for key in range(200) if not torch.equal(every(a, b, key), a)]  # width's own p is 0.5
    kept = [key for key in augmented if torch.equal(half(a, b, key), a)]
    assert 0.3 < len(kept) / len(augmented) < 0.7  # about half of them left clean, chosen by key
    assert kept == [key for key in augmented if torch.equal(SketchAugment("width", p=0.5)(a, b, key), a)]
    for key in set(augmented) - set(kept):  # a sample that is augmented is augmented exactly as with p=1
        assert torch.equal(half(a, b, key), every(a, b, key))
    assert all(torch.equal(SketchAugment("all", p=0.0)(a, b, key), a) for key in range(20))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"share of samples augmented, in \[0, 1\]"):
            SketchAugment("width", p=bad)


def test_width_thickens_dark_strokes(pair):
    a, _ = pair
    counts = [dark(a).sum()] + [dark(thicken(a[None], k)[0]).sum() for k in (2, 3, 5)]
    assert counts == sorted(counts) and counts[-1] > 2.5 * counts[0]
    line = torch.ones(1, 1, 9, 9)
    line[..., 4, :] = -1
    assert (thicken(line, 3)[0, 0, :, 4] < 0).tolist() == [False] * 3 + [True] * 3 + [False] * 3  # 1 px -> 3 px
    for key in KEYS:  # the random op only ever thickens, and keeps every stroke pixel
        out = SketchAugment("width")(a, b=a, seed=key)
        assert (out <= a).all()


def test_dropout_breaks_strokes_into_pieces():
    lines = np.full((96, 96, 3), 255, np.uint8)
    lines[8:96:12, 4:92] = 0  # eight separate strokes, 88 px long
    a = tensor(lines)
    stroke = dark(a)
    dropped = drop_strokes(a[None], torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)), 0.25)[0]
    assert (dropped >= a).all()  # only paper is added
    assert 0.1 < 1 - dark(dropped).sum() / stroke.sum() < 0.5
    assert components(dropped) > components(a) + 4
    removed = []
    for key in KEYS:
        out = SketchAugment("dropout")(a, a, key)
        if not torch.equal(out, a):
            removed.append(1 - dark(out).sum() / stroke.sum())
            assert components(out) > components(a)
    assert removed and 0 < min(removed) and max(removed) < 0.6


def test_wobble_moves_strokes_by_a_few_pixels_at_most(pair):
    a, _ = pair
    still = wobble(a[None], torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2))[0]
    torch.testing.assert_close(still, a, rtol=0, atol=1e-4)  # a zero field is the identity
    distance_to_stroke = ndimage.distance_transform_edt(~dark(a))
    moved = 0
    for key in KEYS:
        out = SketchAugment("wobble")(a, a, key)
        moved += not torch.equal(out, a)
        assert distance_to_stroke[dark(out)].max() <= 4 * 2**0.5 + 1  # 4 px per axis, + 1 for interpolation
        assert dark(out).sum() > 0.7 * dark(a).sum()  # strokes move, they do not vanish
    assert moved


def test_remake_draws_edges_from_b(pair):
    a, b = pair
    expected = edge_sketch((b[None] + 1) / 2, "xdog", sigma=2.0) * 2 - 1
    torch.testing.assert_close(remake(b[None], 3, "xdog", 2.0), expected.expand(-1, 3, -1, -1))
    assert remake(b[None, :1], 1, "canny", 2.0).shape == (1, 1, 96, 96)  # a grey photo, a one-channel sketch
    to_b_edges = ndimage.distance_transform_edt(~dark(edge_sketch((b[None] + 1) / 2, "canny")[0] * 2 - 1))
    augment, blank = SketchAugment("remake"), torch.ones_like(a)
    remade = [key for key in KEYS if not torch.equal(augment(a, b, key), a)]
    assert remade
    for key in remade:
        out = augment(a, b, key)
        assert torch.equal(out, augment(blank, b, key))  # A's own edges are gone: only B matters
        assert to_b_edges[dark(out)].max() <= 5  # on B's contours (XDoG draws a band a few px wide)


def test_hysteresis_equals_growing_from_the_strong_pixels():
    generator = torch.Generator().manual_seed(0)
    weak = torch.rand(3, 1, 40, 40, generator=generator) < 0.45
    strong = torch.rand(3, 1, 40, 40, generator=generator) < 0.02
    grown = strong & weak
    while not torch.equal(grown, step := F.max_pool2d(grown.float(), 3, 1, 1).bool() & weak):
        grown = step
    assert torch.equal(hysteresis(strong, weak), grown)


def test_config_option_validates():
    assert config.load(None, ["model.name=pix2pix"]).data.sketch_augment == ""
    assert config.load(None, ["model.name=pix2pix", "data.sketch_augment=all"]).data.sketch_augment == "all"
    with pytest.raises(config.ConfigError, match=r"data\.sketch_augment: unknown .*'blur'"):
        config.load(None, ["model.name=pix2pix", "data.sketch_augment=width,blur"])
    with pytest.raises(config.ConfigError, match=r"data\.sketch_augment .*pix2pix.*cyclegan"):
        config.load(None, ["model.name=cyclegan", "data.sketch_augment=width"])
    with pytest.raises(config.ConfigError, match=r"data\.sketch_augment_p .*got 2"):
        config.load(None, ["model.name=pix2pix", "data.sketch_augment=all", "data.sketch_augment_p=2"])


def write_aligned(root: Path, n: int = 3, size: int = 64) -> Path:
    (root / "train").mkdir(parents=True)
    for i in range(n):
        ab = np.concatenate([drawing_array(size), photo_array(size)], axis=1)
        Image.fromarray(ab).save(root / "train" / f"{i}.png")
    return root


def test_training_augments_a_evaluation_never(tmp_path):
    root = write_aligned(tmp_path)
    plain = {train: PairedDataset(root, load_size=64, crop_size=64, train=train) for train in (True, False)}
    augmented = {train: PairedDataset(root, load_size=64, crop_size=64, train=train, sketch_augment="all")
                 for train in (True, False)}
    changed = 0
    for key in [(i % 3, i) for i in range(12)]:
        base, item = plain[True][key], augmented[True][key]
        assert torch.equal(item["B"], base["B"])  # the same crop and flip, and B untouched
        changed += not torch.equal(item["A"], base["A"])
        evaluation = augmented[False][key]
        assert torch.equal(evaluation["A"], plain[False][key]["A"])
    assert changed >= 9
    assert augmented[False].sketch is None
    with pytest.raises(ValueError, match="'blur'"):
        PairedDataset(root, train=False, sketch_augment="blur")  # a typo is refused in evaluation too
    cfg = config.load(None, [*PIX2PIX_TINY, f"data.root={root}", "data.sketch_augment=all"])
    assert MODELS["pix2pix"].dataset(cfg.data, cfg.model, train=False).sketch is None
    assert MODELS["pix2pix"].dataset(cfg.data, cfg.model).sketch.ops == OPS
    cfg = config.load(None, [*PIX2PIX_TINY, f"data.root={root}", "data.sketch_augment=all",
                             "data.sketch_augment_p=0.5"])
    assert MODELS["pix2pix"].dataset(cfg.data, cfg.model).sketch.p == 0.5  # the config reaches the dataset


def test_pix2pix_train_step_on_an_augmented_batch(tmp_path):
    cfg = config.load(None, [*PIX2PIX_TINY, f"data.root={write_aligned(tmp_path)}", "data.sketch_augment=all"])
    entry = MODELS["pix2pix"]
    dataset = entry.dataset(cfg.data, cfg.model)
    batch = torch.utils.data.default_collate([dataset[(i % len(dataset), i)] for i in range(2)])
    out = entry.build(cfg.model).train_step(batch, FakeAccelerator(), Progress(0, 1))
    assert set(out) == {"loss_D", "loss_G_GAN", "loss_G_L1"} and all(np.isfinite(v) for v in out.values())


def test_b_sketches_of_a_paired_set(tmp_path):
    """datasets/prepare.py edges --pairs: XDoG sketches of the photo halves, same names, all in OUT/val."""
    spec = importlib.util.spec_from_file_location("datasets_prepare", REPO / "datasets" / "prepare.py")
    prepare = sys.modules["datasets_prepare"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    root = write_aligned(tmp_path / "set")
    out = tmp_path / "b"
    assert prepare.main(["edges", "--photos", str(root / "train"), "--pairs", "--out", str(out), "--method", "xdog",
                         "--thickness", "3", "--size", "64", "--val-fraction", "1", "--format", "png"]) == 0
    assert sorted(p.name for p in (out / "val").iterdir()) == ["0.png", "1.png", "2.png"]
    written = np.asarray(Image.open(out / "val" / "0.png"))
    np.testing.assert_array_equal(written[:, 64:], photo_array(64))  # the photo is B itself
    expected = edge_sketch(torch.from_numpy(photo_array(64).copy()).permute(2, 0, 1)[None].float() / 255, "xdog",
                           thickness=3)
    assert np.abs(written[:, :64, 0] / 255 - expected[0, 0].numpy()).max() <= 1 / 255 + 1e-6


def test_a_real_handbag_pair():
    """One edges2handbags pair: HED edges thickened, broken and wobbled as on drawings, the photo untouched."""
    root = shared_data("edges2handbags")  # skipped where missing, a failure on CI (CI=true)
    plain = PairedDataset(root, load_size=256, crop_size=256)
    augmented = PairedDataset(root, load_size=256, crop_size=256, sketch_augment="all")
    index = next(i for i, (path, _) in enumerate(plain.pairs) if path.name == "1001_AB.jpg")
    a = plain[(index, 0)]["A"]
    assert dark(thicken(a[None], 3)[0]).sum() > 2 * dark(a).sum()
    for key in [(index, seed) for seed in range(4)]:
        item, base = augmented[key], plain[key]
        assert item["A"].shape == (3, 256, 256) and torch.equal(item["B"], base["B"])
        assert item["A"].min() >= -1 and item["A"].max() <= 1
