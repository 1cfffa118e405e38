"""What the page and /api/models say about an export: its generator nets and a model card from its own files.

Everything comes from the export (config.json, and best.json when it is an export_best): the server never guesses
scores, and a run's final export does not borrow the scores of its export_best, which holds other weights. No
path on the server leaves it, the export's or the training data's: a name is enough for the page, and the API may
face a network. "hints" says whether a generator (and, on the card, any of them) reads colour hints: the page shows
its colour pen for those only.
"""

from __future__ import annotations

import json
from numbers import Number
from pathlib import Path

SCORES_NAME = "best.json"  # written by translate.training.periodic_eval into export_best/
DRAWN_INPUT_MODELS = ("pix2pix",)  # paired models here map sketches, edges or label maps to photos


def direction(net: str, data_direction: str) -> str:
    """G_AB reads "A to B", G_BA "B to A"; a single generator G follows the data's direction (AtoB / BtoA)."""
    if len(net) == 4 and net.startswith("G_"):
        return f"{net[2]} to {net[3]}"
    return data_direction.replace("to", " to ") if data_direction else "A to B"


def read_scores(path: Path, description: dict) -> dict | None:
    """The measured scores the export holds (best.json, or a "scores" entry of its config.json), else None."""
    file = path / SCORES_NAME
    if file.is_file():
        try:
            return json.loads(file.read_text())
        except (OSError, ValueError):
            return None
    return description.get("scores")


def public_scores(scores: dict | None) -> dict | None:
    """The scores that are numbers or plain words: a file name or path a scores file may hold stays here."""
    if not isinstance(scores, dict):
        return None
    return {key: value for key, value in scores.items()
            if isinstance(value, Number) or isinstance(value, str) and not any(c in value for c in "/\\")}


def describe_export(name: str, path: Path, description: dict, models: dict) -> dict:
    """The entry of /api/models for one export; `models` maps each generator to its worker.Net."""
    training = description.get("training_config", {})
    data, train = training.get("data", {}), training.get("train", {})
    preprocess = description.get("preprocess", {})
    drawn = description["model"] in DRAWN_INPUT_MODELS
    nets = [{"name": net, "direction": direction(net, data.get("direction", "")), "arch": model.arch,
             "in_channels": model.in_channels, "out_channels": model.out_channels,
             "size_multiple": model.size_multiple, "inference_mode": model.inference_mode,
             "hints": model.hint_channels > 0}
            for net, model in models.items()]
    scores = read_scores(path, description)
    # An export_best's step is in its scores; a final export was written at train.max_steps (or earlier, when
    # train.max_minutes stopped the run: the config cannot tell).
    steps = scores.get("step") if scores and "step" in scores else train.get("max_steps")
    card = {"model": description["model"], "steps": steps,
            "data": Path(data["root"]).name if data.get("root") else None,  # the data set's name, not where it is
            "crop_size": preprocess.get("crop_size"), "input": "sketch or label map" if drawn else "photo",
            "scores": public_scores(scores), "hints": any(net["hints"] for net in nets)}
    return {"name": name, "size": preprocess.get("crop_size") or 256, "nets": nets, "card": card}
