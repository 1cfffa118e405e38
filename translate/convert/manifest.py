"""OUTPUT_DIR/manifest.json: which model and settings made the outputs of a folder, and what each input became.

It is written (incomplete) before the first output and rewritten (complete) at the end, so a rerun can tell which
model made what is already there and refuse to mix in another model's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from translate.convert.plan import Job
from translate.data.folders import visible_files
from translate.data.images import is_image_file
from translate.utils import write_text_atomic

MANIFEST, ERRORS = "manifest.json", "errors.txt"
GALLERY = "_gallery"  # translate gallery's pages and thumbnails


def existing_record(job: Job) -> dict:
    """A manifest entry for an output kept from an earlier run (its size read from the header only)."""
    try:
        with Image.open(job.target) as img:
            size = list(img.size)
    except OSError:
        size = None
    return {"input": job.rel, "output": job.out, "size": size, "existing": True}


def check_same_settings(output_dir: Path, settings: dict, overwrite: bool) -> None:
    """Refuse to mix outputs of another model or other settings into a folder, unless --overwrite; refuse too when
    the folder holds images but its manifest is missing or damaged, since then nobody knows what made them."""
    path = output_dir / MANIFEST
    if overwrite:
        return
    advice = "rerun with --overwrite to replace them, or choose another output folder"
    if not path.is_file():
        if output_dir.is_dir() and any(is_image_file(p) for p in visible_files(output_dir) if GALLERY not in p.parts):
            raise ValueError(f"{output_dir} holds images but no {MANIFEST}, so which model made them is unknown; "
                             f"{advice}")
        return
    try:
        previous = json.loads(path.read_text())["settings"]
        previous["model"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is damaged ({type(error).__name__}: {error}), so which model made the outputs "
                         f"is unknown; {advice}") from error
    changed = [k for k in settings if k != "model" and previous.get(k) != settings[k]]
    if previous.get("model", {}).get("sha256") != settings["model"]["sha256"]:
        changed.insert(0, "model")
    if changed:
        raise ValueError(f"{output_dir} holds outputs made with another {', '.join(changed)}; {advice}")


def write_manifest(output_dir: Path, settings: dict, complete: bool, **content) -> None:
    manifest = {"settings": settings, "complete": complete, **content}
    write_text_atomic(output_dir / MANIFEST, json.dumps(manifest, indent=1))
