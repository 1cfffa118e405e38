"""Resumable HTTP download and safe archive extraction, with nothing but the standard library.

A download goes to NAME.part; a later run continues it with an HTTP Range request (or starts over when the server
ignores ranges) and renames it to NAME only when complete, so an interrupted run never leaves a file that looks
finished. Archives are extracted refusing members that would land outside the target folder.
"""

from __future__ import annotations

import re
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

CHUNK = 1 << 20


def download(url: str, dest: Path, timeout: float = 60.0, progress: bool = True) -> Path:
    """Fetch `url` into `dest` (kept if already there), resuming a partial NAME.part."""
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have and _total_from_range(err.headers.get("Content-Range")) == have:
            part.replace(dest)  # the previous run got every byte but stopped before the rename
            return dest
        raise OSError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise OSError(f"download of {url} failed: {err.reason} (no network? use --from with a local copy)") from err
    with response:
        if have and response.status != 206:
            have = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        written = _copy(response, part, "ab" if have else "wb", have, total, dest.name, progress)
    if total is not None and written != total:
        raise OSError(f"download of {url} stopped at {written} of {total} bytes; run again to resume")
    part.replace(dest)
    return dest


def _copy(response, part: Path, mode: str, have: int, total: int | None, label: str, progress: bool) -> int:
    from tqdm import tqdm

    with open(part, mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=label,
                                       file=sys.stderr, disable=not progress) as bar:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            bar.update(len(chunk))
    return part.stat().st_size


def _total_from_range(header: str | None) -> int | None:
    """The full size from a Content-Range header such as 'bytes */12345'."""
    match = re.search(r"/(\d+)$", header or "")
    return int(match.group(1)) if match else None


def extract(archive: Path, into: Path) -> Path:
    """Unpack a .zip or .tar(.gz/.bz2/.xz) into `into`; a member escaping `into` (../, absolute path) is an error."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                _check_inside(into, name, archive)
            zf.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _check_inside(into, member.name, archive)
                if member.issym() or member.islnk():
                    raise ValueError(f"archive {archive} holds a link ({member.name}); refusing to extract it")
            # the "data" filter (Python >= 3.10.12 / 3.11.4) also drops unsafe modes; the checks above cover older ones
            tf.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    else:
        raise ValueError(f"{archive} is neither a zip nor a tar archive")
    return into


def _check_inside(into: Path, name: str, archive: Path) -> None:
    target = (into / name).resolve()
    if not target.is_relative_to(into.resolve()):
        raise ValueError(f"archive {archive} member {name!r} would be written outside {into}")
