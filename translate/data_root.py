"""One data root for every recipe: `datasets/prepare.py NAME` writes ROOT/NAME, recipes read `${data}/NAME`.

ROOT is $TRANSLATE_DATA, or ./data (relative to where the command runs). A recipe that names `${data}/horse2zebra`
works on any machine where prepare.py was run with the same root, and the config a run saves holds the resolved
path, so the run folder alone says what was read.
"""

from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "TRANSLATE_DATA"
DEFAULT = "data"
PLACEHOLDER = "${data}"
PATH_KEYS = ("root", "source", "target")  # the data section's folder keys


def data_root() -> Path:
    return Path(os.environ.get(VARIABLE) or DEFAULT)


def expand(value):
    """A config value with `${data}` replaced by the data root; anything but a string is returned as it is."""
    if not isinstance(value, str) or PLACEHOLDER not in value:
        return value
    return value.replace(PLACEHOLDER, str(data_root()))


def prepare_hint(folder: Path) -> str:
    """What to run when `folder` is missing: the prepare command for a dataset under the data root, else ''."""
    try:
        relative = Path(os.path.abspath(folder)).relative_to(os.path.abspath(data_root()))
    except ValueError:
        return ""
    if not relative.parts:
        return f" (the data root: set {VARIABLE} or run `python datasets/prepare.py list`)"
    name = relative.parts[0]
    return f"; prepare it with: python datasets/prepare.py {name} (it writes to {VARIABLE}, now {data_root()})"
