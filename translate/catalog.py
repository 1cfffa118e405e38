"""The recipes shipped inside the package (translate/recipes, linked as recipes/ in a checkout), found by name.

`translate train horse2zebra --preset cpu` works from an installed wheel as from a clone: a RECIPE that is not a
file is looked up here. `translate recipes` lists each with the first line of its header and its presets.
"""

from __future__ import annotations

from pathlib import Path

import yaml

RECIPES = Path(__file__).parent / "recipes"


def recipe_names() -> list[str]:
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def find_recipe(name: str) -> Path:
    """A recipe file: `name` itself when it is a file, else the shipped recipe of that name (with or without .yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = RECIPES / f"{path.name.removesuffix('.yaml')}.yaml"
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise FileNotFoundError(f"recipe not found: {name} is neither a file nor a shipped recipe "
                            f"({', '.join(recipe_names())})")


def describe(path: Path) -> tuple[str, list[str]]:
    """The header's first line (what the recipe trains) and the names of its presets."""
    text = path.read_text()
    header = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
    presets = (yaml.safe_load(text) or {}).get("presets") or {}
    return header, list(presets)


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    for name in recipe_names():
        header, presets = describe(RECIPES / f"{name}.yaml")
        print(f"{name}\n    {header}\n    presets: {', '.join(presets) or 'none'}")
    return 0
