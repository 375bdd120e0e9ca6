"""Files replaced whole: the old content or the new, never a part, and no temporary file left."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsv2cli.fsutil import replacing, write_atomic


def test_write_atomic_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "speeds.json"
    target.write_text("old")
    write_atomic(target, '{"é": 1}')
    assert target.read_bytes() == '{"é": 1}'.encode()
    write_atomic(target, b"\x00bytes", durable=True)
    assert target.read_bytes() == b"\x00bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["speeds.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_the_temporary_file_is_hidden_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.json.") and tmp.suffix == ".tmp"
        tmp.write_text("new")
    assert target.read_text() == "new"
