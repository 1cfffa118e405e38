"""How often an ImageNet classifier sees the intended class in translated images; `translate eval imagenet-class`.

pix2pix scored Cityscapes labels -> photo with an off-the-shelf segmenter ("FCN-score", Isola et al. 2017,
sec. 4.2): if a network trained on real data recognises the content, the translation carries it. Here the network
is the ImageNet EfficientNet-Lite0 (224x224, antialiased bilinear resize of the whole image): horse -> zebra
outputs are scored with class 340 (zebra), zebra -> horse with 339 (sorrel, ImageNet-1k's only horse class).
Reported: the mean softmax probability of the class, and the fraction of images where it is the top-1 / in the
top-5 prediction. Objects ImageNet splits over several classes are scored as their union: a generated handbag is a
bag when purse (748), mailbag (636), backpack (414) or wallet (893) is among the top 5.
"""

from __future__ import annotations

import argparse
import os
import re

import torch
from torch import nn

from translate.evaluation.features import build_classifier, extract
from translate.evaluation.loading import iter_batches, scored_images
from translate.evaluation.report import add_common_arguments, print_json, resolve_device


def class_names() -> list[str]:
    """The 1000 ImageNet-1k descriptions in index order ("zebra", "tabby, tabby cat", ...), from timm's files."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(info.num_classes())]


def class_definitions() -> list[str]:
    """Descriptions with their WordNet gloss ("sorrel: a horse of a brownish orange ..."), for suggestions."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.label_name_to_description(info.index_to_label_name(i), detailed=True)
            for i in range(info.num_classes())]


def resolve_class(name_or_index: str | int) -> tuple[int, str]:
    """(index, description) of an ImageNet-1k class given by index or by one of its names (case-insensitive)."""
    names = class_names()
    text = str(name_or_index).strip()
    if text.isdigit():
        index = int(text)
        if index >= len(names):
            raise ValueError(f"ImageNet class index must be 0..{len(names) - 1}, got {index}")
        return index, names[index]
    wanted = text.lower()
    exact = [i for i, desc in enumerate(names) if wanted in (n.strip().lower() for n in desc.split(","))]
    if len(exact) == 1:
        return exact[0], names[exact[0]]
    if exact:
        raise ValueError(f"ImageNet class name {text!r} is ambiguous: "
                         + "; ".join(f"{i} = {names[i]}" for i in exact) + " (give the index)")
    word = re.compile(rf"\b{re.escape(wanted)}\b")
    near = [f"{i} = {names[i]}" for i, desc in enumerate(class_definitions()) if word.search(desc.lower())][:8]
    raise ValueError(f"no ImageNet class named {text!r}" + (f"; did you mean: {'; '.join(near)}" if near else ""))


def class_scores(probs: torch.Tensor, index: int | list[int]) -> dict[str, float]:
    """mean_prob, top1 and top5 of class `index` over (N, C) probabilities. Several indices count as one class
    (a handbag is ImageNet's purse, mailbag, backpack or wallet): their summed probability, and whether any of them
    is the top-1 / in the top 5."""
    indices = torch.tensor([index] if isinstance(index, int) else list(index))
    top5 = probs.topk(min(5, probs.shape[1]), dim=1).indices
    return {"mean_prob": float(probs[:, indices].sum(1).double().mean()),
            "top1": float(torch.isin(top5[:, 0], indices).double().mean()),
            "top5": float(torch.isin(top5, indices).any(1).double().mean())}


def resolve_classes(text: str | int) -> tuple[list[int], str]:
    """Indices and descriptions of one class or of several separated by commas ("purse,mailbag,414")."""
    found = [resolve_class(part) for part in str(text).split(",") if part.strip()]
    if not found:
        raise ValueError("--class names no ImageNet class")
    return [index for index, _ in found], " | ".join(description for _, description in found)


def probabilities(classifier: nn.Module, batches, device="cpu") -> torch.Tensor:
    """(N, 1000) softmax probabilities of image batches in [0, 1] (uint8 batches are scaled)."""
    return extract(classifier, batches, device).softmax(1).float()


def classify_folder(folder: str | os.PathLike, imagenet_class: str | int, *, batch_size: int = 32, device="cpu",
                    workers: int = 0, progress: bool = True) -> dict:
    """The full `translate eval imagenet-class` report."""
    indices, description = resolve_classes(imagenet_class)
    skipped: list = []
    files = scored_images(folder, skipped)
    classifier = build_classifier().to(device)
    batches = (images for _, images in iter_batches([[f] for f in files], batch_size, None, workers,
                                                    desc="classify", progress=progress, skipped=skipped))
    probs = probabilities(classifier, batches, device)
    return {**class_scores(probs, indices), "class_index": indices[0] if len(indices) == 1 else indices,
            "class_name": description, "n": len(probs),
            "folder": str(folder), **classifier.description, "skipped": skipped}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Mean probability and top-1/top-5 rate of an ImageNet class under the EfficientNet-Lite0 "
                          "classifier (JSON on stdout).")
    parser.add_argument("--folder", required=True, help="folder of images (e.g. translated horses)")
    parser.add_argument("--class", dest="imagenet_class", required=True,
                        help="ImageNet-1k class: index (340) or name (zebra); several separated by commas count "
                        "as one (purse,mailbag,backpack,wallet: a handbag)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    print_json(classify_folder(args.folder, args.imagenet_class, batch_size=args.batch_size,
                               device=resolve_device(args.device), workers=args.workers,
                               progress=not args.no_progress))
    return 0
