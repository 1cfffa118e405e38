"""atomic_path: the target is replaced whole or not at all, and no temporary is left behind; file permissions."""

import os
import stat
import subprocess
import sys

import pytest
import torch

from translate.utils import atomic_path, current_umask, remove_stale_temporaries, save_safetensors, write_text_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_the_temporary_keeps_the_extension_and_missing_folders_are_made(tmp_path):
    target = tmp_path / "a" / "b" / "grid.png"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == target.parent and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png" and len(list(target.parent.iterdir())) == 1


def test_temporaries_of_a_killed_writer_are_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "sub" / f".out.{int(dead.stdout)}.partial.png"
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    live = tmp_path / f".out.{os.getpid()}.partial.png"
    live.write_bytes(b"being written")
    other = tmp_path / ".notes.partial"  # not a name atomic_path makes
    other.write_text("mine")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()


def test_safetensors_files_get_the_permissions_of_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "a.safetensors")
        assert stat.S_IMODE((tmp_path / "a.safetensors").stat().st_mode) == 0o640  # safetensors alone: 0o600
    finally:
        os.umask(old)
    assert current_umask() == old
