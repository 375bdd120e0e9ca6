"""Run dsv2 the way a person does: in a real pseudo-terminal, read back through a terminal emulator.

rich's live display and a streamed answer only interact on a real terminal (stdout and stderr the
same tty, the display redrawn with carriage returns and erase-line sequences). ptyprocess gives the
child a real pty; pyte replays every byte it wrote and gives the final screen, as a person would
see it when the command returns.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ptyprocess
import pyte

COLS, ROWS = 100, 300  # tall enough that nothing scrolls away in these tests
CONTROL = re.compile(r"\x1b|\r(?!\n)")  # an escape sequence, or a carriage return that redraws a line


@dataclass
class PtyRun:
    raw: bytes  # every byte the terminal received
    screen: list[str]  # the final screen, one string per row, trailing blanks removed
    exit_code: int

    @property
    def text(self) -> str:
        return "\n".join(self.screen).strip("\n")


def run_in_pty(
    args: list[str],
    env: dict[str, str],
    *,
    redirect_stderr: Path | None = None,
    timeout: float = 300.0,
) -> PtyRun:
    """``dsv2 ARGS`` on a pty of COLS x ROWS (``2> redirect_stderr`` when given); its final screen."""
    cmd = [sys.executable, "-m", "dsv2cli", *args]
    if redirect_stderr is not None:
        cmd = ["/bin/sh", "-c", f"exec {shlex.join(cmd)} 2>{shlex.quote(str(redirect_stderr))}"]
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    env.pop("NO_COLOR", None)
    proc = ptyprocess.PtyProcess.spawn(cmd, env=env, dimensions=(ROWS, COLS))
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            proc.kill(9)
            raise TimeoutError(f"{shlex.join(args)} did not finish in {timeout} s; got {b''.join(chunks)[-2000:]!r}")
        try:
            chunks.append(proc.read(65536))
        except EOFError:
            break
    proc.wait()
    raw = b"".join(chunks)
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    stream.feed(raw)
    lines = [line.rstrip() for line in screen.display]
    status = proc.exitstatus if proc.exitstatus is not None else 128 + (proc.signalstatus or 0)
    return PtyRun(raw, lines, status)


def squeeze(text: str) -> str:
    """Text without any whitespace: a screen wraps long lines at its width, a stream does not."""
    return re.sub(r"\s+", "", text)


def child_env() -> dict[str, str]:
    """This process's environment (the test's DSV2_HOME included), as the child's."""
    return dict(os.environ)
