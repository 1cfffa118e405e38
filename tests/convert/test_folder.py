"""`translate convert` end to end on generated folders: every input mode, odd sizes, nested folders, bad files,
reruns, refusals, model errors, reference-weights parity, and the split across processes."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests import reference_test_script
from tests.backbones import reference_arch
from tests.helpers import make_cyclegan_export
from translate import cli
from translate.convert.plan import plan, shard

REPO = Path(__file__).resolve().parents[2]


def run_convert(*argv) -> int:
    """`translate convert ...` as typed, exit code included (errors are reported by translate.cli)."""
    return cli.main(["convert", *[str(a) for a in argv], *["--workers", "0"] * ("--workers" not in argv)])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_cyclegan_export(tmp_path_factory.mktemp("model") / "export")


def pixels(rng, h, w, c):
    return rng.integers(0, 256, (h, w, c), dtype=np.uint8)


def make_tree(root: Path, big: bool = False) -> dict:
    """Every input kind the issue names; returns {relative path: expected output (W, H) or None if it must fail}."""
    rng = np.random.default_rng(0)
    (root / "nested" / "deeper").mkdir(parents=True)
    expected = {}

    def save(rel, img, size, **kw):
        img.save(root / rel, **kw)
        expected[rel] = size

    if big:
        save("odd.png", Image.fromarray(pixels(rng, 513, 257, 3)), (257, 513))
    save("rgb.png", Image.fromarray(pixels(rng, 21, 35, 3)), (35, 21))
    save("nested/gray.png", Image.fromarray(pixels(rng, 30, 40, 1)[:, :, 0], "L"), (40, 30))
    save("nested/deeper/rgba.png", Image.fromarray(pixels(rng, 20, 30, 4), "RGBA"), (30, 20))
    save("nested/palette.png", Image.fromarray(pixels(rng, 24, 24, 3)).convert("P"), (24, 24))
    save("nested/deep16.png", Image.fromarray(rng.integers(0, 65536, (28, 20), dtype=np.uint16)), (20, 28))
    save("scan16.tif", Image.fromarray(rng.integers(0, 65536, (16, 12), dtype=np.uint16)), (12, 16))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated by 90 degrees
    save("rotated.jpg", Image.fromarray(pixels(rng, 20, 40, 3)), (20, 40), exif=exif)
    Image.fromarray(pixels(rng, 32, 32, 3)).save(root / "full.png")
    (root / "truncated.png").write_bytes((root / "full.png").read_bytes()[:200])
    (root / "full.png").unlink()
    (root / "zero.png").write_bytes(b"")
    (root / "nested" / "fake.jpg").write_text("not a picture")
    (root / "notes.txt").write_text("labels, not an image")
    expected.update({"truncated.png": None, "zero.png": None, "nested/fake.jpg": None})
    return expected


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def test_converts_a_whole_tree_keeping_sizes_modes_and_alpha(model_dir, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    expected = make_tree(inp, big=True)
    before = snapshot(inp)
    assert run_convert(model_dir, inp, out, "--net", "G_AB") == 1  # some inputs are bad
    assert snapshot(inp) == before  # the input folder is only read
    for rel, size in expected.items():
        target = out / Path(rel).with_suffix(".png")
        if size is None:
            assert not target.exists()
            continue
        with Image.open(target) as img:
            assert img.size == size, rel
            assert img.mode == ("RGBA" if "rgba" in rel else "RGB")
    with Image.open(inp / "nested/deeper/rgba.png") as src, Image.open(out / "nested/deeper/rgba.png") as dst:
        assert np.array_equal(np.asarray(src.getchannel("A")), np.asarray(dst.getchannel("A")))
    errors = (out / "errors.txt").read_text()
    assert "truncated.png" in errors and "zero.png\tcannot read image" in errors and "empty" in errors
    assert "nested/fake.jpg" in errors and "skipped\tnotes.txt\tnot an image file" in errors
    summary = capsys.readouterr().out
    assert "converted 8, skipped 1 (0 already done, 1 not images or unreadable), failed 3" in summary
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["images"]) == 8 and len(manifest["failed"]) == 3
    sha = hashlib.sha256((model_dir / "G_AB.safetensors").read_bytes()).hexdigest()
    assert manifest["settings"]["model"]["sha256"] == sha
    record = next(r for r in manifest["images"] if r["input"] == "odd.png")
    assert record == {"input": "odd.png", "output": "odd.png", "size": [257, 513]}
    assert not list(out.rglob(".*partial*"))


def test_rerun_skips_finished_outputs_and_resumes(model_dir, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(inp.mkdir() or inp / "a.png")
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(inp / "b.jpg")
    assert run_convert(model_dir, inp, out, "--net", "G_AB") == 0
    first = (out / "a.png").stat().st_mtime_ns
    (out / "b.png").unlink()  # as if interrupted before b was written
    capsys.readouterr()
    assert run_convert(model_dir, inp, out, "--net", "G_AB") == 0
    assert "converted 1, skipped 1 (1 already done" in capsys.readouterr().out
    assert (out / "a.png").stat().st_mtime_ns == first and (out / "b.png").exists()
    assert len(json.loads((out / "manifest.json").read_text())["images"]) == 2
    assert run_convert(model_dir, inp, out, "--net", "G_AB", "--overwrite") == 0
    assert "converted 2, skipped 0" in capsys.readouterr().out


def test_output_of_other_settings_is_not_mixed_in(model_dir, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(inp.mkdir() or inp / "a.png")
    assert run_convert(model_dir, inp, out, "--net", "G_AB") == 0
    assert run_convert(model_dir, inp, out, "--net", "G_BA") == 2
    assert "holds outputs made with another model" in capsys.readouterr().err
    assert run_convert(model_dir, inp, out, "--net", "G_AB", "--size", "8x8") == 2
    assert run_convert(model_dir, inp, out, "--net", "G_BA", "--overwrite") == 0


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_refuses_output_in_or_around_the_input(model_dir, tmp_path, capsys, where):
    inp = tmp_path / "data" / "in"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inp.mkdir(parents=True) or inp / "a.png")
    out = {"same": inp, "inside": inp / "out", "parent": tmp_path / "data"}[where]
    before = snapshot(tmp_path)
    assert run_convert(model_dir, inp, out, "--net", "G_AB") == 2
    assert "choose" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_model_errors_are_one_clear_line(model_dir, tmp_path, capsys):
    inp = tmp_path / "in"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inp.mkdir() or inp / "a.png")
    reference = reference_arch.RefResnetGenerator(3, 3, ngf=4, norm_layer=reference_arch.ref_norm_layer("instance"),
                                                  n_blocks=6)
    torch.save(reference.state_dict(), tmp_path / "latest_net_G_A.pth")
    (tmp_path / "broken.pth").write_bytes(b"\x80\x02garbage")
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    cases = [
        ([tmp_path / "missing"], "does not exist"),
        ([model_dir], "choose one (--net on the command line"),
        ([tmp_path / "latest_net_G_A.pth"], "--arch"),
        ([tmp_path / "latest_net_G_A.pth", "--arch", "resnet_9blocks", "--ngf", "4"], "missing tensors"),
        ([tmp_path / "latest_net_G_A.pth", "--arch", "resnet_6blocks", "--ngf", "8"], "of another shape"),
        ([tmp_path / "broken.pth", "--arch", "resnet_6blocks"], "broken.pth is not a readable PyTorch checkpoint"),
        ([tmp_path / "random.pth", "--arch", "resnet_6blocks"], "random.pth is not a PyTorch checkpoint"),
    ]
    for args, message in cases:
        assert run_convert(args[0], inp, tmp_path / "out", *args[1:]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arch, norm, size", [("resnet_6blocks", "instance", (36, 52)),
                                              ("unet_128", "batch", (128, 128))])
def test_reference_weights_match_the_reference_test_script(tmp_path, arch, norm, size):
    """Same .pth, same images: ours is the reference's test.py output within 1/255 (it truncates, we round).

    Sides are multiples of 4, where the reference does not resize; elsewhere it resizes and we pad-and-crop, which
    keeps the size exactly. The U-Net runs in train mode with batch norm, as the reference's pix2pix test does.
    """
    torch.manual_seed(0)
    net = reference_test_script.define_G(3, 3, 8, arch, norm, use_dropout=False)  # PyTorch's default init
    torch.save(net.state_dict(), tmp_path / "latest_net_G_A.pth")
    rng = np.random.default_rng(3)
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(3):
        smooth = np.cumsum(rng.normal(0, 12, (*size, 3)), axis=1).clip(-128, 127) + 128
        Image.fromarray(smooth.astype(np.uint8)).save(inp / f"{i}.png")
    Image.fromarray(pixels(rng, *size, 3)).convert("L").save(inp / "gray.png")
    ref = reference_test_script.parse(["--dataroot", str(inp), "--weights", str(tmp_path / "latest_net_G_A.pth"),
                                       "--results_dir", str(tmp_path / "ref"), "--arch", arch, "--norm", norm,
                                       "--ngf", "8", "--no_dropout"])
    assert reference_test_script.test(ref)["images"] == 4
    assert run_convert(tmp_path / "latest_net_G_A.pth", inp, tmp_path / "ours", "--arch", arch, "--norm", norm,
                       "--ngf", "8") == 0
    for name in ("0", "1", "2", "gray"):
        theirs = np.asarray(Image.open(tmp_path / "ref" / "images" / f"{name}_fake.png")).astype(int)
        ours = np.asarray(Image.open(tmp_path / "ours" / f"{name}.png")).astype(int)
        assert theirs.std() > 5  # a real test: the net's output varies
        assert np.abs(theirs - ours).max() <= 1, name


def test_one_channel_models_and_resizing_and_formats(tmp_path):
    model = make_cyclegan_export(tmp_path / "gray_model", channels_a=1, channels_b=1)
    inp = tmp_path / "in"
    rng = np.random.default_rng(0)
    Image.fromarray(pixels(rng, 20, 30, 3)).save(inp.mkdir() or inp / "a.png")
    Image.fromarray(pixels(rng, 20, 30, 3)).save(inp / "a.jpg")  # same stem: must not overwrite a.png's output
    assert run_convert(model, inp, tmp_path / "out", "--net", "G_AB", "--size", "16x12", "--format", "jpg") == 0
    for name in ("a.jpg", "a.png.jpg"):
        with Image.open(tmp_path / "out" / name) as img:
            assert (img.mode, img.size, img.format) == ("L", (16, 12), "JPEG")
    assert run_convert(model, inp, tmp_path / "same", "--net", "G_AB", "--format", "same") == 0
    assert sorted(p.name for p in (tmp_path / "same").glob("a.*")) == ["a.jpg", "a.png"]


def test_tiled_conversion_keeps_the_size(model_dir, tmp_path):
    inp = tmp_path / "in"
    Image.fromarray(pixels(np.random.default_rng(0), 90, 150, 3)).save(inp.mkdir() or inp / "wide.png")
    assert run_convert(model_dir, inp, tmp_path / "out", "--net", "G_AB", "--tile", "64", "--overlap", "16") == 0
    assert Image.open(tmp_path / "out" / "wide.png").size == (150, 90)
    assert run_convert(model_dir, inp, tmp_path / "bad", "--net", "G_AB", "--tile", "64", "--overlap", "40") == 2


def test_gallery_flag_writes_a_page(model_dir, tmp_path):
    inp = tmp_path / "in"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inp.mkdir() or inp / "a.png")
    assert run_convert(model_dir, inp, tmp_path / "out", "--net", "G_AB", "--gallery") == 0
    assert (tmp_path / "out" / "_gallery" / "index.html").is_file()


@pytest.mark.parametrize("count, world", [(0, 2), (1, 2), (7, 1), (7, 2), (10, 3), (100, 8)])
def test_shards_partition_the_files(count, world):
    items = list(range(count))
    shares = [shard(items, rank, world) for rank in range(world)]
    merged = sorted(i for share in shares for i in share)
    assert merged == items  # no duplicates, no gaps
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_every_process_plans_the_same_list(tmp_path):
    make_tree(tmp_path / "in")
    first, _ = plan(tmp_path / "in", tmp_path / "out", "png")
    os.utime(tmp_path / "in" / "rgb.png")
    second, _ = plan(tmp_path / "in", tmp_path / "out", "png")
    assert first == second and [j.rel for j in first] == sorted(j.rel for j in first)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU processes; on a GPU machine they use the GPUs")
def test_accelerate_launch_splits_files_across_two_processes(model_dir, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(7):
        Image.fromarray(np.full((8, 12, 3), i * 30, np.uint8)).save(inp / f"{i}.png")
    (inp / "zero.png").write_bytes(b"")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "-m", "translate", "convert", str(model_dir), str(inp), str(tmp_path / "out"),
                           "--net", "G_AB", "--workers", "0", "--compile", "off"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]  # zero.png failed, on whichever rank had it
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(r["input"] for r in manifest["images"]) == [f"{i}.png" for i in range(7)]
    assert [r["input"] for r in manifest["failed"]] == ["zero.png"] and manifest["timing"]["processes"] == 2
    assert done.stdout.count("converted 7,") == 1  # one summary, from the main process


def test_an_input_folder_without_images_is_an_error(model_dir, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no pictures here")
    assert run_convert(model_dir, tmp_path / "in", tmp_path / "out", "--net", "G_AB") == 2
    assert "no image files under" in capsys.readouterr().err


def link_cases_input(tmp_path) -> Path:
    inp = tmp_path / "in"
    for sub in ("a", "b"):
        (inp / sub).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(inp / sub / f"{i}.png")
    return inp


@pytest.mark.parametrize("layout", ["output subfolder links into the input", "output file links to an input"])
def test_no_input_is_ever_overwritten_through_a_link(layout, model_dir, tmp_path, capsys):
    inp = link_cases_input(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    if layout.startswith("output subfolder"):
        (out / "a").symlink_to(inp / "a", target_is_directory=True)
    else:
        (out / "b").mkdir()
        (out / "b" / "1.png").symlink_to(inp / "b" / "1.png")
    before = {p: p.read_bytes() for p in sorted(inp.rglob("*.png"))}
    for extra in ([], ["--overwrite"]):  # without --overwrite the manifest check may refuse first
        assert run_convert(model_dir, inp, out, "--net", "G_AB", *extra) == 2
    assert "is a link" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in sorted(inp.rglob("*.png"))} == before


def test_link_loops_are_walked_once_and_unreadable_folders_reported(model_dir, tmp_path, monkeypatch):
    inp = link_cases_input(tmp_path)
    (inp / "a" / "up").symlink_to(inp, target_is_directory=True)  # a loop
    (inp / "b" / "again").symlink_to(inp / "a", target_is_directory=True)  # a second way to a
    (inp / "locked").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inp / "locked" / "x.png")
    scandir = os.scandir

    def no_permission(path="."):  # chmod 0 cannot stop root, who runs CI: refuse the listing instead
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", no_permission)
    assert run_convert(model_dir, inp, tmp_path / "out", "--net", "G_AB") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(r["input"] for r in manifest["images"]) == [f"{s}/{i}.png" for s in "ab" for i in range(3)]
    assert [(r["input"], r["reason"]) for r in manifest["skipped"]] == [
        ("locked", "cannot read this folder: Permission denied")]
    assert "skipped\tlocked\tcannot read this folder" in (tmp_path / "out" / "errors.txt").read_text()


def test_odd_names_survive_in_errors_manifest_and_gallery_one_record_a_line(model_dir, tmp_path, capsys):
    """A name that is not UTF-8, or that holds a newline, tab, escape or backslash, stays one errors.txt record:
    escaped as Python does (\\xff, \\n, \\t, \\x1b, \\\\); the manifest keeps the exact name."""
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inp / "fine.png")
    names = [b"bad\xff.png", b"two\nlines.png", b"tab\there.png", b"esc\x1b[31m.png", b"back\\slash.png"]
    for name in names:
        Path(os.fsdecode(os.fsencode(inp) + b"/" + name)).write_bytes(b"junk")
    assert run_convert(model_dir, inp, tmp_path / "out", "--net", "G_AB", "--gallery") == 1
    out = capsys.readouterr().out
    escaped = ["bad\\xff.png", "two\\nlines.png", "tab\\there.png", "esc\\x1b[31m.png", "back\\\\slash.png"]
    assert all(f"failed: {name}: " in out for name in escaped)
    lines = (tmp_path / "out" / "errors.txt").read_text().splitlines()
    assert sorted(line.split("\t")[1] for line in lines) == sorted(escaped)
    assert all(len(line.split("\t")) == 3 for line in lines)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and sorted(r["input"] for r in manifest["failed"]) == sorted(map(os.fsdecode, names))


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_a_rerun_with_a_missing_or_damaged_manifest_refuses_to_mix_models(damage, model_dir, tmp_path, capsys):
    inp = link_cases_input(tmp_path)
    out = tmp_path / "out"
    assert run_convert(model_dir, inp, out, "--net", "G_AB") == 0
    if damage == "delete":
        (out / "manifest.json").unlink()
    else:
        (out / "manifest.json").write_text('{"settings": {"model"')
    assert run_convert(model_dir, inp, out, "--net", "G_BA") == 2
    assert "which model made" in capsys.readouterr().err
    assert run_convert(model_dir, inp, out, "--net", "G_BA", "--overwrite") == 0


def test_decoding_workers_die_with_a_killed_convert(model_dir, tmp_path):
    import psutil

    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(400):
        Image.fromarray(np.full((64, 64, 3), i % 255, np.uint8)).save(inp / f"{i:03d}.png")
    process = subprocess.Popen([sys.executable, "-m", "translate", "convert", str(model_dir), str(inp),
                                str(tmp_path / "out"), "--net", "G_AB", "--workers", "2", "--compile", "off"],
                               cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    parent = psutil.Process(process.pid)
    for _ in range(300):  # until the workers are up
        workers = parent.children(recursive=True)
        if len(workers) >= 2:
            break
        time.sleep(0.05)
    assert len(workers) >= 2, "the workers never started"
    process.kill()
    process.wait()
    gone, alive = psutil.wait_procs(workers, timeout=3)
    assert not alive, f"{len(alive)} decoding workers outlived their killed parent"
