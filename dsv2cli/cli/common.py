"""What every command shares: the process environment, error handling, settings, inputs, progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

import typer

from ..errors import Dsv2Error, ExitCode
from ..render import Screen

if TYPE_CHECKING:
    from rich.console import Console  # imported when a console is made: ~20 ms at start-up otherwise


@dataclass
class Env:
    """The process's streams and environment, bundled so tests can substitute them.

    What is drawn on the streams (result text, notes, live progress) goes through ``screen``,
    which keeps a live display from ever drawing over the output (render.Screen)."""

    stdin: BinaryIO = field(default_factory=lambda: sys.stdin.buffer)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    screen: Screen = field(init=False)

    def __post_init__(self) -> None:
        self.screen = Screen(self.stdout, self.stderr, self.environ)

    @property
    def stdout_isatty(self) -> bool:
        return self.screen.stdout_isatty

    @property
    def animate(self) -> bool:
        """Progress bars only on a terminal, and never with NO_COLOR."""
        return self.screen.animate

    def console(self) -> Console:
        return self.screen.console()

    def note(self, message: str) -> None:
        self.screen.note(message)

    def confirm(self, question: str) -> bool | None:
        """Ask on the terminal (stdin may be the document): True/False, or None when there is no terminal."""
        if not _isatty(self.stderr):
            return None
        try:
            with open("/dev/tty", "r+", encoding="utf-8") as tty:
                tty.write(f"dsv2: {question}")
                tty.flush()
                return tty.readline().strip().lower() in ("y", "yes")
        except OSError:
            return None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextmanager
def handle_errors(env: Env, debug: bool) -> Iterator[None]:
    """Dsv2Error -> one line and its exit code; anything else -> one line, exit 1 (traceback with --debug)."""
    try:
        yield
    except typer.Exit:
        raise
    except Dsv2Error as exc:
        if debug:
            raise
        env.note(f"error: {exc}")
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        env.note("interrupted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        finally:
            raise typer.Exit(0) from None
    except Exception as exc:
        if debug:
            raise
        env.note(f"unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)")
        raise typer.Exit(int(ExitCode.UNEXPECTED)) from None


def resolve_settings(env: Env, params: Mapping[str, Any]) -> Any:
    """Settings from a command's parameters (pass ``locals()`` first thing): every parameter named
    like a setting (model, ctx, max_tokens, backend, ...) is that setting's flag; None = not given."""
    from ..settings import SETTING_NAMES, resolve

    return resolve({name: value for name, value in params.items() if name in SETTING_NAMES}, env.environ)


def load_inputs(
    env: Env,
    paths: list[str] | None,
    repo: str | None,
    include: list[str] | None,
    exclude: list[str] | None,
    password: str | None,
) -> list[Any]:
    """Read every input; print the reader's notes (what was skipped, redacted, warned) on stderr."""
    from .. import sources

    docs, notes = sources.load_inputs(
        paths or [], env.stdin, repo=repo, include=include or (), exclude=exclude or (), password=password
    )
    for line in notes:
        env.note(line)
    return docs


def choice_view(memory: dict[str, Any]) -> Any:
    """A ContextChoice-like view of ``model_info``'s "memory" dict, for :func:`memory_line`."""
    from types import SimpleNamespace

    from ..memory import MemoryEstimate, Resources

    est = MemoryEstimate(
        memory["n_ctx"],
        memory["weights_bytes"],
        memory["kv_cache_bytes"],
        memory["kv_bytes_per_token"],
        memory["compute_bytes"],
        memory["kv_format"],
        memory["gpu_layers"],
        memory["ram_bytes"],
        memory["vram_bytes"],
    )
    return SimpleNamespace(
        estimate=est, resources=Resources(memory["ram_available_bytes"], memory["vram_free_bytes"]), fits=memory["fits"]
    )


def memory_line(choice: Any) -> str:
    from ..memory import gib

    est = choice.estimate
    line = (
        f"{gib(est.total_bytes)} at {est.n_ctx:,} tokens: weights {gib(est.weights_bytes)}, KV cache "
        f"{gib(est.kv_bytes)} ({est.kv_format}, {est.kv_bytes_per_token:,} B/token), "
        f"compute {gib(est.compute_bytes)}"
    )
    free = choice.resources.ram_available
    if free is not None:
        line += f"; RAM {gib(est.ram_bytes)} of {gib(free)} available"
    if est.vram_bytes:
        vram = choice.resources.vram_free
        line += f"; GPU {gib(est.vram_bytes)} of {gib(vram) + ' free' if vram is not None else 'unknown free'}"
    return line + ("" if choice.fits is not False else " -> does not fit")
