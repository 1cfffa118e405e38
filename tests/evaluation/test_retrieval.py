"""Retrieval metrics on hand-built embeddings (known Recall@K, mAP, CMC), which gallery answers are right (class,
name, pairs, distractors), and the command end to end at class and at instance level."""

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import PIX2PIX_TINY, make_classifier_export, write_labeled
from translate import cli, config
from translate.evaluation import retrieval
from translate.evaluation.retrieval_sets import retrieval_set
from translate.export import write_export
from translate.models import MODELS
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
    assert page.count("<tr>") == 5 and 'src="r_files/q_000000.jpg"' in page
    assert len(list((tmp_path / "page" / "r_files").glob("q_*.jpg"))) == 4


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
    assert result["warnings"] == ["query classes 1 have no image in the gallery, so 2 queries can never be answered "
                                  "right: they count as misses in Recall@K and CMC (of all 4 queries) and are left "
                                  "out of mAP (over the other 2)"]


def test_unanswerable_queries_lower_recall_and_leave_map_as_the_warning_says():
    """What the warning states, on the metrics themselves: adding a query whose class the gallery lacks halves
    Recall@1 (a miss among two queries) and leaves mAP as it was (the query is left out of it)."""
    gallery, labels = torch.eye(3), torch.tensor([0, 1, 2])
    answerable, _ = retrieval.retrieval_metrics(torch.eye(3)[:1], torch.tensor([0]), gallery, labels)
    both, _ = retrieval.retrieval_metrics(torch.eye(3)[:2], torch.tensor([0, 7]), gallery, labels)
    assert (answerable["recall@1"], both["recall@1"]) == (1.0, 0.5)
    assert answerable["map"] == both["map"] == 1.0
    assert both["cmc"][0] == 0.5


def touch_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 8)).save(folder / name)
    return folder


def test_match_by_name_ignores_the_extension_and_distractors_answer_nothing(tmp_path):
    query = touch_images(tmp_path / "sketches", ["1.png", "2.png", "3.png"])
    gallery = touch_images(tmp_path / "photos", ["1.jpg", "2.jpg"])
    extra = touch_images(tmp_path / "more", ["1.jpg"])  # same name as a true match, still only a distractor
    data = retrieval_set(query, gallery, "name", distractors=(extra,))
    assert [p.name for p in data.gallery] == ["1.jpg", "2.jpg", "1.jpg"]
    assert data.query_labels == [0, 1, -1] and data.gallery_labels == [0, 1, 2]
    assert data.level == "instance" and data.caption(2) == "(distractor) 1.jpg"


def test_queries_without_a_match_are_warned_about_as_the_metrics_treat_them(tmp_path):
    query = touch_images(tmp_path / "sketches", ["1.png", "2.png", "3.png"])
    data = retrieval_set(query, touch_images(tmp_path / "photos", ["1.jpg", "2.jpg"]), "name")
    assert retrieval.unanswerable_warnings(data) == [
        "1 queries have no match in the gallery (3.png): they count as misses in Recall@K and CMC (of all 3 "
        "queries) and are left out of mAP (over the other 2)"]


def test_pairs_file_lists_the_queries_and_their_matches(tmp_path):
    query = touch_images(tmp_path / "q", ["a.png", "b.png", "c.png"])
    gallery = touch_images(tmp_path / "g", ["x.jpg", "y.jpg"])
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# sketch photo\nb.png y.jpg\na.png x.jpg  # comment\n\nc.png gone.jpg\n")
    data = retrieval_set(query, gallery, pairs=pairs)
    assert [p.name for p in data.query] == ["b.png", "a.png", "c.png"] and data.query_labels == [1, 0, -1]
    pairs.write_text("a.png\n")
    with pytest.raises(ValueError, match="pairs.txt:1: expected 'QUERY GALLERY'"):
        retrieval_set(query, gallery, pairs=pairs)
    pairs.write_text("zz.png x.jpg\n")
    with pytest.raises(FileNotFoundError, match="zz.png does not exist"):
        retrieval_set(query, gallery, pairs=pairs)


def test_same_name_twice_in_the_gallery_is_refused(tmp_path):
    query = touch_images(tmp_path / "q", ["1.png"])
    gallery = touch_images(tmp_path / "g", ["1.jpg", "1.png"])
    with pytest.raises(ValueError, match="same name"):
        retrieval_set(query, gallery, "name")


def write_side_by_side(folder, count, seed):
    """NNN.png, each two identical noise halves: the left half's one true match is its own right half."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(count):
        half = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([half, half], axis=1)).save(folder / f"{i:03d}.png")
    return folder


def test_instance_level_on_halves_finds_each_own_half_and_skips_what_cannot_be_read(tmp_path, capsys):
    export = make_classifier_export(tmp_path / "export")
    pairs = write_side_by_side(tmp_path / "val", 6, seed=0)
    distractors = write_side_by_side(tmp_path / "train", 4, seed=1)
    (distractors / "broken.png").write_bytes(b"not a png")
    assert cli.main(["eval", "retrieval", "--model", str(export), "--query", str(pairs), "--gallery", str(pairs),
                     "--match", "name", "--query-half", "left", "--gallery-half", "right", "--distractors",
                     str(distractors), "--html", str(tmp_path / "page.html"), "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["level"] == "instance" and result["queries"] == 6 and result["gallery"] == 10
    assert result["recall@1"] == 1.0 and result["map"] == 1.0  # identical halves embed identically
    assert [s["path"] for s in result["skipped"]] == [str(distractors / "broken.png")]
    assert result["seconds"] > 0 and result["ms_per_query"] > 0
    page = (tmp_path / "page.html").read_text()
    assert page.count("<tr>") == 7 and page.count("#2a2") == 6  # one green answer per query, none needs a rank


def test_off_the_shelf_encoder_embeds_without_an_export(tmp_path, capsys):
    pairs = write_side_by_side(tmp_path / "val", 3, seed=0)
    assert cli.main(["eval", "retrieval", "--encoder", "efficientnet_lite1", "--image-size", "32", "--query",
                     str(pairs), "--gallery", str(pairs), "--match", "name", "--query-half", "left",
                     "--gallery-half", "right", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recall@1"] == 1.0 and "off the shelf" in result["model"]


def test_translating_with_dropout_on_gives_the_same_scores_every_run(tmp_path, capsys):
    cfg = config.load(None, [*PIX2PIX_TINY, "model.dropout=true"])
    generator = write_export(tmp_path / "pix2pix", MODELS["pix2pix"].build(cfg.model).export_nets(), cfg)
    export = make_classifier_export(tmp_path / "export")
    pairs = write_side_by_side(tmp_path / "val", 6, seed=0)
    command = ["eval", "retrieval", "--model", str(export), "--query", str(pairs), "--gallery", str(pairs),
               "--match", "name", "--query-half", "left", "--gallery-half", "right", "--translate-query",
               str(generator), "--no-progress"]
    scores = []
    for _ in range(2):
        torch.manual_seed(len(scores) + 7)  # whatever the process's RNG was before
        assert cli.main(command) == 0
        scores.append({k: v for k, v in json.loads(capsys.readouterr().out).items() if k in ("map", "cmc")})
    assert scores[0] == scores[1]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_bf16_embeds_under_autocast_and_finds_the_same_matches(precision, tmp_path, capsys, monkeypatch):
    """Also: on a CPU without bf16 instructions (as probed) the result warns that bf16 is emulated, i.e. slow."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    autocast_seen, build = [], retrieval.off_the_shelf

    def spied(*args, **kwargs):
        net, spec = build(*args, **kwargs)
        net.register_forward_pre_hook(lambda *_: autocast_seen.append(torch.is_autocast_enabled("cpu")))
        return net, spec

    monkeypatch.setattr(retrieval, "off_the_shelf", spied)
    pairs = write_side_by_side(tmp_path / "val", 3, seed=0)
    assert cli.main(["eval", "retrieval", "--encoder", "efficientnet_lite1", "--image-size", "32", "--query",
                     str(pairs), "--gallery", str(pairs), "--match", "name", "--query-half", "left",
                     "--gallery-half", "right", "--precision", precision, "--device", "cpu", "--no-progress"]) == 0
    assert autocast_seen and set(autocast_seen) == {precision == "bf16"}
    result = json.loads(capsys.readouterr().out)
    assert result["recall@1"] == 1.0
    assert [w.split(":")[0] for w in result["warnings"]] == (["bf16 on this CPU is emulated (no native bf16 "
                                                              "instructions, e.g. AMX or AVX512-BF16)"]
                                                             if precision == "bf16" else [])
