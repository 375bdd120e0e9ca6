"""Damaged and unwritable state (issue 20, part 5): the token-count cache heals itself, a full
disk gives one line naming the path, and a cache is never needed for an answer.

The full disk is a real one: a small tmpfs when the tests run as root and mounting works, else
a directory without write permission (then the message is "permission denied", not "no space").
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dsv2cli.errors import ExitCode
from dsv2cli.fsutil import write_atomic
from dsv2cli.tokens import COUNT_CACHE_SCHEMA, CountCache, Tokenizer

from .conftest import dsv2_cmd

RUN_FLAGS = ["--threads", "1", "--temperature", "0", "--max-tokens", "8", "--ctx", "2048"]
TEXTS = ["The ferry leaves at noon.\n", "Harbour fees rise in May.\n", "def f():\n    return 1\n"]


@pytest.fixture(scope="module")
def tokenizer(deepseek_vocab: Path) -> Tokenizer:
    return Tokenizer.load(deepseek_vocab)


def _cache(path: Path, tokenizer: Tokenizer) -> CountCache:
    return CountCache(tokenizer, path, "key")


def _expected(tokenizer: Tokenizer) -> list[int]:
    return [tokenizer.count(t) for t in TEXTS]


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _garbage_header(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(4080))


def _older_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE counts (key TEXT PRIMARY KEY, n INTEGER)")
    db.execute("INSERT INTO counts VALUES ('x', 3)")
    db.commit()
    db.close()


def _newer_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE counts (tokenizer TEXT, sha256 TEXT, tokens INTEGER, PRIMARY KEY (tokenizer, sha256))")
    db.execute(f"PRAGMA user_version = {COUNT_CACHE_SCHEMA + 1}")
    db.commit()
    db.close()


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inside").write_text("x")


@pytest.mark.parametrize("damage", [_garbage, _garbage_header, _older_schema, _newer_schema, _directory])
def test_a_damaged_count_cache_is_moved_aside_and_rebuilt(
    tmp_path: Path, tokenizer: Tokenizer, damage: Callable[[Path], None]
) -> None:
    path = tmp_path / "cache" / "token-counts.sqlite"
    path.parent.mkdir()
    damage(path)
    cache = _cache(path, tokenizer)
    assert cache.count_many(TEXTS) == _expected(tokenizer)
    cache.close()
    assert len(cache.notices) == 1 and "\n" not in cache.notices[0]
    assert cache.notices[0].startswith(f"token-count cache {path}: damaged (")
    assert cache.notices[0].endswith("rebuilding it")
    aside = [p for p in path.parent.iterdir() if p.name.startswith("token-counts.sqlite.damaged-")]
    assert len(aside) == 1 and not aside[0].name.endswith(("-wal", "-shm"))
    again = _cache(path, tokenizer)
    assert again.count_many(TEXTS) == _expected(tokenizer) and again.hits == len(TEXTS)
    again.close()
    assert again.notices == []
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == COUNT_CACHE_SCHEMA
    db.close()


def test_a_cache_from_before_the_schema_was_numbered_is_kept(tmp_path: Path, tokenizer: Tokenizer) -> None:
    path = tmp_path / "token-counts.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE counts (tokenizer TEXT, sha256 TEXT, tokens INTEGER, PRIMARY KEY (tokenizer, sha256))")
    db.commit()
    db.close()
    first = _cache(path, tokenizer)
    first.count_many(TEXTS)
    first.close()
    assert first.notices == []
    second = _cache(path, tokenizer)
    second.count_many(TEXTS)
    second.close()
    assert second.hits == len(TEXTS)


def test_pack_and_plan_heal_a_garbage_cache_with_one_notice(dsv2_home: Path, tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The ferry leaves at noon.\n")
    cache = dsv2_home / "cache" / "token-counts.sqlite"
    cache.parent.mkdir(parents=True)
    _garbage(cache)
    pack = subprocess.run(
        [*dsv2_cmd(), "pack", str(doc), "--json", "--tokenizer", "deepseek-v2"], capture_output=True, text=True
    )
    assert pack.returncode == 0, pack.stderr
    assert [line for line in pack.stderr.splitlines() if "token-count cache" in line] == [
        line for line in pack.stderr.splitlines() if line.startswith(f"dsv2: token-count cache {cache}: damaged (")
    ]
    assert pack.stderr.count("moved aside") == 1
    cache.unlink()
    for extra in cache.parent.glob("token-counts.sqlite-*"):
        extra.unlink()
    _directory(cache)
    plan = subprocess.run(
        [*dsv2_cmd(), "plan", str(doc), "--tokenizer", "deepseek-v2"], capture_output=True, text=True, timeout=120
    )
    assert plan.returncode == 0, plan.stderr
    assert f"dsv2: token-count cache {cache}: damaged (not a file); moved aside" in plan.stderr
    assert "unexpected error" not in plan.stderr and cache.is_file()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(a directory where writes fail, the words for why): a full 64 KiB tmpfs as root, else a read-only folder."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
        if done.returncode == 0:
            try:
                (mount / "home").mkdir()
                filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
                try:
                    while True:
                        os.write(filler, b"\0" * 4096)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                finally:
                    os.close(filler)
                yield mount / "home", "no space left on device"
            finally:
                subprocess.run(["umount", "-l", str(mount)], check=False)
            return
    (mount / "home").mkdir()
    (mount / "home").chmod(0o500)
    try:
        yield mount / "home", "permission denied"
    finally:
        (mount / "home").chmod(0o700)


def test_plan_answers_on_a_full_disk_without_its_cache(full_disk: tuple[Path, str], tmp_path: Path) -> None:
    home, why = full_disk
    doc = tmp_path / "notes.txt"
    doc.write_text("The ferry leaves at noon.\n" * 20)
    env = {**os.environ, "DSV2_HOME": str(home)}
    plan = subprocess.run(
        [*dsv2_cmd(), "plan", str(doc), "--tokenizer", "deepseek-v2", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert plan.returncode == 0, plan.stderr
    assert '"context_tokens"' in plan.stdout
    notices = [line for line in plan.stderr.splitlines() if "token-count cache" in line]
    assert len(notices) == 1 and why in notices[0].lower() and "counting without it" in notices[0]
    assert not list(home.rglob("token-counts.sqlite*"))  # nothing half-written left to be taken for a cache


def test_an_atomic_write_on_a_full_disk_names_the_file_and_leaves_nothing(full_disk: tuple[Path, str]) -> None:
    home, _ = full_disk
    target = home / "out.json"
    with pytest.raises(OSError) as caught:
        write_atomic(target, "x" * 200_000)
    assert caught.value.filename == str(target)
    assert list(home.iterdir()) == []


@pytest.mark.slow
def test_the_first_ask_on_a_full_disk_is_one_line_and_exit_3(full_disk: tuple[Path, str], tmp_path: Path) -> None:
    home, why = full_disk
    if why != "no space left on device":
        pytest.skip("needs a full file system (tmpfs as root)")
    doc = tmp_path / "big.txt"
    doc.write_text(
        "\n\n".join(f"Paragraph {i}: the ferry number {i} leaves at {i % 12} o'clock." * 8 for i in range(300))
    )
    env = {**os.environ, "DSV2_HOME": str(home)}
    proc = subprocess.run(
        [*dsv2_cmd(), "ask", "When does ferry 7 leave?", str(doc), *RUN_FLAGS],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == ExitCode.INPUT, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"dsv2: error: {home}") and last.endswith(": no space left on device")
    assert "unexpected error" not in proc.stderr and "Traceback" not in proc.stderr
