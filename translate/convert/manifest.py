"""OUTPUT_DIR/manifest.json: which model and settings made the outputs of a folder, and what each input became.

It is written (incomplete) before the first output and rewritten (complete) at the end, so a rerun can tell which
model made what is already there and refuse to mix in another model's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from translate.convert.plan import Job
from translate.utils import write_text_atomic

MANIFEST, ERRORS = "manifest.json", "errors.txt"


def existing_record(job: Job) -> dict:
    """A manifest entry for an output kept from an earlier run (its size read from the header only)."""
    try:
        with Image.open(job.target) as img:
            size = list(img.size)
    except OSError:
        size = None
    return {"input": job.rel, "output": job.out, "size": size, "existing": True}


def check_same_settings(output_dir: Path, settings: dict, overwrite: bool) -> None:
    """Refuse to mix outputs of another model or other settings into a folder, unless --overwrite."""
    path = output_dir / MANIFEST
    if overwrite or not path.is_file():
        return
    try:
        previous = json.loads(path.read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # not ours, or unreadable: nothing to compare with
    changed = [k for k in settings if k != "model" and previous.get(k) != settings[k]]
    if previous.get("model", {}).get("sha256") != settings["model"]["sha256"]:
        changed.insert(0, "model")
    if changed:
        raise ValueError(f"{output_dir} holds outputs made with another {', '.join(changed)}; rerun with "
                         f"--overwrite to replace them, or choose another output folder")


def write_manifest(output_dir: Path, settings: dict, complete: bool, **content) -> None:
    manifest = {"settings": settings, "complete": complete, **content}
    write_text_atomic(output_dir / MANIFEST, json.dumps(manifest, indent=1))
