"""OUTPUT_DIR/manifest.json: which model and settings made the outputs of a folder, and what each input became.

It is written (incomplete) before the first output and rewritten (complete) at the end, so a rerun can tell which
model made what is already there and refuse to mix in another model's outputs. OUTPUT_DIR/errors.txt beside it
lists what failed or was skipped, one record a line.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from translate.convert.plan import Job
from translate.convert.safe_paths import OutputFolder
from translate.data.folders import GALLERY_DIR, visible_files
from translate.data.images import is_image_file

MANIFEST, ERRORS = "manifest.json", "errors.txt"
GALLERY = GALLERY_DIR  # translate gallery's pages and thumbnails


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


def write_manifest(folder: OutputFolder, settings: dict, complete: bool, **content) -> None:
    manifest = {"settings": settings, "complete": complete, **content}
    folder.write_text(folder.root / MANIFEST, json.dumps(manifest, indent=1))


def write_errors(folder: OutputFolder, failed: list[dict], skipped: list[dict]) -> None:
    """errors.txt: `failed|skipped TAB input TAB reason`, one record a line; removed when there is nothing to say
    (it may be left from an earlier run whose problems are gone)."""
    if not failed and not skipped:
        folder.remove(folder.root / ERRORS)
        return
    lines = [f"{kind}\t{one_line(r['input'])}\t{one_line(r['reason'])}"
             for kind, records in (("failed", failed), ("skipped", skipped)) for r in records]
    folder.write_text(folder.root / ERRORS, "\n".join(lines) + "\n")


_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def one_line(text: str) -> str:
    """`text` with nothing that could split a record or a terminal line: backslash, tab, newline and every other
    character that is not printable (controls, U+2028 ...) as Python escapes (\\n, \\x1b, \\u2028), and the bytes of a
    name that is not UTF-8 (held by Python as surrogates) as \\xNN. A file name may hold any of them."""
    return "".join(ch if ch.isprintable() and ch != "\\" else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if "\udc80" <= ch <= "\udcff":  # os.fsdecode's stand-in for the byte ord(ch) - 0xdc00
        return f"\\x{ord(ch) - 0xDC00:02x}"
    return _ESCAPES.get(ch) or ascii(ch)[1:-1]
