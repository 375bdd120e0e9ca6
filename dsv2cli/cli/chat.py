"""``dsv2 chat``: an interactive conversation over documents (or over nothing); and what ``ask -c``
and ``prompt -c`` share with it: reopening a logged conversation and recording its turns."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import logs
from .app import app, elapsed
from .common import Env
from .options import (
    CACHE,
    ENGINE,
    INPUTS,
    LOG,
    REMOTE,
    RETRIEVAL,
    SAMPLING,
    SENDING,
    VERBOSE,
    CidOpt,
    ContinueOpt,
    Flags,
    PathsArg,
    StrategyOpt,
    SystemOpt,
    TemplateOpt,
    uses,
)

HELP = "/sources  /reset  /save FILE  /system TEXT  /help; Ctrl-C stops an answer, Ctrl-D leaves"


def ask_template(env: Env, name: str | None, prompt_file: Path | None) -> str | None:
    """``ask -t NAME`` / ``--prompt-file FILE``: the template's text, checked for {{ document }}
    and {{ question }} (a missing one is a usage error, exit 2)."""
    from .. import prompts, templates
    from ..chat_session import ASK_REQUIRED
    from ..errors import UsageError

    if name is not None and prompt_file is not None:
        raise UsageError("give -t NAME or --prompt-file FILE, not both")
    if name is not None:
        return templates.load_for(name, "ask", env.environ)
    if prompt_file is None:
        return None
    try:
        text = prompt_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{prompt_file}: cannot read prompt file ({exc})") from exc
    prompts.check(text, ASK_REQUIRED, prompts.FILLED["ask"], str(prompt_file))
    return text


def ask_continued(
    env: Env,
    flags: Flags,
    asked: Sequence[str],
    paths: Sequence[str],
    *,
    cid: str | None,
    system: str | None,
    template: str | None,
    strategy: str | None,
    dry_run: bool,
    json_out: bool,
    streaming: bool,
    checked: Callable[[int, Any], None] | None = None,
) -> None:
    """``ask -c`` / ``ask --cid`` (``cid`` None: the last conversation): each question after the
    conversation's history (its documents when none are named). ``checked(number, citations)``
    after each answer (``citations.CitationCheck``, None over no documents), as for ``ask``."""
    from .. import render

    session = env.session(flags)
    found = session.logged(cid)
    conversation = found.logged
    log = None if dry_run else logs.begin(env, flags, "ask", prompt=asked[0], conversation=conversation)
    named = env.load(session, flags, list(paths)) if paths or flags.repo else None
    run = session.resume(
        found, named, password=flags.password, system=system, template=template, strategy=strategy, dry_run=dry_run
    )
    docs = run.conversation.docs
    for number, question in enumerate(asked, 1):
        if dry_run:
            the_plan = run.plan(question)
            if json_out:
                env.write_json(render.turn_plan_payload(the_plan, run.handle, conversation.id))
            else:
                env.screen.write(the_plan.prompt.text + "\n")
            continue
        result = run.turn(question, on_text=env.screen.write if streaming else None)
        logs.record_turn(log, result, run.handle, docs, now=False)
        if streaming:
            env.screen.finish_stream()
        if json_out:
            env.write_json(render.turn_payload(result, run.handle, conversation.id, elapsed()))
        elif not streaming:
            env.screen.write(result.answer + "\n")
        if checked is not None:
            checked(number, result.citations)


# --- dsv2 chat ------------------------------------------------------------------------------------


def _reader(env: Env, history_file: Path) -> Callable[[str], str]:
    """Line editing and a persistent input history (prompt_toolkit) on a terminal; plain lines from
    standard input otherwise. Raises EOFError at the end (Ctrl-D), KeyboardInterrupt on Ctrl-C."""
    if sys.stdin.isatty() and env.stdout_isatty:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        history_file.parent.mkdir(parents=True, exist_ok=True)
        prompt_session: PromptSession[str] = PromptSession(history=FileHistory(str(history_file)))
        return lambda mark: prompt_session.prompt(mark)

    stream = sys.stdin

    def plain(mark: str) -> str:
        line = stream.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return plain


class _Deferred:
    """Ctrl-C during a turn only sets a flag, which the turn reads between prompt slices and
    streamed pieces: the answer stops there, never halfway through drawing the screen."""

    def __init__(self) -> None:
        self.hit = False

    def pending(self) -> bool:
        return self.hit

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self.hit = True

    def __enter__(self) -> _Deferred:
        import signal

        self._old = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def __exit__(self, *_exc: object) -> None:
        import signal

        signal.signal(signal.SIGINT, self._old)


@app.command()
@uses(INPUTS, ENGINE, SAMPLING, REMOTE, SENDING, CACHE, RETRIEVAL, VERBOSE, LOG)
def chat(
    paths: PathsArg = None,
    system: SystemOpt = None,
    template: TemplateOpt = None,
    cont: ContinueOpt = False,
    cid: CidOpt = None,
    strategy: StrategyOpt = None,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Talk with the model about documents, a codebase, or nothing: every turn sees the whole history.

    The documents are read and counted once; each turn evaluates only its new tokens (the earlier
    ones stay in the model's memory). When history outgrows the window, the oldest turns are
    folded into a summary, announced. Commands: /sources (the documents, and what the last answer
    cited, checked against the passages it was given, as `dsv2 ask` shows), /reset, /save FILE,
    /system TEXT. Ctrl-C stops an answer; Ctrl-D leaves. Every turn is logged (dsv2 logs).

    Examples:

    \b
      dsv2 chat contract.pdf
      dsv2 chat --repo ./src -s "Answer as a senior reviewer."
      dsv2 chat
      dsv2 chat -c
    """
    from .. import render, templates
    from ..errors import Dsv2Error, UsageError
    from ..fsutil import write_atomic
    from ..settings import default_home

    if "-" in (paths or []):
        raise UsageError("dsv2 chat reads your turns from standard input: name files, not -")
    session = env.session(flags)
    found = session.logged(cid) if cont or cid is not None else None
    text = templates.load_for(template, "chat", env.environ) if template else None
    named = env.load(session, flags, list(paths or [])) if paths or flags.repo else None
    if found is not None:
        run = session.resume(found, named, password=flags.password, system=system, template=text, strategy=strategy)
    else:
        run = session.chat(named or [], system=system, template=text, strategy=strategy)
    conversation = found.logged if found is not None else None
    conv = run.conversation
    docs, history = conv.docs, list(conv.history)
    screen = env.screen
    log = logs.begin(env, flags, "chat", prompt=None, paths=list(paths or []), system=system, conversation=conversation)
    if docs:
        what = f"{len(docs)} document(s), {conv.context_tokens:,} tokens"
        how = "retrieving passages for each question" if conv.strategy == "retrieve" else "all sent with each turn"
        env.note(f"chat over {what} ({how}; window {run.handle.window:,})")
    if history:
        env.note(f"continuing conversation {conversation.id if conversation else ''}: {len(history)} earlier turn(s)")
    env.note(HELP)
    read = _reader(env, default_home(env.environ) / "chat_history")
    last_check: Any = None  # the last answer's citations.CitationCheck (None: no documents, no answer yet)
    while True:
        try:
            line = read("> ").strip()
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        if not line:
            continue
        if line.startswith("/"):
            name, _, arg = line.partition(" ")
            arg = arg.strip()
            if name == "/sources":
                if not docs:
                    screen.block("no documents\n")
                for doc in docs:
                    screen.block(f"{doc.source}  ({doc.kind}, {len(doc.segments)} part(s))\n")
                screen.block(f"{conv.strategy}: {conv.context_tokens:,} tokens of documents\n")
                if last_check is not None:
                    screen.block(render.sources_block(last_check, "The last answer's sources").lstrip("\n"))
            elif name == "/reset":
                conv.reset()
                if log is not None:
                    from ..logs import new_conversation_id

                    log.conversation.id = new_conversation_id()
                env.note("history cleared; the documents stay")
            elif name == "/save" and arg:
                try:
                    write_atomic(Path(arg).expanduser(), conv.transcript().encode("utf-8"))
                    env.note(f"saved {len(conv.history)} turn(s) to {arg}")
                except OSError as exc:
                    env.note(f"error: cannot save to {arg} ({exc})")
            elif name == "/system":
                if arg:
                    conv.user_system = arg
                    if log is not None:
                        log.conversation.system = arg
                env.note(f"system prompt: {conv.system or '(none)'}")
            else:
                env.note(HELP)
            continue
        try:
            with _Deferred() as interrupt:
                result = run.turn(line, on_text=screen.write, should_stop=interrupt.pending)
        except Dsv2Error as exc:  # one turn failed (too long, a remote error): the session goes on
            screen.finish_stream()
            env.note(f"error: {exc}")
            continue
        except KeyboardInterrupt:  # Ctrl-C outside the answer itself (planning, retrieval)
            screen.finish_stream()
            env.note("stopped")
            continue
        screen.finish_stream()
        if result.stopped:
            env.note("stopped")
        elif result.usage.finish_reason == "length":
            env.note(f"warning: the answer reached --max-tokens ({session.settings.max_tokens})")
        if flags.verbose:
            env.note(
                f"turn: {result.usage.prompt_tokens:,} prompt tokens, {result.evaluated:,} evaluated "
                f"({result.reused:,} kept), {result.usage.output_tokens} output"
            )
        last_check = result.citations
        for problem in last_check.problems() if last_check is not None else []:
            env.note(f"warning: {problem} (/sources shows them)")
        logs.record_turn(log, result, run.handle, docs, now=True, note=env.note)
