"""Published and reference-format weights as export folders: `translate pretrained NAME` and `translate import`.

An export is what convert, serve, the Python API and `model.init_from` read, so a reference `*_net_G*.pth` becomes
one: its generator rebuilt in our architecture (the key mapping of translate.export.load_reference_generator),
written as safetensors with a config.json that says where it came from and the file's sha256.

`translate pretrained` downloads the weights pytorch-CycleGAN-and-pix2pix publishes under the names of its
download scripts (scripts/download_cyclegan_model.sh, download_pix2pix_model.sh). This is the only command of the
toolkit that reaches the network, and only when asked: a progress bar, a timeout, the file written atomically and
its sha256 recorded in the export. TRANSLATE_PRETRAINED_URL replaces the server (a mirror, or a test's local one).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
URL_VARIABLE = "TRANSLATE_PRETRAINED_URL"
TIMEOUT_S = 60  # per network read, not for the whole download


@dataclass(frozen=True)
class Published:
    """One published generator: where it is and how the reference built it (its test.py flags)."""

    model: str  # cyclegan or pix2pix: the architecture family and the input kind the studio expects
    arch: str
    norm: str
    dropout: bool
    direction: str  # of the dataset's A|B halves this generator reads -> writes
    base_url: str
    ngf: int = 64

    def url(self, name: str) -> str:
        return f"{os.environ.get(URL_VARIABLE, self.base_url).rstrip('/')}/{name}.pth"


# CycleGAN: ResNet-9, instance norm, no dropout (test.py --no_dropout). pix2pix: U-Net-256, batch norm, dropout;
# its maps run in the dataset's own direction (map2sat and facades_label2photo read the B half).
_CYCLEGAN = ("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
             "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map",
             "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label",
             "facades_label2photo", "iphone2dslr_flower")
_PIX2PIX = {"edges2shoes": "AtoB", "sat2map": "AtoB", "map2sat": "BtoA", "facades_label2photo": "BtoA",
            "day2night": "AtoB"}
PUBLISHED: dict[str, Published] = {
    **{name: Published("cyclegan", "resnet_9blocks", "instance", False, "AtoB", CYCLEGAN_URL) for name in _CYCLEGAN},
    **{f"pix2pix_{name}": Published("pix2pix", "unet_256", "batch", True, direction, PIX2PIX_URL)
       for name, direction in _PIX2PIX.items()},
}
PUBLISHED_SIZE = 256  # the reference tests at load_size = crop_size = 256


def add_import_arguments(parser) -> None:
    from translate.backbones import GENERATORS
    from translate.backbones.layers import NORMS

    parser.add_argument("weights", type=Path, help="a reference generator file, e.g. latest_net_G_A.pth")
    parser.add_argument("output_dir", type=Path, help="the export folder to write (replaced only when complete)")
    parser.add_argument("--arch", choices=GENERATORS, required=True, help="the file's architecture")
    parser.add_argument("--norm", choices=NORMS, default="instance", help="the file's normalisation")
    parser.add_argument("--ngf", type=int, default=64, help="the file's generator width")
    parser.add_argument("--in-channels", type=int, default=3, help="channels the generator reads (1 gray, 3 RGB)")
    parser.add_argument("--out-channels", type=int, default=3, help="channels the generator writes")
    parser.add_argument("--dropout", action="store_true", help="the generator was built with dropout (pix2pix)")
    parser.add_argument("--model", choices=("cyclegan", "pix2pix"), default="cyclegan",
                        help="what trained it: pix2pix exports read drawings or label maps and run in train mode")
    parser.add_argument("--size", type=int, default=PUBLISHED_SIZE, help="the training scale (crop size), pixels")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                        help="which half of A|B files the generator reads")


def run_import(args) -> int:
    published = Published(args.model, args.arch, args.norm, args.dropout, args.direction, "", args.ngf)
    export = import_reference(args.weights, args.output_dir, published, size=args.size,
                              in_channels=args.in_channels, out_channels=args.out_channels)
    print(f"export: {export}")
    return 0


def add_pretrained_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="a published model, e.g. horse2zebra; omit to list them")
    parser.add_argument("--out", type=Path, help="the export folder to write (default: pretrained/NAME)")


def run_pretrained(args) -> int:
    if args.name is None:
        for name, published in PUBLISHED.items():
            print(f"{name:32s} {published.model:9s} {published.arch} ({published.direction})")
        return 0
    export = fetch_pretrained(args.name, args.out or Path("pretrained") / args.name)
    print(f"export: {export}")
    return 0


def fetch_pretrained(name: str, output_dir: Path) -> Path:
    """Download the published generator `name` and write it as an export folder; a ValueError for unknown names."""
    published = PUBLISHED.get(name)
    if published is None:
        raise ValueError(f"no published model {name!r}; `translate pretrained` lists them")
    with tempfile.TemporaryDirectory(prefix=".download-", dir=_existing_parent(output_dir)) as tmp:
        weights = Path(tmp) / f"{name}.pth"
        url = published.url(name)
        download(url, weights)
        return import_reference(weights, output_dir, published, source=url)


def _existing_parent(path: Path) -> Path:
    """The download lands beside its export (same file system); the folder is made if it is missing."""
    path.resolve().parent.mkdir(parents=True, exist_ok=True)
    return path.resolve().parent


def download(url: str, destination: Path) -> str:
    """Stream `url` into `destination` with a progress bar; returns the sha256. Network failures and HTTP errors
    are one OSError naming the address; nothing is left at `destination` unless the download completed."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {url.rsplit('/', 1)[-1]}") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if total is not None and partial.stat().st_size != total:
            raise OSError(f"download of {url} ended early: {partial.stat().st_size} of {total} bytes")
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise OSError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise OSError(f"cannot download {url}: {reason} (no network? set {URL_VARIABLE} to a mirror)") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    return digest.hexdigest()


def import_reference(weights: Path, output_dir: Path, published: Published, size: int = PUBLISHED_SIZE,
                     in_channels: int = 3, out_channels: int = 3,
                     source: str | None = None) -> Path:
    """Write the reference generator file `weights` as an export folder with one generator net, G.

    It runs in train mode, as the reference's test.py without --eval and as convert runs a .pth file: for the
    published CycleGANs (instance norm, no dropout) that equals eval mode; for pix2pix it is the paper's own.
    """
    from translate.export import CONFIG_NAME, write_export
    from translate.inference.model import ModelError, file_sha256, load_model
    from translate.models.export_spec import generator_spec

    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights} does not exist")
    model = load_model(weights, arch=published.arch, norm=published.norm, ngf=published.ngf, in_channels=in_channels,
                       out_channels=out_channels, dropout=published.dropout)
    if size % model.size_multiple:
        raise ModelError(f"--size {size} is not a multiple of {published.arch}'s {model.size_multiple}")
    spec = generator_spec(model.net, published.arch, in_channels, out_channels, "train", ngf=published.ngf,
                          norm=published.norm, dropout=published.dropout)
    description = {"model": {"name": published.model},
                   "data": {"load_size": size, "crop_size": size, "direction": published.direction}}
    export = write_export(output_dir, {"G": (model.net, spec)}, description)
    # Where the weights came from, beside the description write_export made: source file or address, and hash.
    config_path = export / CONFIG_NAME
    config = json.loads(config_path.read_text())
    config["imported_from"] = {"file": Path(weights).name, "url": source, "sha256": file_sha256(Path(weights))}
    staged = config_path.with_name(CONFIG_NAME + ".tmp")
    staged.write_text(json.dumps(config, indent=2))
    os.replace(staged, config_path)
    return export
