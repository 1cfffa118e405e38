"""`translate eval classify --model EXPORT --folder DIR [--translate DTN_EXPORT]`: accuracy, per-class accuracy
and the confusion matrix of an exported classifier (classifier, DANN) on a labeled folder DIR/<class>/<image>.

With --translate, images are first mapped by an exported generator (e.g. a DTN: MNIST-M -> MNIST, classified by
an MNIST classifier, as in Taigman et al. 2017 sec. 5.1). One JSON object on stdout; logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from translate.data.labeled import LabeledDataset
from translate.evaluation import report
from translate.export import load_classifier, load_generator
from translate.utils import write_text_atomic

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="export folder of a classifier or DANN run")
    parser.add_argument("--folder", required=True, type=Path, help="labeled folder DIR/<class>/<image>")
    parser.add_argument("--translate", type=Path, help="export folder of a generator (DTN) applied first")
    add_common_arguments(parser)


def add_common_arguments(parser) -> None:
    """What classify and retrieval share: every eval command's device/batch/progress options, and --json."""
    report.add_common_arguments(parser)
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")


def load_folder(folder: Path, spec: dict, args, classes: list[str] | None = None):
    """A labeled folder at the network's input size (bicubic resize, no augmentation), in file order, in batches
    of args.batch_size, with a progress bar on stderr."""
    size = spec["image_size"]
    dataset = LabeledDataset(folder, spec["in_channels"], size, size, "resize", flip=False, train=False,
                             classes=classes)
    log.info("%s: %d images, %d classes", folder, len(dataset), len(dataset.classes))
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
    return tqdm(loader, desc=folder.name, unit="batch", leave=False, disable=args.no_progress, file=sys.stderr)


def translator(export: Path | None, device) -> torch.nn.Module | None:
    """The generator that maps inputs first, if any. A train-mode generator (pix2pix keeps dropout on at test time)
    draws its dropout from the global RNG: seeded here, so one command gives the same scores on every run."""
    if export is None:
        return None
    torch.manual_seed(0)
    return load_generator(export, device=device)


@torch.no_grad()
def predict(args) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(true labels, predicted labels, class names) over the folder."""
    model, spec = load_classifier(args.model, device=args.device, with_spec=True)
    generator = translator(args.translate, args.device)
    loader = load_folder(args.folder, spec, args, classes=spec["classes"])
    truth, predicted = [], []
    for batch in loader:
        x = batch["image"].to(args.device)
        if generator is not None:
            x = generator(x)
        predicted.append(model(x).argmax(1).cpu())
        truth.append(batch["label"])
    return torch.cat(truth), torch.cat(predicted), spec["classes"]


def classification_metrics(truth: torch.Tensor, predicted: torch.Tensor, classes: list[str]) -> dict:
    k = len(classes)
    confusion = torch.bincount(truth * k + predicted, minlength=k * k).view(k, k)
    totals = confusion.sum(1)
    per_class = {name: confusion[i, i].item() / totals[i].item() for i, name in enumerate(classes) if totals[i] > 0}
    return {"accuracy": confusion.trace().item() / len(truth), "images": len(truth),
            "per_class_accuracy": per_class,
            "confusion": {"rows": "true class", "columns": "predicted class", "classes": classes,
                          "matrix": confusion.tolist()}}


def run(args) -> int:
    args.device = report.resolve_device(args.device)
    truth, predicted, classes = predict(args)
    result = {"model": str(args.model), "folder": str(args.folder),
              "translate": str(args.translate) if args.translate else None,
              **classification_metrics(truth, predicted, classes)}
    emit(result, args.json)
    return 0


def emit(result: dict, path: Path | None) -> None:
    """The one JSON line on stdout every `translate eval` prints, and optionally the same result in a file."""
    if path is not None:
        write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    report.print_json(result)
