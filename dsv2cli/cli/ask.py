"""``dsv2 ask``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import chat, logs
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
    DryRunOpt,
    Flags,
    PathsArg,
    StrategyOpt,
    StreamOpt,
    SystemOpt,
    TemplateOpt,
    uses,
)


@app.command()
@uses(INPUTS, ENGINE, SAMPLING, REMOTE, SENDING, CACHE, RETRIEVAL, VERBOSE, LOG)
def ask(
    question: Annotated[str | None, typer.Argument(help="The question (or use -q).", show_default=False)] = None,
    paths: PathsArg = None,
    questions: Annotated[
        list[str] | None,
        typer.Option(
            "--question",
            "-q",
            help="A question; repeat for several, answered from one evaluated prefix.",
            show_default=False,
        ),
    ] = None,
    questions_file: Annotated[
        Path | None, typer.Option("--questions-file", help="A file with one question per line.", show_default=False)
    ] = None,
    strategy: StrategyOpt = None,
    dry_run: DryRunOpt = False,
    stream: StreamOpt = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per question (one line each).")
    ] = False,
    no_sources: Annotated[
        bool,
        typer.Option("--no-sources", help="Leave out the Sources block after the answer (for pipelines)."),
    ] = False,
    strict_citations: Annotated[
        bool,
        typer.Option(
            "--strict-citations",
            help="Exit with code 8 when a citation matches no passage sent or a quote is not in its passage.",
        ),
    ] = False,
    system: SystemOpt = None,
    template: TemplateOpt = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(
            "--prompt-file", help="Your own template with {{ document }} and {{ question }}.", show_default=False
        ),
    ] = None,
    cont: ContinueOpt = False,
    cid: CidOpt = None,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Answer questions about documents or a codebase, citing [path:lines] or [p. N].

    The question comes first, then the documents; with -q, every argument is an input.
    Every citation is checked against the passages sent: the answer is followed by a Sources
    block (what it cited, what matched nothing, what was sent but not cited); a citation that
    matches nothing is also named on stderr.

    Examples:

    \b
      dsv2 ask "What is the liability cap?" contract.pdf
      dsv2 ask --repo ./src "Where is the retry delay set?"
      dsv2 ask -q "Who are the parties?" -q "When does it end?" contract.pdf
      dsv2 ask --repo ./src "How are tokens counted?" --dry-run --json
      dsv2 ask "What is the notice period?" contract.pdf --strict-citations --no-sources
      dsv2 ask -c "And what happens after it ends?"
    """
    from .. import render
    from ..errors import UsageError

    asked = list(questions or [])
    if questions_file is not None:
        try:
            lines = questions_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{questions_file}: cannot read questions ({exc})") from exc
        asked += [line.strip() for line in lines if line.strip()]
    if asked:
        paths = ([question] if question is not None else []) + list(paths or [])
    elif question is not None:
        _check_order(question, paths or [])
        asked = [question]
    else:
        raise UsageError("no question: give one as the first argument, or -q / --questions-file")

    text = chat.ask_template(env, template, prompt_file)
    screen = env.screen
    streaming = not json_out and (stream or env.stdout_isatty)
    failed: list[int] = []  # questions whose citations did not check out

    def checked(number: int, check: Any) -> None:
        """After an answer: its Sources block (text mode), what does not check out on stderr."""
        if check is None:  # no documents: nothing to cite
            return
        if not json_out and not no_sources:
            screen.write(render.sources_block(check))
        where = f"question {number}: " if len(asked) > 1 else ""
        for problem in check.problems():
            env.note(f"warning: {where}{problem}")
        if not check.ok:
            failed.append(number)

    if cont or cid is not None:  # after the conversation's history: dsv2cli.chat_session
        chat.ask_continued(
            env,
            flags,
            asked,
            list(paths or []),
            cid=cid,
            system=system,
            template=text,
            strategy=strategy,
            dry_run=dry_run,
            json_out=json_out,
            streaming=streaming,
            checked=checked,
        )
        _strict(strict_citations, failed, len(asked))
        return
    session = env.session(flags)
    if not dry_run:
        logs.begin(env, flags, "ask", prompt="\n".join(asked), paths=list(paths or []), system=system)
    docs = env.load(session, flags, paths)
    corpus = list(paths or []) + ([flags.repo] if flags.repo else [])

    def heading(number: int, asked_question: str) -> None:
        if len(asked) > 1 and not json_out:
            screen.write(("\n" if number > 1 else "") + f"## {asked_question}\n\n")

    max_tokens = session.settings.max_tokens
    for number, answer in enumerate(
        session.ask_many(
            asked,
            docs,
            corpus=corpus,
            strategy=strategy,
            dry_run=dry_run,
            on_text=screen.write if streaming else None,
            system=system,
            template=text,
            on_question=heading,
        ),
        1,
    ):
        if dry_run:
            if json_out:
                env.write_json(render.answer_plan_payload(answer, max_tokens))
            else:
                screen.write(answer.plan.prompt.text + "\n")
            continue
        logs.record_answer(env, answer, docs)
        if streaming:
            screen.finish_stream()
        if answer.usage.finish_reason == "length":
            env.note(f"warning: the answer reached --max-tokens ({max_tokens}) and may be cut short")
        if json_out:
            env.write_json(render.answer_payload(answer, elapsed()))
        elif not streaming:
            screen.write(f"{answer.answer}\n")
        checked(number, answer.citations)
    _strict(strict_citations, failed, len(asked))


def _strict(strict_citations: bool, failed: list[int], questions: int) -> None:
    """--strict-citations: exit 8 when an answer's citations did not check out."""
    from ..errors import CitationError

    if strict_citations and failed:
        which = f" of question {', '.join(map(str, failed))}" if questions > 1 else ""
        raise CitationError(
            f"the citations{which} do not check out: a marker matches no passage that was sent, or a quote "
            "is not in the passage it cites (--strict-citations)"
        )


def _check_order(question: str, paths: list[str]) -> None:
    """``dsv2 ask report.pdf "What is ...?"``: say that the question comes first, not "no such file"."""
    import shlex

    from ..errors import UsageError

    def looks_like_question(text: str) -> bool:
        return text.rstrip().endswith("?") or len(text.split()) > 2

    swapped = Path(question).exists() or not looks_like_question(question)
    for path in paths:
        if swapped and path != "-" and not Path(path).exists() and looks_like_question(path):
            raise UsageError(
                f"{path!r} is not a file but looks like the question: the question comes first, then the "
                f"documents: dsv2 ask {shlex.quote(path)} {shlex.quote(question)}"
            )
