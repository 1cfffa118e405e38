"""atomic_path: the target is replaced whole or not at all, and no temporary is left behind."""

import pytest

from translate.utils import atomic_path, write_text_atomic


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
