"""Classification metrics on known predictions and the command end to end (also through a DTN export)."""

import argparse
import json

import torch

from tests.helpers import write_labeled
from translate import cli, config
from translate.evaluation import classify
from translate.export import write_export
from translate.models.classifier import build_classifier, classifier_spec


def test_known_accuracy_and_confusion():
    truth, predicted = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 1, 1, 1, 0])
    result = classify.classification_metrics(truth, predicted, ["a", "b", "c"])
    assert result["accuracy"] == 0.6
    assert result["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert result["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_command_prints_json(tmp_path, capsys):
    cfg = config.load(None, ["model.name=classifier", "model.image_size=16", "model.embedding_dim=8",
                             "model.num_classes=2"])
    net = build_classifier(cfg.model)
    export = write_export(tmp_path / "export", {"classifier": (net, classifier_spec(cfg.model, net))}, cfg)
    folder = write_labeled(tmp_path / "images", per_class=3)
    parser = argparse.ArgumentParser()
    classify.add_arguments(parser)
    assert classify.run(parser.parse_args(["--model", str(export), "--folder", str(folder)])) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["accuracy"] <= 1 and result["images"] == 6
    assert sum(map(sum, result["confusion"]["matrix"])) == 6


def test_unknown_class_folder_is_an_error(tmp_path, capsys):
    cfg = config.load(None, ["model.name=classifier", "model.image_size=16", "model.num_classes=2"])
    net = build_classifier(cfg.model)
    export = write_export(tmp_path / "export", {"classifier": (net, classifier_spec(cfg.model, net))}, cfg)
    folder = write_labeled(tmp_path / "images", classes=("0", "9"))
    assert cli.main(["eval", "classify", "--model", str(export), "--folder", str(folder)]) == 2
    assert "not among the classes" in capsys.readouterr().err
