"""``dsv2 summarize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import logs
from .app import app, elapsed
from .common import Env
from .options import (
    CACHE,
    ENGINE,
    INPUTS,
    LOG,
    REMOTE,
    SAMPLING,
    SENDING,
    VERBOSE,
    DryRunOpt,
    Flags,
    JsonOpt,
    PathsArg,
    StrategyOpt,
    StreamOpt,
    SystemOpt,
    TemplateOpt,
    uses,
)


@app.command()
@uses(INPUTS, ENGINE, SAMPLING, REMOTE, SENDING, CACHE, VERBOSE, LOG)
def summarize(
    paths: PathsArg = None,
    style: Annotated[
        str | None, typer.Option("--style", help="brief | detailed | bullets [default: brief].", show_default=False)
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(
            "--prompt-file", help="Your own prompt template; must contain {{ document }}.", show_default=False
        ),
    ] = None,
    strategy: StrategyOpt = None,
    dry_run: DryRunOpt = False,
    stream: StreamOpt = False,
    json_out: JsonOpt = False,
    each: Annotated[
        bool,
        typer.Option(
            "--each",
            help="One summary per input document (each file; a directory's files) instead of one for all; "
            "with --json one object per line. A remote backend summarizes --concurrency of them at once.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="With --each: write summaries to this folder (summaries.jsonl and one .md per document); "
            "a rerun skips documents already there, so an interrupted batch resumes.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="With --out: summarize every document again.")] = False,
    pack: Annotated[
        bool,
        typer.Option(
            "--pack",
            help="With --each: put several short documents in one request (fewer requests, fewer prompt "
            "tokens); the answer is split back per document and any it missed are summarized alone.",
        ),
    ] = False,
    system: SystemOpt = None,
    template: TemplateOpt = None,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Summarize documents (.txt, .md, .html, .pdf, a directory, or - for stdin). Only the summary goes to stdout.

    Examples:

    \b
      dsv2 summarize report.pdf
      dsv2 summarize notes.md --style bullets
      cat minutes.txt | dsv2 summarize - > summary.txt
      dsv2 summarize report.pdf --json | jq .summary
      dsv2 summarize annual-report.pdf --dry-run
      dsv2 summarize --each contracts/*.pdf --json
      dsv2 summarize --each notes/ --backend deepseek --pack --out summaries/ --yes
    """
    from .. import render, templates

    session = env.session(flags, style=style)
    if not dry_run:
        what = f"summarize ({prompt_file or session.settings.style})"
        logs.begin(env, flags, "summarize", prompt=what, paths=paths or [])
    docs = env.load(session, flags, paths)
    screen = env.screen
    if (out is not None or pack or force) and not each:
        from ..errors import UsageError

        raise UsageError("--out, --pack and --force go with --each (one summary per document)")
    if each and (system is not None or template is not None):
        from ..errors import UsageError

        raise UsageError("-s/--system and -t/--template do not apply to --each yet; use --prompt-file")
    if each:
        _summarize_each(env, session, docs, prompt_file, strategy, dry_run, json_out, out, force, pack)
        return
    streaming = not json_out and (stream or env.stdout_isatty)
    run = session.summarize(
        docs,
        prompt_file=prompt_file,
        strategy=strategy,
        dry_run=dry_run,
        on_text=screen.write if streaming else None,
        system=system,
        template=templates.load_for(template, "summarize", env.environ) if template else None,
    )
    if dry_run:
        _print_plan(env, run, json_out)
        return
    logs.record_summary(env, run)
    if streaming:
        screen.finish_stream()
    result = run.result
    if flags.verbose:
        t = result.timings
        env.note(
            f"{result.calls} model call(s): prompt {result.input_tokens} tokens in {t['prompt_eval_s']:.2f} s "
            f"({t['prompt_tokens_per_s']} tok/s); output {result.output_tokens} tokens in "
            f"{t['generation_s']:.2f} s ({t['output_tokens_per_s']} tok/s)"
        )
    if result.finish_reason == "length":
        env.note(f"warning: the summary reached --max-tokens ({session.settings.max_tokens}) and may be cut short")
    if json_out:
        env.write_json(render.summary_payload(run, elapsed()))
    elif not streaming:
        screen.write(result.summary + "\n")


def _summarize_each(
    env: Env,
    session: Any,
    docs: list[Any],
    prompt_file: Path | None,
    strategy: str | None,
    dry_run: bool,
    json_out: bool,
    out: Path | None = None,
    force: bool = False,
    pack: bool = False,
) -> None:
    """``summarize --each``: a summary per document, in input order; a failed one is reported and
    skipped. With ``--out`` the summaries go to that folder, not stdout."""
    from .. import render
    from ..errors import Dsv2Error

    failed: list[Dsv2Error] = []
    max_tokens = session.settings.max_tokens

    def on_result(i: int, outcome: Any) -> None:
        if dry_run:
            _print_plan(env, outcome, json_out)
            return
        source = docs[i].source
        if isinstance(outcome, Dsv2Error):
            env.note(f"error: {source}: {outcome}; skipped")
            failed.append(outcome)
            return
        logs.record_summary(env, outcome)
        if outcome.result.finish_reason == "length" and outcome.result.strategy != "packed":
            env.note(f"warning: {source}: the summary reached --max-tokens ({max_tokens})")
        if out is not None and not dry_run:
            return
        if json_out:
            env.screen.block(render.json_line(render.summary_record(outcome)))
        else:
            env.screen.block(("\n" if i else "") + f"## {source}\n\n{outcome.result.summary}\n")

    status = session.summarize_each(
        docs,
        on_result,
        prompt_file=prompt_file,
        strategy=strategy,
        dry_run=dry_run,
        out=out,
        force=force,
        pack=pack,
        record=render.summary_record,
    )
    if out is not None and not dry_run:
        env.note(f"{status.done} summarized, {status.skipped} already there, {status.failed} failed: {out}")
    elif failed:
        env.note(f"{status.done} summarized, {len(failed)} failed")
    if failed:
        raise typer.Exit(int(failed[0].exit_code))


def _print_plan(env: Env, run: Any, json_out: bool) -> None:
    """``--dry-run``: the exact prompt, or every chunk of a map-reduce, or the plan as JSON."""
    from .. import render

    the_plan = run.plan
    if json_out:
        env.write_json(render.summary_plan_payload(run))
    elif the_plan.prompt is not None:
        env.screen.write(the_plan.prompt.text + "\n")
    else:
        for i, chunk in enumerate(the_plan.chunks, 1):
            env.screen.write(f"=== chunk {i}/{len(the_plan.chunks)}: {chunk.label()} ({chunk.tokens} tokens) ===\n")
            env.screen.write(chunk.render() + "\n")
