"""``dsv2 config path`` and ``dsv2 config show``: where settings are read from, and what they are."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import typer

from .app import app
from .common import Env
from .options import CACHE, ENGINE, REMOTE, RETRIEVAL, SAMPLING, Flags, JsonOpt, uses

config_app = typer.Typer(
    help="""Where dsv2 reads its settings from, and what they are.

    Examples:

    \b
      dsv2 config path
      dsv2 config show --json | jq .ctx
    """,
    no_args_is_help=True,
)


app.add_typer(config_app, name="config")


@config_app.command("path")
@uses()
def config_path(json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """Where config.toml is looked for, which files exist, and where data lives.

    The winning file comes first. With DSV2_HOME set, only $DSV2_HOME/config.toml is read.
    Otherwise the config directory's file ($XDG_CONFIG_HOME/dsv2, ~/.config/dsv2 on Linux) is
    merged over the data directory's, where older versions of dsv2 read it, key by key.

    Examples:

    \b
      dsv2 config path
      dsv2 config path --json | jq -r '.files[0].path'
    """
    from ..settings import config_files, default_home

    files = config_files(env.environ)  # no parsing: this must work when a file is broken
    home = default_home(env.environ)
    home_from = f"DSV2_HOME={env.environ['DSV2_HOME']}" if env.environ.get("DSV2_HOME") else "DSV2_HOME not set"
    if json_out:
        payload = {
            "files": [{"path": str(f.path), "role": f.role, "exists": f.exists} for f in files],
            "home": {"path": str(home), "exists": home.is_dir(), "from": home_from},
        }
        env.stdout.write(json.dumps(payload) + "\n")
        return
    rows = [["config file", str(f.path), _found(f.exists), f"({f.role})"] for f in files]
    rows.append(["data", str(home), _found(home.is_dir()), f"({home_from})"])
    env.stdout.write(_columns(rows))


@config_app.command("show")
@uses(ENGINE, SAMPLING, REMOTE, CACHE, RETRIEVAL)
def config_show(json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """The effective settings, each with where its value came from.

    Origins: flag, env DSV2_NAME, config FILE, profile NAME (filled in by --backend NAME) or
    default. Give a flag to see what it would change. Values left to dsv2 (the model, the
    window, threads) show as "-".

    Examples:

    \b
      dsv2 config show
      dsv2 config show --json | jq .ctx
      dsv2 config show --backend deepseek
    """
    from ..settings import effective

    shown = effective(flags.settings(env.environ))
    if json_out:
        env.stdout.write(json.dumps(shown) + "\n")
        return
    env.stdout.write(_columns([[name, _text(v["value"]), v["origin"]] for name, v in shown.items()]))


def _found(exists: bool) -> str:
    return "exists" if exists else "not found"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns two spaces apart (the last column unpadded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    padded = ([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]] for row in rows)
    lines = ["  ".join(cells).rstrip() for cells in padded]
    return "\n".join(lines) + "\n"
