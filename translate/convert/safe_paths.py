"""The one check every writer of OUTPUT_DIR goes through: outputs, manifest.json, errors.txt, the gallery.

INPUT_DIR is only ever read. A path under OUTPUT_DIR may still lead into it: `OUT/_gallery -> ../IN`, a subfolder
or a file of OUT linked to one of IN, or a manifest naming `../x`. So a target is refused when it leaves OUT by
name (`..`, an absolute path), when any part of it that exists below OUT is a symlink, or when it is the real
file of an input (IN/a.png a link to OUT/a.png). OUT itself may be a link (to another disk, say); check_separate
has proven that it is neither INPUT_DIR, nor inside it, nor around it.

`check` runs on every target before anything is written, so a run is refused whole, with one line. The writes
themselves then walk from OUT down one folder at a time with O_NOFOLLOW and write a temporary file in the folder
they hold open, renamed onto the target (os.replace renames over a link, never through it), so a link put in
place between the check and the write cannot redirect it either.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from translate.convert.plan import check_separate

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeOutput(ValueError):
    """Writing this output could change a file outside OUTPUT_DIR (an input, through a link)."""


class OutputFolder:
    """OUTPUT_DIR of a run that reads INPUT_DIR: the only way files are written under it."""

    def __init__(self, input_dir: Path, output_dir: Path):
        check_separate(input_dir, output_dir)
        self.input_dir, self.root = Path(input_dir), Path(output_dir)
        self._checked: set[Path] = set()  # folders below root already proven free of links

    def check_all(self, targets: Iterable[Path], inputs: Iterable[Path] = ()) -> None:
        """Check every target (see check); `inputs` are the files the run reads, whose real files may lie outside
        INPUT_DIR through links."""
        sources = {Path(p).resolve() for p in inputs}
        for target in targets:
            self.check(target, sources)

    def check(self, target: Path, sources: frozenset[Path] | set[Path] = frozenset()) -> None:
        """Raise UnsafeOutput if writing `target` could change anything outside OUTPUT_DIR (see the module)."""
        parts = self._parts(target)
        folder = self.root
        for part in parts[:-1]:
            folder = folder / part
            if folder not in self._checked:
                self._refuse_link(folder)
                self._checked.add(folder)
        self._refuse_link(target)
        if target.resolve() in sources:
            raise UnsafeOutput(f"output {target} is the file of an input of {self.input_dir} (a link to it): writing "
                               "it would overwrite that input; choose another output folder")

    def check_writable(self) -> None:
        """Create OUTPUT_DIR if needed and make sure this user may write in it: one clear line before any work,
        instead of a permission error on a hidden temporary file."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except PermissionError as error:
            raise PermissionError(f"cannot create the output folder {self.root}: permission denied") from error
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"output folder {self.root} is not writable by this user; fix its permissions or "
                                  "choose another output folder")

    @contextmanager
    def open_atomic(self, target: Path) -> Iterator[BinaryIO]:
        """A binary file to write `target` through; it appears under its name only when the block ends normally.
        The temporary is named as translate.utils.atomic_path names its own, so remove_stale_temporaries finds it
        after a kill."""
        parts = self._parts(target)
        folder = self._open_folder(parts[:-1], target)
        name = parts[-1]
        stem, suffix = os.path.splitext(name)
        tmp = f".{stem}.{os.getpid()}.partial{suffix}"
        try:
            self._refuse_link_at(folder, name, target)
            try:
                os.unlink(tmp, dir_fd=folder)  # a killed run of a process with this pid
            except FileNotFoundError:
                pass
            with os.fdopen(os.open(tmp, _CREATE, 0o666, dir_fd=folder), "wb") as file:
                yield file
            os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=folder)
            except FileNotFoundError:
                pass
            raise
        finally:
            os.close(folder)

    def write_text(self, target: Path, text: str) -> None:
        """UTF-8; file names that are not UTF-8 (held by Python as surrogates) are written back as their own bytes."""
        with self.open_atomic(target) as file:
            file.write(text.encode("utf-8", "surrogateescape"))

    def remove(self, target: Path) -> None:
        """Delete `target` if it is there (a link is removed itself, never what it points to)."""
        parts = self._parts(target)
        folder = self._open_folder(parts[:-1], target, create=False)
        if folder is None:
            return
        try:
            os.unlink(parts[-1], dir_fd=folder)
        except FileNotFoundError:
            pass
        finally:
            os.close(folder)

    def _parts(self, target: Path) -> tuple[str, ...]:
        """`target`'s names below OUTPUT_DIR; refused when it is not below it by name."""
        try:
            parts = Path(target).relative_to(self.root).parts
        except ValueError:
            parts = ()
        if not parts or any(part in ("..", ".") for part in parts):
            raise UnsafeOutput(f"output {target} is not a path inside the output folder {self.root}")
        return parts

    def _refuse_link(self, path: Path) -> None:
        if path.is_symlink():
            raise self._link_error(path, os.readlink(path))

    def _refuse_link_at(self, folder: int, name: str, target: Path) -> None:
        try:
            link = os.readlink(name, dir_fd=folder)
        except OSError:  # EINVAL: not a link; ENOENT: not there yet
            return
        raise self._link_error(target, link)

    def _link_error(self, path: Path, link: str) -> UnsafeOutput:
        return UnsafeOutput(f"{path} is a link (to {link}); nothing is written through a link in the output folder, "
                            f"as it could lead into the input folder {self.input_dir}; remove the link")

    def _open_folder(self, names: tuple[str, ...], target: Path, create: bool = True) -> int | None:
        """A descriptor of the folder that holds `target`, reached from OUTPUT_DIR without following any link;
        missing folders are made when `create` (else None)."""
        folder = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        path = self.root
        try:
            for name in names:
                path = path / name
                try:
                    inner = os.open(name, _OPEN_DIR, dir_fd=folder)
                except FileNotFoundError:
                    if not create:
                        os.close(folder)
                        return None
                    try:
                        os.mkdir(name, dir_fd=folder)
                    except FileExistsError:  # another writer thread made it first
                        pass
                    inner = os.open(name, _OPEN_DIR, dir_fd=folder)
                os.close(folder)
                folder = inner
        except OSError:
            os.close(folder)
            self._refuse_link(path)  # O_NOFOLLOW met a link (put there after the check)
            raise
        return folder
