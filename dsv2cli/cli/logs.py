"""``dsv2 logs``, and the recording of every model-answering run into the log (dsv2cli.logs).

A command that answers (summarize, ask, extract, prompt, chat) calls :func:`begin` once its
request is understood and :meth:`RunLog.add` for each answer; the app's one error handler calls
:func:`finish` when the command returns or fails, which writes what was added, or, when the run
failed before any answer, one row with the exit status and the error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app
from .common import Env
from .options import Flags, JsonOpt, uses

LOG_ATTR = "dsv2_run_log"  # the run's RunLog, held on its Env (reachable from worker threads too)


@dataclass
class RunLog:
    """What one run will record, held in the click context's meta until :func:`finish`."""

    store: Any  # logs.LogStore
    conversation: Any  # logs.Conversation
    command: str
    prompt: str | None
    started: float = field(default_factory=time.perf_counter)
    pending: list[Any] = field(default_factory=list)
    written: int = 0

    def add(self, response: Any) -> None:
        self.pending.append(response)

    def write_now(self, response: Any) -> None:
        """Record at once (a chat turn: the session may be interrupted later)."""
        self.store.write(self.conversation, [response])
        self.written += 1

    def response(self, **values: Any) -> Any:
        from ..logs import Response

        values.setdefault("duration_ms", int((time.perf_counter() - self.started) * 1000))
        return Response(self.conversation.id, self.command, **values)


def begin(
    env: Env,
    flags: Flags,
    command: str,
    *,
    prompt: str | None,
    paths: Sequence[str] = (),
    system: str | None = None,
    conversation: Any = None,
) -> RunLog | None:
    """Start recording this run (None when --no-log or ``dsv2 logs off``). ``conversation``: an
    existing one to continue (-c / --cid); else a new one is opened on ``paths`` and flags' inputs."""
    from ..logs import Conversation, LogStore, log_path, logging_enabled, new_conversation_id
    from ..settings import default_home

    if flags.no_log:
        return None
    home = default_home(env.environ)
    if not logging_enabled(home):
        return None
    if conversation is None:
        documents = {
            "paths": [str(Path(p).resolve()) if p != "-" else "-" for p in paths],
            "repo": str(Path(flags.repo).resolve()) if flags.repo else None,
            "include": list(flags.include or ()),
            "exclude": list(flags.exclude or ()),
        }
        conversation = Conversation(new_conversation_id(), command, prompt, None, system, documents)
    log = RunLog(LogStore(log_path(home)), conversation, command, prompt)
    setattr(env, LOG_ATTR, log)
    return log


def current(env: Env) -> RunLog | None:
    found = getattr(env, LOG_ATTR, None)
    return found if isinstance(found, RunLog) else None


def finish(env: Env, error: BaseException | None) -> None:
    """Write the run's rows (called once by the app's error handler); never fails the command."""
    import click

    from ..errors import Dsv2Error, ExitCode

    log = current(env)
    if log is None:
        return
    setattr(env, LOG_ATTR, None)
    if error is None:
        status, message = 0, None
    elif isinstance(error, click.exceptions.Exit):
        status, message = error.exit_code, None
    elif isinstance(error, Dsv2Error):
        status, message = int(error.exit_code), str(error)
    elif isinstance(error, KeyboardInterrupt):
        status, message = int(ExitCode.INTERRUPTED), "interrupted"
    else:
        status, message = int(ExitCode.UNEXPECTED), f"{type(error).__name__}: {error}"
    rows = log.pending
    if not rows and not log.written and status != 0:
        rows = [log.response(prompt=log.prompt, system=log.conversation.system)]
    for row in rows:
        if status and not row.exit_status:
            row.exit_status, row.error = status, message
    if not rows:
        return
    import sqlite3

    try:
        log.store.write(log.conversation, rows)
    except (sqlite3.Error, OSError) as exc:
        env.note(f"warning: could not write the log {log.store.path} ({exc}); the result is not affected")


# --- what each command records -----------------------------------------------------------------


def file_inputs(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Inputs hashed from their bytes (extract reads them itself)."""
    from ..logs import input_record

    found = []
    for p in paths:
        try:
            digest = hashlib.sha256(Path(p).read_bytes()).hexdigest() if p != "-" else None
        except OSError:
            digest = None
        found.append(input_record(p, Path(p).suffix.lstrip(".") or "stdin", digest or ""))
    return found


def record_answer(env: Env, answer: Any, docs: Sequence[Any]) -> None:
    """One question of ``ask``."""
    from ..logs import answered

    log = current(env)
    if log is None or answer.answer is None:
        return
    usage, the_plan = answer.usage, answer.plan
    options = {"strategy": the_plan.strategy, "retrieval": the_plan.retrieval, "finish": usage.finish_reason}
    values = answered(
        answer.handle,
        usage,
        the_plan,
        prompt=answer.question,
        output=answer.answer,
        docs=docs,
        options=options,
        answered_by=answer.answered_by,
        plan_s=answer.plan_s,
    )
    log.add(log.response(**values))


def record_turn(
    log: RunLog | None,
    result: Any,
    handle: Any,
    docs: Sequence[Any],
    *,
    now: bool,
    note: Callable[[str], None] | None = None,
) -> None:
    """One answered turn of ``chat``, ``ask -c`` or ``prompt`` into the log (``now``: written at
    once, as a chat session goes on; a log that cannot be written is a ``note``, and the session
    goes on)."""
    from ..logs import answered

    if log is None:
        return
    usage, the_plan = result.usage, result.plan
    options = {
        "strategy": the_plan.strategy,
        "finish": usage.finish_reason,
        "stopped": result.stopped,
        "folded_turns": result.folded,
        "evaluated_tokens": result.evaluated,
    }
    values = answered(
        handle, usage, the_plan, prompt=the_plan.question, output=result.answer, docs=docs, options=options
    )
    response = log.response(**values)
    if now:
        import sqlite3

        try:
            log.write_now(response)
        except (sqlite3.Error, OSError) as exc:
            if note is not None:
                note(f"warning: could not write the log {log.store.path} ({exc})")
        log.started = time.perf_counter()
    else:
        log.add(response)


def record_summary(env: Env, run: Any) -> None:
    """One ``summarize`` (a summary per document with --each)."""
    from ..chat import system_of
    from ..logs import document_inputs

    log = current(env)
    result = run.result
    if log is None or result is None:
        return
    handle = run.handle
    log.add(
        log.response(
            model=result.model,
            backend=handle.describe(),
            system=system_of(run.plan.prompt) if run.plan is not None else None,
            prompt=log.prompt,
            output=result.summary,
            inputs=document_inputs(run.docs),
            sources=result.chunks,
            prompt_tokens=result.input_tokens,
            cached_tokens=None,
            output_tokens=result.output_tokens,
            timings=result.timings,
            cost_usd=handle.cost(result.input_tokens, result.output_tokens),
            answered_by=run.answered_by,
            options={"strategy": result.strategy, "calls": result.calls, "finish": result.finish_reason},
        )
    )


def record_extract(env: Env, paths: Sequence[str], report: Any, fields: Sequence[str]) -> None:
    """One ``extract`` batch: what was done, skipped and failed (the records are in its output)."""
    log = current(env)
    if log is None:
        return
    failed = [{"source": p, "error": str(e), "exit_code": int(e.exit_code)} for p, e in report.failed]
    output = f"{report.done} extracted, {report.skipped} skipped, {len(report.failed)} failed"
    log.add(
        log.response(
            prompt=log.prompt,
            output=output,
            inputs=file_inputs(paths),
            options={"fields": list(fields), "failed": failed},
            exit_status=report.exit_code,
        )
    )


# --- dsv2 logs ------------------------------------------------------------------------------------


@app.command()
@uses()
def logs(
    action: Annotated[
        str | None,
        typer.Argument(help="list (the default) | path | on | off.", show_default=False),
    ] = None,
    count: Annotated[int, typer.Option("--count", "-n", help="Show the newest N entries; 0 for all.")] = 3,
    query: Annotated[
        str | None, typer.Option("--query", "-q", help="Only entries whose prompt or output contain TEXT.")
    ] = None,
    cid: Annotated[str | None, typer.Option("--cid", help="Only the entries of one conversation.")] = None,
    json_out: JsonOpt = False,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Show the log of every summarize, ask, extract, prompt and chat turn (SQLite under DSV2_HOME).

    The log keeps the newest entries within 64 MB (the oldest are deleted first); secret-looking
    values are redacted as they are in prompts. --no-log on a command skips one run.

    Examples:

    \b
      dsv2 logs
      dsv2 logs -n 10 -q "liability"
      dsv2 logs --cid 018f3a2b4c5d1a2b3c4d --json
      dsv2 logs path
      dsv2 logs off
    """
    from .. import logs as store
    from ..errors import UsageError
    from ..render import json_line
    from ..settings import default_home

    home = default_home(env.environ)
    path = store.log_path(home)
    if action == "path":
        env.screen.write(f"{path}\n")
        return
    if action in ("on", "off"):
        store.set_logging(home, action == "on")
        env.note(f"logging {'on' if action == 'on' else 'off'}: {path}")
        return
    if action not in (None, "list"):
        raise UsageError(f"logs {action}: expected list, path, on or off")
    if count < 0:
        raise UsageError("-n must be 0 (all) or more")
    rows = store.LogStore(path).responses(limit=count or None, query=query, conversation_id=cid)
    if json_out:
        env.screen.write("".join(json_line(store.to_dict(r)) for r in rows))
        return
    if not rows:
        env.note("no entries" + ("" if store.logging_enabled(home) else " (logging is off: dsv2 logs on)"))
        return
    parts = []
    for r in rows:
        head = f"## {r.datetime_utc}  {r.command}  conversation {r.conversation_id}"
        if r.exit_status:
            head += f"  (exit {r.exit_status}: {r.error or 'failed'})"
        counts = (r.prompt_tokens, r.cached_tokens, r.output_tokens)
        prompt_n, cached_n, output_n = ("-" if n is None else f"{n:,}" for n in counts)
        tokens = f"model {r.model or '-'}; tokens: prompt {prompt_n}, cached {cached_n}, output {output_n}"
        body = [head, "", tokens]
        if r.inputs:
            body.append("inputs: " + ", ".join(f"{i['source']} ({str(i.get('sha256', ''))[:12]})" for i in r.inputs))
        if r.system:
            body += ["", "### System", "", r.system]
        body += ["", "### Prompt", "", r.prompt or "", "", "### Response", "", r.output or ""]
        parts.append("\n".join(body))
    env.screen.write("\n\n".join(parts) + "\n")
