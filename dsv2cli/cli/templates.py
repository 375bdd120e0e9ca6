"""``dsv2 templates list|show|edit|path``: named prompt templates (dsv2cli.templates)."""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Annotated

import typer

from .app import app
from .common import Env
from .options import Flags, JsonOpt, uses

templates_app = typer.Typer(help="Named prompt templates: yours (config directory) and the built-ins.")
app.add_typer(templates_app, name="templates")


@templates_app.command("list")
@uses()
def templates_list(json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """Every template: yours first, then the shipped built-ins, with the commands each can serve.

    Examples:

    \b
      dsv2 templates list
      dsv2 templates list --json
    """
    from .. import templates

    found = templates.all_templates(env.environ)
    if json_out:
        env.write_json(
            [{"name": t.name, "builtin": t.builtin, "path": str(t.path), "commands": t.commands()} for t in found]
        )
        return
    width = max((len(t.name) for t in found), default=4)
    lines = [
        f"{t.name:<{width}}  {'built-in' if t.builtin else 'yours   '}  {', '.join(t.commands()) or 'internal'}"
        for t in found
    ]
    env.screen.write("\n".join(lines) + "\n")


@templates_app.command("show")
@uses()
def templates_show(
    name: Annotated[str, typer.Argument(help="The template's name.")], *, flags: Flags, env: Env
) -> None:
    """Print a template's text.

    Examples:

    \b
      dsv2 templates show ask
      dsv2 templates show review > review.txt
    """
    from .. import templates

    env.screen.write(templates.find(name, env.environ).text())


@templates_app.command("path")
@uses()
def templates_path(
    name: Annotated[str | None, typer.Argument(help="A template (else the folder).", show_default=False)] = None,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Print the folder your templates live in, or one template's file.

    Examples:

    \b
      dsv2 templates path
      dsv2 templates path review
    """
    from .. import templates

    path = templates.find(name, env.environ).path if name else templates.template_dir(env.environ)
    env.screen.write(f"{path}\n")


@templates_app.command("edit")
@uses()
def templates_edit(
    name: Annotated[str, typer.Argument(help="The template's name.")], *, flags: Flags, env: Env
) -> None:
    """Edit (or create) one of your templates in $VISUAL / $EDITOR; a built-in is copied first.

    The saved text is checked: a placeholder no command fills is refused (exit 2). Use it with
    -t NAME: {{ document }} and {{ question }} for ask and chat, {{ document }} for summarize,
    {{ prompt }} and/or {{ input }} (standard input) for prompt.

    Examples:

    \b
      dsv2 templates edit review
      EDITOR=nano dsv2 templates edit ask
    """
    from .. import templates
    from ..errors import UsageError

    path = templates.user_path(name, env.environ)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            start = templates.find(name, env.environ).text()
        except UsageError:
            start = "{{ document }}\n\nQuestion: {{ question }}\n"
        path.write_text(start, encoding="utf-8")
    editor = env.environ.get("VISUAL") or env.environ.get("EDITOR") or "vi"
    code = subprocess.call([*shlex.split(editor), str(path)], env={**os.environ, **env.environ})
    if code != 0:
        raise UsageError(f"{editor} exited with {code}; {path} left as it is")
    templates.check_any(path.read_text(encoding="utf-8"), str(path))
    env.note(f"saved {path}")
