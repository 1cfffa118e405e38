"""Test oracle and benchmark baseline: the test path of pytorch-CycleGAN-and-pix2pix, re-written minimally.

What its `test.py --dataset_mode single --preprocess none --no_flip` does, step for step: images sorted from an
os.walk, PIL `.convert('RGB')`, a BICUBIC resize of each side to the nearest multiple of 4 (`__make_power_2`),
ToTensor + Normalize(0.5, 0.5), batch 1 with no loader workers, on the first GPU if there is one, the generator in
train mode unless --eval, `tensor2im` ((x + 1) / 2 * 255 truncated to uint8), `<name>_real.png` and
`<name>_fake.png` written with PIL into RESULTS/images/, and an index.html showing them. It stops after
--num_test images (50 by default, as there). The network is tests/backbones/reference_arch.py, the reference's
architectures.

    python tests/reference_test_script.py --dataroot DIR --weights latest_net_G_A.pth --results_dir OUT \\
        --arch resnet_9blocks --norm instance --no_dropout --num_test 1000 [--timing_json t.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

if __package__ in (None, ""):  # run as a script: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.backbones.reference_arch import RefResnetGenerator, RefUnetGenerator, ref_norm_layer  # noqa: E402

IMG_EXTENSIONS = [".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP", ".tif", ".TIF",
                  ".tiff", ".TIFF"]


def make_dataset(folder: str, max_dataset_size: float = float("inf")) -> list[str]:
    images = []
    for root, _, fnames in sorted(os.walk(folder, followlinks=True)):
        for fname in fnames:
            if any(fname.endswith(ext) for ext in IMG_EXTENSIONS):
                images.append(os.path.join(root, fname))
    return images[:min(max_dataset_size, len(images))]


def make_power_2(img: Image.Image, base: int = 4) -> Image.Image:
    ow, oh = img.size
    h, w = int(round(oh / base) * base), int(round(ow / base) * base)
    if h == oh and w == ow:
        return img
    return img.resize((w, h), Image.BICUBIC)


def get_transform(input_nc: int) -> transforms.Compose:
    steps = [transforms.Grayscale(1)] if input_nc == 1 else []
    mean = (0.5,) * (1 if input_nc == 1 else 3)
    steps += [transforms.Lambda(make_power_2), transforms.ToTensor(), transforms.Normalize(mean, mean)]
    return transforms.Compose(steps)


def define_G(input_nc, output_nc, ngf, arch, norm, use_dropout):
    norm_layer = ref_norm_layer(norm)
    if arch in ("resnet_9blocks", "resnet_6blocks"):
        return RefResnetGenerator(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout,
                                  n_blocks=9 if arch == "resnet_9blocks" else 6)
    num_downs = {"unet_128": 7, "unet_256": 8}[arch]
    return RefUnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer=norm_layer, use_dropout=use_dropout)


def load_network(net: torch.nn.Module, path: str) -> None:
    """load_networks: torch.load, drop _metadata and InstanceNorm running stats the module does not keep."""
    state_dict = torch.load(path, map_location="cpu")
    if hasattr(state_dict, "_metadata"):
        del state_dict._metadata
    keep = net.state_dict()
    for key in list(state_dict):
        if key not in keep and key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            del state_dict[key]
    net.load_state_dict(state_dict)


def tensor2im(input_image: torch.Tensor) -> np.ndarray:
    image_numpy = input_image[0].cpu().float().numpy()
    if image_numpy.shape[0] == 1:
        image_numpy = np.tile(image_numpy, (3, 1, 1))
    image_numpy = (np.transpose(image_numpy, (1, 2, 0)) + 1) / 2.0 * 255.0
    return image_numpy.astype(np.uint8)


def test(opt) -> dict:
    """Translate opt.dataroot into opt.results_dir; returns how many images and the seconds the loop took."""
    transform = get_transform(opt.input_nc)
    paths = sorted(make_dataset(opt.dataroot))
    net = define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.arch, opt.norm, not opt.no_dropout)
    load_network(net, opt.weights)
    net.to(opt.device)
    if opt.eval:
        net.eval()
    image_dir = Path(opt.results_dir) / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    start = time.perf_counter()
    for i, path in enumerate(paths):
        if i >= opt.num_test:
            break
        img = Image.open(path).convert("RGB")
        real = transform(img).unsqueeze(0).to(opt.device)
        with torch.no_grad():
            fake = net(real)
        name = Path(path).stem
        for label, tensor in (("real", real), ("fake", fake)):
            Image.fromarray(tensor2im(tensor)).save(image_dir / f"{name}_{label}.png")
        rows.append(name)
        if i % 5 == 0:
            print(f"processing ({i:04d})-th image... {path}")
    cells = "".join(f"<tr><td>{n}</td><td><img src='images/{n}_real.png' width=256></td>"
                    f"<td><img src='images/{n}_fake.png' width=256></td></tr>" for n in rows)
    (Path(opt.results_dir) / "index.html").write_text(f"<html><body><table>{cells}</table></body></html>")
    return {"images": len(rows), "loop_s": time.perf_counter() - start}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataroot", required=True)
    p.add_argument("--weights", required=True, help="a *_net_G*.pth file")
    p.add_argument("--results_dir", required=True)
    p.add_argument("--arch", default="resnet_9blocks")
    p.add_argument("--norm", default="instance")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--input_nc", type=int, default=3)
    p.add_argument("--output_nc", type=int, default=3)
    p.add_argument("--no_dropout", action="store_true")
    p.add_argument("--eval", action="store_true")
    p.add_argument("--num_test", type=int, default=50)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="its gpu_ids=0 default")
    p.add_argument("--timing_json", help="write {images, loop_s} here")
    return p.parse_args(argv)


if __name__ == "__main__":
    options = parse()
    timing = test(options)
    if options.timing_json:
        Path(options.timing_json).write_text(json.dumps(timing))
