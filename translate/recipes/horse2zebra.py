"""Runs recipes/horse2zebra.yaml:

    python recipes/horse2zebra.py [--preset cpu] [key=value ...] [--run-dir DIR] [--resume]

Same as `translate train recipes/horse2zebra.yaml ...`;
works under `accelerate launch recipes/horse2zebra.py ...` too.
"""

import sys
from pathlib import Path

from translate.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", str(Path(__file__).with_suffix(".yaml")), *sys.argv[1:]]))
