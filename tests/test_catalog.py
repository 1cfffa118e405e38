"""Recipes by name: the shipped ones are found without a path, listed with their presets."""

from __future__ import annotations

import pytest

from translate import catalog


def test_a_shipped_recipe_is_found_by_name_with_or_without_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here: as for an installed package
    assert catalog.find_recipe("horse2zebra") == catalog.RECIPES / "horse2zebra.yaml"
    assert catalog.find_recipe("horse2zebra.yaml") == catalog.RECIPES / "horse2zebra.yaml"


def test_a_file_wins_over_a_shipped_name_and_unknown_names_list_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "horse2zebra").write_text("model: {name: cut}\n")
    assert catalog.find_recipe("horse2zebra") == catalog.Path("horse2zebra")
    with pytest.raises(FileNotFoundError, match=r"recipe not found: horse2zebrah .*facades, horse2zebra,"):
        catalog.find_recipe("horse2zebrah")
    with pytest.raises(FileNotFoundError, match="recipe not found: sub/facades"):
        catalog.find_recipe("sub/facades")  # a path that is not there is not looked up by its name


def test_the_listing_shows_each_recipe_with_its_presets(capsys):
    assert catalog.run(None) == 0
    out = capsys.readouterr().out
    assert "horse2zebra\n    CycleGAN horse <-> zebra" in out
    assert "presets: " in out and "cpu_cyclegan" in out
    assert set(catalog.recipe_names()) >= {"horse2zebra", "sketch2handbag", "facades"}
