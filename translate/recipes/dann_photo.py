"""Runs recipes/dann_photo.yaml: `python recipes/dann_photo.py [key=value ...] [--run-dir DIR] [--resume]`.

Same as `translate train recipes/dann_photo.yaml ...`; works under `accelerate launch recipes/dann_photo.py ...` too.
"""

import sys
from pathlib import Path

from translate.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", str(Path(__file__).with_suffix(".yaml")), *sys.argv[1:]]))
