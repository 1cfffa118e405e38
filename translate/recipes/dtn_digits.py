"""Runs recipes/dtn_digits.yaml: `python recipes/dtn_digits.py [key=value ...] [--run-dir DIR] [--resume]`.

Same as `translate train recipes/dtn_digits.yaml ...`; works under `accelerate launch recipes/dtn_digits.py ...` too.
"""

import sys
from pathlib import Path

from translate.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", str(Path(__file__).with_suffix(".yaml")), *sys.argv[1:]]))
