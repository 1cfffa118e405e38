"""tools/reference_run.py: the reference's train.py paused, snapshotted and resumed on a wall-clock budget.

A stand-in train.py behaves as the reference does where it matters here (it prints the number of training images
and `(epoch: E, iters: I, ...)` lines, counts images and overwrites latest_net_G_A.pth every --save_latest_freq
images, and loads it with --continue_train); its "weight" is the number of steps it has taken, so a snapshot says
how far training had come when it was saved."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import reference_run  # noqa: E402

from translate import config as config_lib  # noqa: E402

STAND_IN = '''
import argparse, time
from pathlib import Path
import torch
p = argparse.ArgumentParser()
for name in ("--checkpoints_dir", "--name"):
    p.add_argument(name)
for name in ("--save_latest_freq", "--print_freq", "--batch_size"):
    p.add_argument(name, type=int, default=1)
p.add_argument("--continue_train", action="store_true")
args, _ = p.parse_known_args()
out = Path(args.checkpoints_dir) / args.name
out.mkdir(parents=True, exist_ok=True)
print("The number of training images = 10", flush=True)
steps = torch.load(out / "latest_net_G_A.pth")["steps"] if args.continue_train else torch.zeros(())
epoch, images, total = 1, 0, 0
while True:
    time.sleep(0.004)
    steps += 1
    images += args.batch_size
    total += args.batch_size
    if total % args.save_latest_freq == 0:
        torch.save({"steps": steps}, out / "latest_net_G_A.pth")
        print(f"[Rank 0] (epoch: {epoch}, iters: {images}, time: 0.1, data: 0.0) , G_A: 1.0", flush=True)
    if images >= 10:
        epoch, images = epoch + 1, 0
'''


@pytest.fixture
def stand_in(tmp_path) -> Path:
    checkout = tmp_path / "reference"
    checkout.mkdir()
    (checkout / "train.py").write_text(STAND_IN)
    return checkout


def snapshot_steps(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["steps"])


@pytest.mark.slow
def test_pause_snapshot_and_resume_keep_time_and_steps(stand_in, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    work = Path("work")  # relative, as on the bench's command line; the stand-in runs in its own checkout
    run = reference_run.ReferenceTraining(stand_in, sys.executable, ["--batch_size", "2"], work, "G_A", threads=0)
    try:
        run.train_until(2.0)
        steps = run.pause_and_snapshot(work / "first.pth")
        assert psutil.Process(run.process.pid).status() == psutil.STATUS_STOPPED
        assert run.state["seconds"] >= 2.0
        assert steps >= reference_run.SAVE_EVERY
        # the snapshot is the last save and the log its last line: at most one save interval apart
        assert abs(steps - snapshot_steps(work / "first.pth")) <= reference_run.SAVE_EVERY
        run.resume()
        assert psutil.Process(run.process.pid).status() != psutil.STATUS_STOPPED
    finally:
        run.stop()
    assert run.process.poll() is not None

    again = reference_run.ReferenceTraining(stand_in, sys.executable, ["--batch_size", "2"], work, "G_A", threads=0)
    try:
        assert again.state["seconds"] >= 2.0  # an interrupted benchmark keeps the time it had spent
        again.train_until(again.state["seconds"] + 1.5)
        total = again.pause_and_snapshot(work / "second.pth")
    finally:
        again.stop()
    assert "--continue_train" in again.process.args
    assert total > steps  # the steps of the first process are counted on
    assert snapshot_steps(work / "second.pth") > snapshot_steps(work / "first.pth")


def test_a_reference_that_dies_is_reported_with_its_log(tmp_path):
    checkout = tmp_path / "reference"
    checkout.mkdir()
    (checkout / "train.py").write_text("raise SystemExit('no such option --netG unet_lite1')\n")
    run = reference_run.ReferenceTraining(checkout, sys.executable, ["--batch_size", "1"], tmp_path / "w", "G_A", 0)
    with pytest.raises(SystemExit, match="train.log"):
        run.train_until(30)
    assert "no such option" in (tmp_path / "w" / "train.log").read_text()


def test_flags_set_the_reference_up_as_the_preset():
    cfg = config_lib.load("recipes/horse2zebra.yaml", [], preset="cpu_cyclegan")
    flags = reference_run.reference_flags(cfg, Path("split"))
    options = dict(zip(flags[::2], flags[1::2]))
    assert options["--model"] == "cycle_gan" and options["--netG"] == "resnet_6blocks"
    assert (options["--ngf"], options["--ndf"], options["--load_size"], options["--crop_size"]) == ("32", "32", "143",
                                                                                                     "128")
    assert "--no_dropout" in flags and "--no_flip" not in flags
    assert reference_run.convert_flags(cfg) == ["--arch", "resnet_6blocks", "--norm", "instance", "--ngf", "32"]

    paired = config_lib.load("recipes/sketch2handbag.yaml", [], preset="cpu_paper")
    flags = reference_run.reference_flags(paired, Path("split"))
    assert flags[flags.index("--model") + 1] == "pix2pix" and "--no_dropout" not in flags
    assert flags[flags.index("--lambda_L1") + 1] == "100.0"
    assert reference_run.convert_flags(paired)[-1] == "--dropout"


def test_a_preset_the_reference_cannot_build_is_refused_by_name():
    cfg = config_lib.load("recipes/sketch2handbag.yaml", [], preset="cpu_lite1")
    with pytest.raises(SystemExit, match="unet_lite1"):
        reference_run.reference_flags(cfg, Path("split"))


def bench_quality_args(tmp_path, out: str, *argv: str):
    import argparse

    import quality

    parser = argparse.ArgumentParser()
    quality.add_arguments(parser)
    return quality, parser.parse_args(["recipes/sketch2handbag.yaml", "--split", str(tmp_path / "split"),
                                       "--out", str(tmp_path / out), *argv])


def test_the_reference_alone_is_set_up_and_validated_as_its_preset(tmp_path):
    """`--reference` without `--variants` (the reference on a core of its own): its preset sizes the validation
    set; neither variants nor a reference preset is refused before anything is written."""
    from tests.helpers import write_images

    write_images(tmp_path / "split" / "val", 2, (64, 32), seed=0)
    quality, args = bench_quality_args(tmp_path, "out", "--reference", "checkout", "--reference-like",
                                       "cpu_paper")
    val = quality.validation_sets(args)
    assert val.size == 128 and len(list(val.inputs.glob("*.png"))) == 2
    quality, args = bench_quality_args(tmp_path, "refused", "--reference", "checkout")
    with pytest.raises(SystemExit, match="--variants, or --reference with --reference-like"):
        quality.run(args)
    assert not (tmp_path / "refused").exists()
