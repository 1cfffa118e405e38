"""Evaluation inside `translate train`: every `eval.every` steps, translate a fixed held-out set with the network
that would be exported, score it (translate.evaluation.evaluate), log the scores and keep the best export.

The held-out set is the model's own dataset at `eval.phase`, centre-cropped and unflipped, so every evaluation sees
the same images. Inputs are A, held as 8-bit images; B is the paired target (pix2pix) or the real target-domain set
(CycleGAN). Translation goes through the same Translator as `translate convert` (a copy of the net prepared for
inference: per-image BatchNorm statistics, dropout as exported; outputs rounded to 8 bits), so the scores logged
here are the scores of the images `translate convert` writes for those inputs with the export.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import torch

from translate.export import write_export
from translate.inference.translator import Translator, prepare_for_inference, to_uint8
from translate.utils import write_text_atomic

log = logging.getLogger(__name__)
LOWER_IS_BETTER = {"fid", "kid_mean", "l1", "perceptual"}
HIGHER_IS_BETTER = {"psnr", "ssim", "mean_prob", "top1", "top5"}


class BestScore:
    """The best score so far; registered for checkpointing so a resumed run keeps comparing against it."""

    def __init__(self, name: str):
        if name and name not in LOWER_IS_BETTER | HIGHER_IS_BETTER:
            raise ValueError(f"eval.best={name!r}: choose one of {sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER)}")
        self.name = name
        self.value: float | None = None
        self.step = 0

    def improves(self, scores: dict) -> bool:
        if not self.name or self.name not in scores:
            return False
        value = scores[self.name]
        return self.value is None or (value < self.value if self.name in LOWER_IS_BETTER else value > self.value)

    def state_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.name, self.value, self.step = state["name"], state["value"], state["step"]


@dataclasses.dataclass
class EvalSet:
    """The fixed held-out inputs (N, H, W, C) uint8 and references (N, C, H, W) in [-1, 1]; the references' FID
    features are extracted at the first evaluation and kept, since they never change."""

    inputs: np.ndarray
    references: torch.Tensor
    reference_features: torch.Tensor | None = None


def load_eval_images(cfg, entry) -> EvalSet:
    """The fixed held-out set, at most eval.max_images."""
    data_cfg = dataclasses.replace(cfg.data, phase=cfg.eval.phase)
    dataset = entry.dataset(data_cfg, cfg.model, train=False)
    items = [dataset[(i, 0)] for i in range(min(len(dataset), cfg.eval.max_images))]
    if "A" not in items[0]:
        raise ValueError(f"eval.every scores A -> B translation (pix2pix, CycleGAN); model.name={cfg.model.name} "
                         "has no such pairs: score it after training with `translate eval classify` or "
                         "`translate eval retrieval`")
    inputs = to_uint8(torch.stack([item["A"] for item in items])).permute(0, 2, 3, 1).numpy()
    return EvalSet(inputs, torch.stack([item["B"] for item in items]))


@torch.no_grad()
def evaluate_model(model, cfg, eval_set: EvalSet, device) -> dict[str, float]:
    """Scores of the exported generator (EMA weights when enabled) in its inference mode."""
    from translate.evaluation.api import evaluate, features_of_real  # feature networks load only when evaluating

    fakes = torch.from_numpy(translate_eval_set(model, cfg, eval_set, device)).permute(0, 3, 1, 2)
    fakes = fakes.float().div(127.5).sub(1)
    if "fid" in cfg.eval.metrics and eval_set.reference_features is None:
        eval_set.reference_features = features_of_real(eval_set.references, batch_size=cfg.eval.batch_size,
                                                        device=device, use_cache=False)
    scores = {}
    for metric in cfg.eval.metrics:
        scores.update(evaluate(metric, fakes, real=eval_set.references, target=eval_set.references,
                               real_features=eval_set.reference_features,
                               imagenet_class=cfg.eval.imagenet_class or None, batch_size=cfg.eval.batch_size,
                               device=device, use_cache=False))
    return scores


def translate_eval_set(model, cfg, eval_set: EvalSet, device) -> np.ndarray:
    """The eval inputs translated as `translate convert --batch-size eval.batch_size` translates them with the
    export: (N, H, W, C) uint8. The live network is not touched (the Translator gets a prepared copy)."""
    exported = model.export_nets()
    name = cfg.eval.net or next(n for n, (_, spec) in exported.items() if spec["role"] == "generator")
    net, spec = exported[name]
    net = prepare_for_inference(copy.deepcopy(net), spec["inference_mode"])
    translator = Translator(net, spec["size_multiple"], device, batch_size=cfg.eval.batch_size,
                            hint_channels=spec.get("hint_channels", 0))  # scored without hints
    size = cfg.eval.batch_size
    return np.stack([out for i in range(0, len(eval_set.inputs), size)
                     for out in translator(list(eval_set.inputs[i:i + size]))])


def save_best(model, cfg, run_dir: Path, best: BestScore, scores: dict, step: int) -> None:
    best.value, best.step = scores[best.name], step
    export_dir = write_export(run_dir / "export_best", model.export_nets(), cfg)
    write_text_atomic(export_dir / "best.json", json.dumps({"step": step, "metric": best.name, **scores}, indent=2))
    log.info("step %d: best %s so far (%.4g) -> %s", step, best.name, best.value, export_dir)

