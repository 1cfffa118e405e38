"""The public pix2pix and CycleGAN datasets: where each comes from, its layout and its expected file counts.

URLs are the canonical ones of the authors' download scripts (pytorch-CycleGAN-and-pix2pix,
datasets/download_pix2pix_dataset.sh and download_cyclegan_dataset.sh). Counts marked `verified=False` are
recalled from the released archives but were not re-counted for this table; a mismatch there is only a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
CITYSCAPES_HELP = """\
Cityscapes cannot be redistributed: register at https://www.cityscapes-dataset.com, download
gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, then pair each photo with its colour label image
side by side (photo | label, 256x256 each) into ROOT/train (2,975) and ROOT/val (500), as the reference
implementation's datasets/prepare_cityscapes_dataset.py does. `--from DIR` then checks and ingests the result."""


@dataclass(frozen=True)
class DatasetSource:
    """One public dataset. layout "aligned": ROOT/<split>/*.jpg with A|B side by side; "unaligned": ROOT/<split>."""

    name: str
    layout: str
    counts: dict[str, int]  # split folder -> number of images in the released archive
    origin: str  # where the images come from, who made the set
    license: str
    url: str | None = None  # None: not downloadable, see `instructions`
    verified: bool = True
    instructions: str = ""


def _pix2pix(name, counts, origin, license, verified=True) -> DatasetSource:
    return DatasetSource(name, "aligned", counts, origin, license, PIX2PIX_URL.format(name=name), verified)


def _cyclegan(name, counts, origin, license, verified=True) -> DatasetSource:
    a_train, b_train, a_test, b_test = counts
    return DatasetSource(name, "unaligned", {"trainA": a_train, "trainB": b_train, "testA": a_test, "testB": b_test},
                         origin, license, CYCLEGAN_URL.format(name=name), verified)


_IMAGENET = "ImageNet terms of access (non-commercial research and education)"
_FLICKR = "Flickr photos: each image's own Flickr license; research use"
_WIKIART = "WikiArt paintings and Flickr photos: each image's own terms; research use"

SOURCES: dict[str, DatasetSource] = {s.name: s for s in [
    _pix2pix("facades", {"train": 400, "val": 100, "test": 106},
             "CMP Facade Database (Tylecek & Sara, GCPR 2013); pairs by Isola et al. 2017. A = photo, B = labels",
             "CMP Facade Database terms (academic research)"),
    _pix2pix("maps", {"train": 1096, "val": 1098},
             "Google Maps aerial photo | map tiles around New York, scraped by Isola et al. 2017",
             "Google Maps/Earth terms (research use only)"),
    _pix2pix("edges2shoes", {"train": 49825, "val": 200},
             "UT Zappos50K shoes (Yu & Grauman, CVPR 2014); HED edges by Isola et al. 2017. A = edges, B = photo",
             "UT Zappos50K: academic, non-commercial use"),
    _pix2pix("edges2handbags", {"train": 138567, "val": 200},
             "Amazon handbags of iGAN (Zhu et al., ECCV 2016); HED edges by Isola et al. 2017. A = edges, B = photo",
             "research use (images from Amazon listings)"),
    _pix2pix("night2day", {"train": 17823, "val": 10, "test": 2287},
             "Transient Attributes webcams (Laffont et al., SIGGRAPH 2014); A = night, B = day",
             "Transient Attributes dataset terms (research use)", verified=False),
    DatasetSource("cityscapes", "aligned", {"train": 2975, "val": 500},
                  "Cityscapes (Cordts et al., CVPR 2016); A = photo, B = colour labels",
                  "Cityscapes terms: registration required, non-commercial, no redistribution",
                  instructions=CITYSCAPES_HELP),
    _cyclegan("horse2zebra", (1067, 1334, 120, 140), "ImageNet wild horse (n02381460) and zebra (n02391049), "
              "Zhu et al. 2017", _IMAGENET),
    _cyclegan("apple2orange", (995, 1019, 266, 248), "ImageNet apple and navel orange, Zhu et al. 2017", _IMAGENET),
    _cyclegan("summer2winter_yosemite", (1231, 962, 309, 238), "Yosemite photos from the Flickr API, "
              "Zhu et al. 2017", _FLICKR),
    _cyclegan("monet2photo", (1072, 6287, 121, 751), "Monet paintings from WikiArt, landscape photos from "
              "Flickr, Zhu et al. 2017", _WIKIART),
    _cyclegan("cezanne2photo", (525, 6287, 58, 751), "Cezanne paintings from WikiArt, Flickr photos, "
              "Zhu et al. 2017", _WIKIART, verified=False),
    _cyclegan("ukiyoe2photo", (562, 6287, 263, 751), "Ukiyo-e prints from WikiArt, Flickr photos, "
              "Zhu et al. 2017", _WIKIART, verified=False),
    _cyclegan("vangogh2photo", (400, 6287, 400, 751), "Van Gogh paintings from WikiArt, Flickr photos, "
              "Zhu et al. 2017", _WIKIART, verified=False),
    _cyclegan("iphone2dslr_flower", (1812, 3325, 569, 480), "Flickr flower photos by iPhone and by DSLR "
              "(shallow depth of field), Zhu et al. 2017", _FLICKR, verified=False),
]}


def count_differences(source: DatasetSource, found: dict[str, int]) -> list[str]:
    """Human-readable differences between the expected and the found image counts per split."""
    notes = []
    for split, expected in source.counts.items():
        have = found.get(split, 0)
        if have != expected:
            notes.append(f"{split}: {have} images, the release has {expected}")
    notes += [f"{split}: {n} images, not a split of the release" for split, n in found.items()
              if split not in source.counts]
    return notes
