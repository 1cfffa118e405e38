"""Runs recipes/sketch2handbag.yaml:

    python recipes/sketch2handbag.py [--preset cpu] [key=value ...] [--run-dir DIR] [--resume]

Same as `translate train recipes/sketch2handbag.yaml ...`;
works under `accelerate launch recipes/sketch2handbag.py ...` too.
"""

import sys
from pathlib import Path

from translate.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", str(Path(__file__).with_suffix(".yaml")), *sys.argv[1:]]))
