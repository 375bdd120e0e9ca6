"""``dsv2 prompt``: a free-form prompt, no documents; standard input is part of it."""

from __future__ import annotations

from typing import Annotated

import typer

from . import logs
from .app import app, elapsed
from .common import Env
from .options import (
    CACHE,
    ENGINE,
    LOG,
    REMOTE,
    SAMPLING,
    SENDING,
    VERBOSE,
    CidOpt,
    ContinueOpt,
    DryRunOpt,
    Flags,
    JsonOpt,
    StreamOpt,
    SystemOpt,
    TemplateOpt,
    uses,
)


@app.command()
@uses(ENGINE, SAMPLING, REMOTE, SENDING, CACHE, VERBOSE, LOG)
def prompt(
    text: Annotated[str | None, typer.Argument(help="The prompt (standard input, when piped, comes first).")] = None,
    system: SystemOpt = None,
    template: TemplateOpt = None,
    cont: ContinueOpt = False,
    cid: CidOpt = None,
    dry_run: DryRunOpt = False,
    stream: StreamOpt = False,
    json_out: JsonOpt = False,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Send a prompt of your own to the model: no documents, counted and checked against the window.

    Piped standard input is sent first, then the prompt. -s sets the system prompt; -c continues
    the last conversation (its history is sent first).

    Examples:

    \b
      dsv2 prompt "Name three uses of a prefix cache."
      git diff | dsv2 prompt -s "Write a one-line commit message for this diff."
      dsv2 prompt -c "And a longer body for it?"
      cat notes.txt | dsv2 prompt -t tidy
      dsv2 prompt "Hello" --dry-run --json
    """
    from .. import render
    from ..errors import UsageError

    piped = _stdin_text(env)
    if template is not None:
        from .. import prompts, templates

        body = templates.load_for(template, "prompt", env.environ)
        needed = {name for name, value in (("prompt", text), ("input", piped)) if value}
        prompts.check(body, frozenset(needed), frozenset({"prompt", "input"}), f"template {template!r}")
        question = prompts.fill(body, {"prompt": text or "", "input": piped or ""}).strip()
    else:
        question = "\n\n".join(part for part in (piped, text) if part and part.strip())
    if not question.strip():
        raise UsageError('no prompt: give it as an argument (dsv2 prompt "...") or on standard input')
    session = env.session(flags)
    found = session.logged(cid) if cont or cid is not None else None
    if found is not None:
        run = session.resume(found, [], system=system, dry_run=dry_run)
    else:
        run = session.chat([], system=system, dry_run=dry_run)
    conversation = found.logged if found is not None else None
    if dry_run:
        the_plan = run.plan(question)
        cid_now = conversation.id if conversation is not None else None
        if json_out:
            env.write_json(render.turn_plan_payload(the_plan, run.handle, cid_now))
        else:
            env.screen.write(the_plan.prompt.text + "\n")
        return
    the_plan = run.plan(question)  # over the window: refused before the model loads
    log = logs.begin(env, flags, "prompt", prompt=question, system=system, conversation=conversation)
    streaming = not json_out and (stream or env.stdout_isatty)
    result = run.turn(question, on_text=env.screen.write if streaming else None, planned=the_plan)
    logs.record_turn(log, result, run.handle, [], now=False)
    if streaming:
        env.screen.finish_stream()
    if result.usage.finish_reason == "length":
        env.note(f"warning: the answer reached --max-tokens ({session.settings.max_tokens}) and may be cut short")
    if json_out:
        cid_now = log.conversation.id if log is not None else None
        env.write_json(render.turn_payload(result, run.handle, cid_now, elapsed()))
    elif not streaming:
        env.screen.write(result.answer + "\n")


def _stdin_text(env: Env) -> str | None:
    """Standard input when it is piped (not a terminal), decoded; None otherwise."""
    stream = env.stdin
    try:
        if stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    data = stream.read()
    return data.decode("utf-8", errors="replace") if data else None
