"""Unbounded and odd input (issue 20, part 1): caps checked while reading, special files refused,
a UTF-16 byte-order mark before text that is not UTF-16, file names that would split an error line.

Infinite inputs are never fed whole: each test checks that the cap stops the read early (a few
seconds at most, a bounded peak RSS measured around the one dsv2 process).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest

from dsv2cli.errors import ExitCode, InputError, one_line, quote_name
from dsv2cli.sources import InputLimits, load, load_inputs
from dsv2cli.sources.limits import read_capped

from .conftest import dsv2_cmd

# Runs one command and prints its exit code, peak RSS (KiB) and stderr as JSON: the peak is this
# wrapper's children's, so it is dsv2's alone, whatever else the test process ran.
_MEASURE = """
import json, resource, subprocess, sys, time
started = time.monotonic()
proc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60)
print(json.dumps({"rc": proc.returncode, "stderr": proc.stderr, "seconds": time.monotonic() - started,
                  "rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _measured(
    args: list[str], stdin: int | IO[bytes] | None = subprocess.DEVNULL, env: dict[str, str] | None = None
) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, "-", *dsv2_cmd(), *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


class _Endless(io.RawIOBase):
    """An infinite stream of ``y\\n`` that counts what was read from it."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        buffer[:n] = (b"y\n" * (n // 2 + 1))[:n]
        self.given += n
        return n


def test_an_endless_stream_stops_one_block_past_the_cap() -> None:
    stream = _Endless()
    with pytest.raises(InputError, match=r"<stdin>: larger than the 1 MiB input limit per file"):
        read_capped(stream, "<stdin>", InputLimits(file_bytes=1024**2))  # type: ignore[arg-type]
    assert stream.given <= 2 * 1024**2 + 1


def test_the_total_cap_counts_every_input(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("word " * 120_000)  # 600,000 bytes each
    limits = InputLimits(file_bytes=1024**2, total_bytes=1024**2)
    with pytest.raises(InputError) as caught:
        load_inputs([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], limits=limits)
    assert str(caught.value).startswith(f"{tmp_path / 'b.txt'}: the inputs together pass the 1 MiB total input limit")
    docs, _ = load_inputs([str(tmp_path / "a.txt")], limits=InputLimits(file_bytes=1024**2, total_bytes=1024**2))
    assert len(docs) == 1


def test_dev_zero_is_refused_before_reading() -> None:
    result = _measured(["pack", "/dev/zero"])
    assert result["rc"] == ExitCode.INPUT
    assert result["stderr"] == (
        "dsv2: error: /dev/zero: a character device, not a regular file; pipe a stream in as standard input (-)\n"
    )
    assert result["rss_kib"] < 200 * 1024


def test_endless_standard_input_hits_the_cap_early(tmp_path: Path) -> None:
    env = {**os.environ, "DSV2_MAX_INPUT_FILE": "4M"}
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        result = _measured(["pack", "-"], stdin=yes.stdout, env=env)
    finally:
        yes.kill()
        yes.wait()
    assert result["rc"] == ExitCode.INPUT
    assert result["stderr"].startswith("dsv2: error: <stdin>: larger than the 4 MiB input limit per file")
    assert "DSV2_MAX_INPUT_FILE" in result["stderr"] and result["stderr"].count("\n") == 1
    assert result["seconds"] < 20  # the read stops at the cap; the rest of `yes` is never read
    assert result["rss_kib"] < 200 * 1024


def test_summarize_dry_run_of_endless_input_stops_at_the_config_cap(dsv2_home: Path, tmp_path: Path) -> None:
    dsv2_home.mkdir(parents=True)
    (dsv2_home / "config.toml").write_text('max_input_file = "2M"\n')
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            [*dsv2_cmd(), "summarize", "-", "--dry-run", "--tokenizer", "deepseek-v2"],
            stdin=yes.stdout,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        yes.kill()
        yes.wait()
    assert proc.returncode == ExitCode.INPUT, proc.stderr
    assert "2 MiB input limit per file" in proc.stderr and proc.stdout == ""


def test_a_fifo_without_a_writer_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.run([*dsv2_cmd(), "pack", str(fifo)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == ExitCode.INPUT
    assert proc.stderr == (
        f"dsv2: error: {fifo}: a named pipe (FIFO), not a regular file; pipe a stream in as standard input (-)\n"
    )


def test_dev_stdin_is_standard_input_and_allowed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*dsv2_cmd(), "pack", "/dev/stdin"], input="The ferry leaves at noon.\n", capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "The ferry leaves at noon." in proc.stdout


def test_a_utf16_bom_before_utf8_text_is_decoded_as_utf8_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xff\xfe" + "Harbour fees rise in May.\nNaïve ferry.\n".encode())
    doc = load(str(path))
    assert doc.text == "Harbour fees rise in May.\nNaïve ferry."
    assert doc.warnings == [f"{path}: starts with a UTF-16 byte-order mark but is not UTF-16; decoded as UTF-8"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"\xfe\xff" + "Le café coûte très cher, mais les élèves paient.\n".encode("cp1252"))
    doc = load(str(latin))
    assert doc.text.startswith("Le café coûte")
    assert doc.warnings == [
        f"{latin}: starts with a UTF-16 byte-order mark but is not UTF-16; decoded as cp1252 (detected)"
    ]
    real = tmp_path / "real.txt"
    real.write_bytes("Real UTF-16 text.\n中文\n".encode("utf-16"))
    doc = load(str(real))
    assert doc.text == "Real UTF-16 text.\n中文" and doc.warnings == []


def test_the_bom_warning_reaches_stderr(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xff\xfehello world\n")
    proc = subprocess.run([*dsv2_cmd(), "pack", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "is not UTF-16; decoded as UTF-8" in proc.stderr and "hello world" in proc.stdout


def test_a_missing_file_with_a_newline_in_its_name_is_one_error_line(tmp_path: Path) -> None:
    name = str(tmp_path / "no\nsuch\x1b[31m.txt")
    proc = subprocess.run([*dsv2_cmd(), "pack", name], capture_output=True, text=True)
    assert proc.returncode == ExitCode.INPUT
    assert proc.stderr == f"dsv2: error: {name!r}: no such file\n"


def test_names_are_quoted_only_when_they_need_it() -> None:
    assert quote_name("report.pdf") == "report.pdf"
    assert quote_name("a\nb") == "'a\\nb'"
    assert quote_name(" lead") == "' lead'"
    assert one_line("x\ny\u2028z\x1b") == "x\\ny\\u2028z\\x1b"


def test_reading_from_a_writer_that_stops_at_the_cap_does_not_hang(tmp_path: Path) -> None:
    """A FIFO given as standard input is read (it is stdin), up to the cap."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as out:
            try:
                while True:
                    out.write(b"y\n" * 65536)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    env = {**os.environ, "DSV2_MAX_INPUT_FILE": "1M"}
    with open(fifo, "rb") as stdin:
        proc = subprocess.run(
            [*dsv2_cmd(), "pack", "/dev/stdin"], stdin=stdin, capture_output=True, text=True, timeout=60, env=env
        )
    writer.join(timeout=10)
    assert proc.returncode == ExitCode.INPUT
    assert "1 MiB input limit per file" in proc.stderr
