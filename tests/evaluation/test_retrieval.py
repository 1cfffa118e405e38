"""Retrieval metrics on hand-built embeddings (known Recall@K, mAP, CMC) and the command end to end."""

import argparse
import json

import pytest
import torch

from tests.helpers import make_classifier_export, write_labeled
from translate import cli, config
from translate.evaluation import retrieval
from translate.export import write_export
from translate.models.classifier import build_classifier, classifier_spec


def test_known_recall_map_and_cmc():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])
    gallery_labels = torch.tensor([0, 1, 0, 1])
    # query 0 (class 0) at (1, 0.1): ranking 0, 2, 1, 3 -> hits at 1 and 2 -> AP 1
    # query 1 (class 1) at (1, 0): ranking 0, 2, 1, 3 -> hits at 3 and 4 -> AP (1/3 + 2/4) / 2
    query = torch.tensor([[1.0, 0.1], [1.0, 0.0]])
    metrics, ranking = retrieval.retrieval_metrics(query, torch.tensor([0, 1]), gallery, gallery_labels)
    assert ranking.tolist() == [[0, 2, 1, 3], [0, 2, 1, 3]]
    assert metrics["recall@1"] == 0.5 and metrics["recall@5"] == 1.0 and metrics["recall@10"] == 1.0
    assert metrics["map"] == pytest.approx((1 + (1 / 3 + 2 / 4) / 2) / 2)
    assert metrics["cmc"] == pytest.approx([0.5, 0.5, 1.0, 1.0])


def test_cosine_ignores_length_and_absent_classes_miss():
    gallery, gallery_labels = torch.tensor([[10.0, 0.0], [0.0, 0.1]]), torch.tensor([0, 1])
    metrics, _ = retrieval.retrieval_metrics(torch.tensor([[0.0, 5.0], [1.0, 1.0]]), torch.tensor([1, 2]),
                                             gallery, gallery_labels)
    assert metrics["recall@1"] == 0.5  # the class-2 query cannot hit
    assert metrics["map"] == 1.0  # and is left out of mAP


def test_command_prints_json_and_writes_html(tmp_path, capsys):
    cfg = config.load(None, ["model.name=classifier", "model.image_size=16", "model.embedding_dim=8",
                             "model.num_classes=2"])
    net = build_classifier(cfg.model)
    export = write_export(tmp_path / "export", {"classifier": (net, classifier_spec(cfg.model, net))}, cfg)
    query = write_labeled(tmp_path / "query", per_class=2, mode="RGB")
    gallery = write_labeled(tmp_path / "gallery", per_class=3, seed=4)
    parser = argparse.ArgumentParser()
    retrieval.add_arguments(parser)
    args = parser.parse_args(["--model", str(export), "--query", str(query), "--gallery", str(gallery),
                              "--html", str(tmp_path / "page" / "r.html"), "--json", str(tmp_path / "r.json")])
    assert retrieval.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"recall@1", "recall@5", "recall@10", "map", "cmc"} <= set(result)
    assert result["queries"] == 4 and result["gallery"] == 6
    assert json.loads((tmp_path / "r.json").read_text())["map"] == result["map"]
    page = (tmp_path / "page" / "r.html").read_text()
    assert page.count("<tr>") == 5 and "../query/0/000.png" in page


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["eval", "retrieval", "--model", str(tmp_path), "--query", "q", "--gallery", "g"]) == 2
    assert "config.json is missing" in capsys.readouterr().err


def test_query_classes_missing_from_the_gallery_are_warned_about(tmp_path, capsys):
    export = make_classifier_export(tmp_path / "export")
    query = write_labeled(tmp_path / "query", classes=("0", "1"), per_class=2, mode="RGB")
    gallery = write_labeled(tmp_path / "gallery", classes=("0",), per_class=2, seed=4)
    assert cli.main(["eval", "retrieval", "--model", str(export), "--query", str(query), "--gallery",
                     str(gallery), "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["warnings"] and "query classes 1 have no image in the gallery" in result["warnings"][0]
