"""Offline evaluation: FID/KID, paired metrics (PSNR, SSIM, L1, perceptual) and ImageNet class scores.

Command modules for `translate eval` (each has `add_arguments(parser)` and `run(args) -> int`):
translate.evaluation.fid, translate.evaluation.paired, translate.evaluation.imagenet_class.
The training loop calls `evaluate(metric, fake, ...)`, which returns a dict of floats.
"""

from translate.evaluation.api import METRICS, evaluate
from translate.evaluation.features import build_classifier, build_features, extract
from translate.evaluation.fid import fid_folders, fid_kid, folder_features, frechet_distance, kernel_distance
from translate.evaluation.imagenet_class import class_scores, classify_folder, resolve_class
from translate.evaluation.paired import paired_folders, psnr, ssim
from translate.evaluation.perceptual import build_perceptual

__all__ = [
    "METRICS",
    "build_classifier",
    "build_features",
    "build_perceptual",
    "class_scores",
    "classify_folder",
    "evaluate",
    "extract",
    "fid_folders",
    "fid_kid",
    "folder_features",
    "frechet_distance",
    "kernel_distance",
    "paired_folders",
    "psnr",
    "resolve_class",
    "ssim",
]
