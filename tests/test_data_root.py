"""The data root: `${data}` in recipes, where prepare.py writes, and the hint a missing dataset gives."""

from __future__ import annotations

import pytest

from tests.helpers import REPO
from translate import config
from translate.data.folders import detect_layout, list_images


def test_recipes_read_the_data_root_and_the_saved_config_holds_the_real_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSLATE_DATA", str(tmp_path / "mine"))
    cfg = config.load(REPO / "recipes" / "horse2zebra.yaml")
    assert cfg.data.root == str(tmp_path / "mine" / "horse2zebra")
    assert config.load(None, ["model.name=dann", "data.source=${data}/s"]).data.source == str(tmp_path / "mine/s")


def test_the_default_root_is_data_in_the_working_folder(monkeypatch):
    monkeypatch.delenv("TRANSLATE_DATA")
    assert config.load(REPO / "recipes" / "facades.yaml").data.root == "data/facades"


def test_a_missing_dataset_names_the_command_that_prepares_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSLATE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"horse2zebra does not exist; prepare it with: "
                                                 r"python datasets/prepare\.py horse2zebra \(it writes to"):
        detect_layout(tmp_path / "horse2zebra")
    with pytest.raises(FileNotFoundError, match=r"trainA does not exist; prepare it with: .*prepare\.py horse2zebra"):
        list_images(tmp_path / "horse2zebra" / "trainA")
    with pytest.raises(FileNotFoundError, match=r"elsewhere does not exist$"):  # not under the root: no guess
        list_images(tmp_path.parent / "elsewhere")
