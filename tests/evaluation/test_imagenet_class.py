"""ImageNet class scores: name resolution, the score arithmetic, real zebras and horses, and the JSON."""

import argparse
import json
import shutil

import pytest
import torch

from translate.evaluation import imagenet_class
from translate.evaluation.imagenet_class import class_scores, resolve_classes

from .synthetic import shared_images


def test_class_names_and_indices_resolve():
    assert imagenet_class.resolve_class("zebra") == (340, "zebra")
    assert imagenet_class.resolve_class("Sorrel") == (339, "sorrel")
    assert imagenet_class.resolve_class("339") == (339, "sorrel")
    assert imagenet_class.resolve_class("tabby cat")[0] == 281


@pytest.mark.parametrize("query, message", [("crane", "ambiguous: 134 = crane; 517 = crane"),
                                            ("horse", "did you mean: 339 = sorrel"),
                                            ("1000", "0..999")])
def test_unknown_or_ambiguous_classes_are_explained(query, message):
    with pytest.raises(ValueError, match=message):
        imagenet_class.resolve_class(query)


def test_class_scores_arithmetic():
    probs = torch.tensor([[0.7, 0.1, 0.1, 0.05, 0.03, 0.02],   # class 0 first
                          [0.1, 0.5, 0.2, 0.1, 0.06, 0.04],    # class 0 third
                          [0.0, 0.5, 0.2, 0.1, 0.1, 0.1]])     # class 0 last: outside the top 5 of 6
    scores = imagenet_class.class_scores(probs, 0)
    assert scores == pytest.approx({"mean_prob": 0.8 / 3, "top1": 1 / 3, "top5": 2 / 3})


def test_real_zebras_are_zebras_and_horses_are_not(classifier):
    from translate.evaluation.loading import read_rgb

    zebras = torch.stack([read_rgb(p) for p in shared_images("trainB", 6)])
    horses = torch.stack([read_rgb(p) for p in shared_images("trainA", 6)])
    on_zebras = imagenet_class.class_scores(imagenet_class.probabilities(classifier, [zebras]), 340)
    on_horses = imagenet_class.class_scores(imagenet_class.probabilities(classifier, [horses]), 340)
    assert on_zebras["top1"] >= 5 / 6 and on_zebras["mean_prob"] > 0.6
    assert on_horses["top5"] == 0 and on_horses["mean_prob"] < 0.01


def test_cli_prints_one_json_object(tmp_path, capsys, classifier, monkeypatch):
    for path in shared_images("trainB", 3):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(imagenet_class, "build_classifier", lambda: classifier)
    parser = argparse.ArgumentParser()
    imagenet_class.add_arguments(parser)
    assert imagenet_class.run(parser.parse_args(["--folder", str(tmp_path), "--class", "zebra",
                                                 "--no-progress"])) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert {"mean_prob", "top1", "top5"} <= set(result) and result["class_index"] == 340 and result["n"] == 3
    assert result["top1"] == 1.0 and result["image_size"] == 224


def test_several_classes_count_as_one():
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.05, 0.03, 0.02],    # top-1 class 0
                          [0.1, 0.1, 0.5, 0.2, 0.05, 0.05],     # top-1 class 2, class 0 in the top 5
                          [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])      # class 5 only; 0 and 1 tie for last places
    scores = class_scores(probs, [0, 3])
    assert scores["mean_prob"] == pytest.approx((0.55 + 0.3 + 0.0) / 3)
    assert scores["top1"] == pytest.approx(1 / 3) and scores["top5"] >= 2 / 3
    assert class_scores(probs, [2])["top1"] == class_scores(probs, 2)["top1"] == pytest.approx(1 / 3)


def test_classes_by_comma_name_the_union():
    indices, description = resolve_classes("purse, mailbag,414,wallet")
    assert indices == [748, 636, 414, 893] and description.startswith("purse | mailbag")
