"""`make demo`: a pix2pix that learns sketch -> filled shape in about a minute on a CPU, with nothing downloaded.

Generates outline -> coloured-shape pairs (a toy edges2handbags), trains, exports, translates held-out sketches and
writes input | output | target strips, so a new user sees the whole path: data, training, export, inference.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from translate import config
from translate.data import SingleDataset
from translate.export import load_generator
from translate.training.loop import train
from translate.training.samples import sample_grid, save_sample_grid

SIZE = 64


def make_shape_pairs(root: Path, count: int, seed: int) -> None:
    """Side-by-side A|B files: A is a black outline on white, B the same shapes filled with colour."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sketch = Image.new("RGB", (SIZE, SIZE), "white")
        photo = Image.new("RGB", (SIZE, SIZE), "white")
        for _ in range(rng.integers(1, 4)):
            x0, y0 = rng.integers(2, SIZE // 2, size=2)
            x1, y1 = x0 + rng.integers(12, SIZE // 2), y0 + rng.integers(12, SIZE // 2)
            colour = tuple(int(c) for c in rng.integers(30, 230, size=3))
            shape = "ellipse" if rng.random() < 0.5 else "rectangle"
            getattr(ImageDraw.Draw(photo), shape)((x0, y0, x1, y1), fill=colour)
            getattr(ImageDraw.Draw(sketch), shape)((x0, y0, x1, y1), outline="black", width=2)
        pair = Image.new("RGB", (2 * SIZE, SIZE))
        pair.paste(sketch, (0, 0))
        pair.paste(photo, (SIZE, 0))
        pair.save(root / f"{i:04d}.png")


def run_demo(run_dir: Path, steps: int = 300) -> Path:
    data = run_dir / "data"
    shutil.rmtree(run_dir, ignore_errors=True)
    make_shape_pairs(data / "train", 64, seed=0)
    make_shape_pairs(data / "test", 8, seed=1)
    cfg = config.load(None, [
        "model.name=pix2pix", "model.generator=resnet_6blocks", "model.ngf=16", "model.ndf=16",
        "model.inference_mode=eval", f"data.root={data}", f"data.load_size={SIZE}", f"data.crop_size={SIZE}",
        "data.batch_size=4", "data.num_workers=0", f"train.max_steps={steps}", f"train.decay_steps={steps // 2}",
        f"train.log_every={max(steps // 10, 1)}", f"train.sample_every={steps}", f"train.checkpoint_every={steps}",
    ])
    export_dir = train(cfg, run_dir)
    generator = load_generator(export_dir)
    test = SingleDataset(data / "test", channels=3, preprocess="none", train=False)
    pairs = [test[i] for i in range(len(test))]
    sketches = torch.stack([p["A"][:, :, :SIZE] for p in pairs])  # the left half is the sketch
    targets = torch.stack([p["A"][:, :, SIZE:] for p in pairs])
    with torch.no_grad():
        outputs = generator(sketches)
    out = run_dir / "demo_result.png"
    save_sample_grid(sample_grid({"sketch": sketches, "output": outputs, "target": targets}), out)
    l1 = (outputs - targets).abs().mean().item()
    print(f"demo: trained {steps} steps; export in {export_dir}; held-out sketches -> {out} (L1 to target {l1:.3f})")
    print(f"draw your own sketches for it: {command_prefix()}translate serve {export_dir}")
    return out


def command_prefix() -> str:
    """How to reach the `translate` command from the shell that ran this: a virtual environment that is not
    activated (make demo runs .venv/bin/python directly) is named, so the printed command works as printed."""
    scripts = Path(sys.executable).parent
    if sys.prefix != sys.base_prefix and os.environ.get("VIRTUAL_ENV") != sys.prefix:
        return f"{os.path.relpath(scripts)}/"
    return ""
