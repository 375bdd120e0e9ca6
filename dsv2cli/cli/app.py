"""The ``dsv2`` application object, its root options and the entry point."""

from __future__ import annotations

import difflib
import re
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from .. import __version__


class _Formatter(click.HelpFormatter):
    """click's formatter, without the backslashes typer puts before "[default: ...]" and
    "[required]" whenever rich is installed (it escapes them for rich markup even when help is
    rendered by click, as here)."""

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(term, text.replace("\\[", "[")) for term, text in rows], col_max, col_spacing)


class _Context(click.Context):
    formatter_class = _Formatter


def _adopt(command: click.Command) -> None:
    """Every command and subcommand formats its help with :class:`_Formatter`."""
    command.context_class = _Context
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _adopt(sub)


class _Commands(TyperGroup):
    """Lists commands in the order a user meets them, not in the order their modules load."""

    ORDER = (
        "summarize",
        "ask",
        "extract",
        "chat",
        "prompt",
        "pack",
        "plan",
        "models",
        "index",
        "cache",
        "logs",
        "templates",
        "config",
        "completion",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _adopt(self)

    def invoke(self, ctx: click.Context) -> Any:
        """Every command runs here: one error handler for the whole app (a Dsv2Error is one line
        and its exit code; anything else one line and exit 1, or a traceback with --debug)."""
        from .common import ENV_KEY, Env, report_error
        from .logs import finish

        env = ctx.meta.setdefault(ENV_KEY, Env())
        try:
            result = super().invoke(ctx)
        except BaseException as exc:
            finish(env, exc)  # the run's log rows, with its exit status
            code = report_error(env, exc)
            if code is None:
                raise
            raise click.exceptions.Exit(code) from None
        finish(env, None)
        return result

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: self.ORDER.index(n) if n in self.ORDER else len(self.ORDER))


app = typer.Typer(
    name="dsv2",
    cls=_Commands,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell (typer's own)
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    suggest_commands=False,  # main() suggests, once; click and typer would both append "Did you mean"
    context_settings={"help_option_names": ["-h", "--help"]},
)


STARTED = time.perf_counter()  # reset by main() at the start of each run


def elapsed() -> float:
    """Seconds since this run started (``total_s`` in --json)."""
    return time.perf_counter() - STARTED


def version_callback(value: bool) -> None:
    if value:
        print(f"dsv2 {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Summarize, question and extract from documents with a local DeepSeek-V2 (llama.cpp).

    Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 input error, 4 model error,
    5 context overflow, 6 remote backend error, 7 refused (secrets, not confirmed), 130 interrupted.
    """


def main(args: Sequence[str] | None = None) -> None:
    """The entry point: run the app, and turn a usage error into one line plus a hint (exit 2)."""
    global STARTED
    STARTED = time.perf_counter()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="dsv2", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        for line in usage_error_lines(exc):
            print(line, file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.Abort:
        print("dsv2: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def usage_error_lines(exc: click.UsageError) -> list[str]:
    """``dsv2 ask: no such option --modle (did you mean --model?)`` and where help is: two lines."""
    ctx = exc.ctx
    where = ctx.command_path if ctx is not None else "dsv2"
    message = re.sub(r"\s*\(?Did you mean .*$", "", exc.message.strip(), flags=re.S)  # click's/typer's own
    suggestion = None
    if ctx is not None and isinstance(exc, click.exceptions.NoSuchOption):
        names = [n for p in ctx.command.get_params(ctx) for n in (*p.opts, *p.secondary_opts) if n.startswith("-")]
        suggestion = next(iter(difflib.get_close_matches(exc.option_name, names, n=1)), None)
    elif ctx is not None and isinstance(ctx.command, click.Group):
        typed = re.match(r"No such command '(.+)'", message)
        if typed:
            names = ctx.command.list_commands(ctx)
            suggestion = next(iter(difflib.get_close_matches(typed.group(1), names, n=1)), None)
    message = message[:1].lower() + message[1:].rstrip(".")
    line = f"{where}: {message}" + (f" (did you mean {suggestion}?)" if suggestion else "")
    return [line, f"Try '{where} -h' for help."]
