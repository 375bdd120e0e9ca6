"""What every command shares: the run's environment and screen, its API session, error reporting."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from ..errors import Dsv2Error, ExitCode, one_line, quote_name
from ..render import Screen

if TYPE_CHECKING:
    from ..api import Session
    from ..memory import ContextChoice
    from .options import Flags


@dataclass
class Env:
    """The process's streams and environment, bundled so tests can substitute them.

    What is drawn on the streams (result text, notes, live progress) goes through ``screen``,
    which keeps a live display from ever drawing over the output (render.Screen)."""

    stdin: BinaryIO = field(default_factory=lambda: sys.stdin.buffer)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    debug: bool = False  # --debug: tracebacks instead of one-line errors
    screen: Screen = field(init=False)

    def __post_init__(self) -> None:
        self.screen = Screen(self.stdout, self.stderr, self.environ)

    @property
    def stdout_isatty(self) -> bool:
        return self.screen.stdout_isatty

    def note(self, message: str) -> None:
        self.screen.note(message)

    def confirm(self, question: str) -> bool | None:
        """Ask on the terminal (stdin may be the document): True/False, or None when there is no terminal."""
        if not self.screen.stderr_isatty:
            return None
        try:
            with open("/dev/tty", "r+", encoding="utf-8") as tty:
                tty.write(f"dsv2: {question}")
                tty.flush()
                return tty.readline().strip().lower() in ("y", "yes")
        except OSError:
            return None

    def session(self, flags: Flags, **own: Any) -> Session:
        """The API session for this run: settings from ``flags`` (and the command's ``own`` setting
        flags), notes and progress on this screen."""
        from ..api import Session
        from ..engines.handle import SendPolicy

        send = SendPolicy(flags.allow_secrets, flags.yes, self.confirm)
        return Session(
            flags.settings(self.environ, **own),
            environ=self.environ,
            notify=self.note,
            progress=self.screen,
            send=send,
            verbose=flags.verbose,
            no_cache=flags.no_cache,
        )

    def load(self, session: Session, flags: Flags, paths: list[str] | None) -> list[Any]:
        """Every input named on the command line (paths, --repo, --include/--exclude, --password)."""
        return session.load(
            paths or [],
            repo=flags.repo,
            include=flags.include or (),
            exclude=flags.exclude or (),
            password=flags.password,
            stdin=self.stdin,
        )

    def write_json(self, payload: Any) -> None:
        from ..render import json_line

        self.screen.write(json_line(payload))


ENV_KEY = "dsv2.env"


def current_env() -> Env | None:
    """The Env of the command run in progress (made by the app before any command runs)."""
    import click

    ctx = click.get_current_context(silent=True)
    found = ctx.meta.get(ENV_KEY) if ctx is not None else None
    return found if isinstance(found, Env) else None


def report_error(env: Env, exc: BaseException) -> int | None:
    """The exit code for an error a command raised, after one line on stderr; None: re-raise it
    (--debug shows the traceback; click's own exits and usage errors pass through)."""
    import click

    if isinstance(exc, click.exceptions.Exit | click.ClickException | click.exceptions.Abort):
        return None
    if isinstance(exc, Dsv2Error):
        if env.debug:
            return None
        env.note(f"error: {one_line(str(exc))}")
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        env.note("interrupted")
        return int(ExitCode.INTERRUPTED)
    if _disk_full(exc) and not env.debug:
        where = getattr(exc, "filename", None)
        env.note(f"error: {quote_name(str(where)) + ': ' if where else ''}no space left on device")
        return int(ExitCode.INPUT)
    if (home := _under_home(env, exc)) is not None and not env.debug:
        assert isinstance(exc, OSError)
        env.note(f"error: DSV2_HOME {quote_name(home)}: cannot write {quote_name(str(exc.filename))} ({exc.strerror})")
        return int(ExitCode.INPUT)
    if isinstance(exc, BrokenPipeError):
        # the reader went away (e.g. `| head`): not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        return 0
    if isinstance(exc, Exception) and not env.debug:
        env.note(f"unexpected error: {type(exc).__name__}: {one_line(str(exc))} (rerun with --debug for a traceback)")
        return int(ExitCode.UNEXPECTED)
    return None


def _under_home(env: Env, exc: BaseException) -> str | None:
    """DSV2_HOME, when ``exc`` is an OSError about a path inside it (a folder that cannot be made)."""
    home = env.environ.get("DSV2_HOME")
    if not home or not isinstance(exc, OSError) or not exc.filename:
        return None
    return home if os.path.abspath(str(exc.filename)).startswith(os.path.abspath(home)) else None


def _disk_full(exc: BaseException) -> bool:
    """A write that failed for want of space (ENOSPC, or sqlite's "database or disk is full")."""
    import errno

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return type(exc).__name__ == "OperationalError" and "disk is full" in str(exc)


def memory_line(choice: ContextChoice) -> str:
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
