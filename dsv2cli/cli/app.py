"""The ``dsv2`` application object, its root options and the entry point."""

from __future__ import annotations

import time
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from .. import __version__


class _Commands(TyperGroup):
    """Lists commands in the order a user meets them, not in the order their modules load."""

    ORDER = ("summarize", "ask", "extract", "pack", "plan", "models", "index", "cache", "config")

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: self.ORDER.index(n) if n in self.ORDER else len(self.ORDER))


app = typer.Typer(
    name="dsv2",
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


STARTED = time.perf_counter()


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


def main() -> None:
    app(prog_name="dsv2")
