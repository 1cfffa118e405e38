"""The supervised classifier: trains on a labeled folder, exports its classes, checks the class count."""

import pytest
import torch

from tests.helpers import write_labeled
from translate import config
from translate.export import load_classifier, load_encoder
from translate.training.loop import train

TINY = ["model.name=classifier", "model.image_size=16", "model.embedding_dim=8", "model.num_classes=3",
        "data.load_size=16", "data.crop_size=16", "data.preprocess=resize", "data.flip=false", "data.batch_size=4",
        "data.num_workers=0", "train.max_steps=3", "train.decay_steps=0", "train.log_every=1"]


def test_trains_and_exports_classes(tmp_path):
    root = write_labeled(tmp_path / "data", classes=("cat", "cow", "dog"), per_class=2)
    export = train(config.load(None, [*TINY, f"data.root={root}", "model.augment=color", "model.ema_decay=0.5",
                                      "model.optimizer=sgd"]), tmp_path / "run")
    net, spec = load_classifier(export, with_spec=True)
    assert spec["classes"] == ["cat", "cow", "dog"] and spec["image_size"] == 16 and not net.training
    assert net(torch.zeros(1, 3, 16, 16)).shape == (1, 3)
    assert load_encoder(export)(torch.zeros(1, 3, 16, 16)).shape == (1, 8)


def test_class_count_must_match(tmp_path):
    root = write_labeled(tmp_path / "data", classes=("a", "b"))
    with pytest.raises(ValueError, match="2 classes"):
        train(config.load(None, [*TINY, f"data.root={root}"]), tmp_path / "run")


def test_needs_a_root(tmp_path):
    with pytest.raises(ValueError, match="data.root"):
        train(config.load(None, TINY), tmp_path / "run")


def test_periodic_eval_of_a_classifier_is_a_clear_error(tmp_path):
    root = write_labeled(tmp_path / "data", classes=("cat", "cow", "dog"), per_class=2)
    with pytest.raises(ValueError, match="translate eval classify"):
        train(config.load(None, [*TINY, f"data.root={root}", "eval.every=1"]), tmp_path / "run")
