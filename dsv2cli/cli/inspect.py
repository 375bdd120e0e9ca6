"""``dsv2 pack``, ``dsv2 plan``: what would be sent and how, without running the model.

``dsv2 models`` lives in cli/models.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .app import app
from .common import Env, memory_line
from .options import CACHE, ENGINE, INPUTS, REMOTE, RETRIEVAL, Flags, JsonOpt, PathsArg, uses

if TYPE_CHECKING:
    from ..api import PlanReport


@app.command()
@uses(INPUTS, ENGINE)
def pack(
    paths: PathsArg = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the segments with locations and token counts as JSON.")
    ] = False,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Print the packed context exactly as the model receives it (markers, line numbers).

    Examples:

    \b
      dsv2 pack --repo ./src | less
      dsv2 pack report.pdf --json | jq .context_tokens
    """
    from ..packing import render_context

    session = env.session(flags)
    docs = env.load(session, flags, paths)
    if json_out:
        env.write_json(session.pack(docs))
    else:
        env.screen.write(render_context(docs) + "\n")


@app.command()
@uses(INPUTS, ENGINE, REMOTE, CACHE, RETRIEVAL)
def plan(
    paths: PathsArg = None,
    top: Annotated[int, typer.Option("--top", help="How many of the largest files/pages to list.")] = 10,
    measure: Annotated[
        bool | None,
        typer.Option(
            "--measure/--no-measure",
            help="Measure prompt and generation speed now, and compare thread counts (loads the weights) / "
            "never. Default: measure once, then reuse.",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Token counts, what fits, which strategy would run, how long it would take (prompt evaluation,
    generation, indexing for ask), and on a remote backend what it would cost.

    Examples:

    \b
      dsv2 plan annual-report.pdf
      dsv2 plan --repo ./src --ctx 16384
      dsv2 plan report.pdf --measure            # measure speeds and compare thread counts now
      dsv2 plan report.pdf --backend deepseek   # what it would cost there
      dsv2 plan report.pdf --json | jq .estimated_prompt_eval_s
    """
    session = env.session(flags)
    docs = env.load(session, flags, paths)
    corpus = list(paths or []) + ([flags.repo] if flags.repo else [])
    report = session.plan(docs, corpus=corpus, top=top, measure=measure)
    if json_out:
        env.write_json(report.payload)
    else:
        _print_plan(env, report)


def _print_plan(env: Env, report: PlanReport) -> None:
    from .. import planning
    from ..parallel import DEFAULT_THREADS_RULE, cpu_counts

    out = env.stdout
    payload, session, top = report.payload, report.handle, report.top
    settings_max_tokens = report.max_tokens
    context_tokens, sizes, strategy, chunks = (
        payload["context_tokens"],
        report.sizes,
        payload["strategy"],
        report.chunks,
    )
    local, rate, output_rate, generation_s = report.local, report.rate, report.output_rate, report.generation_s
    eval_tokens, requests, sources, cost = (
        report.eval_tokens,
        report.requests,
        payload["estimates"],
        payload["estimated_cost"],
    )
    measured_now, threads_measured_now = report.measured_now, report.threads_measured_now
    index_plan, thread_rows, threads_used = report.index, report.threads, report.threads_used
    shown = session.path.name if session.path is not None else f"{session.name} at "
    if session.remote is not None:
        shown += session.remote.base_url
    out.write(f"model:     {shown} (window {session.window:,} tokens, {settings_max_tokens:,} reserved for output)\n")
    out.write(
        f"input:     {context_tokens:,} tokens in {len(sizes):,} segments; "
        f"budget {payload['budget']:,} -> {'fits' if payload['fits'] else 'does not fit'} one window\n"
    )
    out.write(
        f"strategy:  summarize: {strategy['summarize']}"
        + (f" (~{chunks} chunks)" if strategy["summarize"] != "whole" else "")
        + f"; ask: {strategy['ask']}\n"
    )

    def origin(source: str | None, now: bool) -> str:
        if source == "default":
            return "(default, not measured: run dsv2 plan --measure)"
        return "(measured now)" if now else "(measured on this machine)"

    def index_line(est: planning.IndexEstimate) -> str:
        head = f"indexing for ask: index {est.state}, {est.chunks:,} chunks"
        if est.embedder is None:
            return head + "; no embedding model, BM25 alone: chunking only, no embedding"
        if est.to_embed == 0:
            return head + f"; nothing to embed ({est.embedder})"
        seconds = est.seconds or 0.0
        return (
            head + f"; {est.to_embed:,} to embed ~{seconds:,.1f} s at {est.chunks_per_s or 0:,.0f} chunks/s "
            f"({est.embedder}) " + origin(est.source, est.measured_now)
        )

    lines: list[str] = []
    if local:
        if rate:
            lines.append(
                f"prompt evaluation ~{eval_tokens / rate:,.1f} s at {rate:,.0f} tok/s "
                + origin(sources["prompt_eval"], measured_now)
            )
        else:
            lines.append("prompt evaluation: not measured (run dsv2 plan --measure)")
        if output_rate and generation_s is not None:
            lines.append(
                f"generation up to ~{generation_s:,.1f} s ({settings_max_tokens:,} tokens x {requests} "
                f"request(s) at {output_rate:,.0f} tok/s) " + origin(sources["generation"], measured_now)
            )
        else:
            lines.append("generation: not measured (run dsv2 plan --measure)")
    if index_plan is not None:
        lines.append(index_line(index_plan))
    for i, line in enumerate(lines):
        out.write(f"{'estimate:' if i == 0 else '':<11}{line}\n")
    if local:
        cpus = cpu_counts()
        out.write(
            f"threads:   {threads_used} in use"
            + (" (--threads)" if report.threads_given else f" (default: {DEFAULT_THREADS_RULE})")
            + f"; {cpus.logical} logical CPUs, {cpus.physical} physical cores\n"
        )
        for row in thread_rows or []:
            mark = "  <- in use" if row.threads == threads_used else ""
            out.write(
                f"{'':<11}{row.threads:>3} thread{'s' if row.threads != 1 else ''}: "
                f"prompt {row.prompt_tokens_per_s:,.0f} tok/s, "
                f"generation {row.output_tokens_per_s:,.0f} tok/s "
                f"{'(measured now)' if threads_measured_now else '(measured on this machine)'}{mark}\n"
            )
        if not thread_rows:
            out.write(f"{'':<11}thread counts not compared yet: dsv2 plan --measure\n")
    if cost is not None:
        if cost["total_max_usd"] is None:
            out.write("cost:      no prices for this backend (set price_input / price_output)\n")
        else:
            out.write(
                f"cost:      input ${cost['input_usd']:.4f} + output up to ${cost['output_max_usd']:.4f} "
                f"= at most ${cost['total_max_usd']:.4f} in {requests} request(s)"
                + (
                    " (token counts estimated)"
                    if session.remote is not None and session.remote.counting == "estimate"
                    else ""
                )
                + "\n"
            )
    if session.memory is not None:
        out.write(f"memory:    {memory_line(session.memory)}\n")
    out.write("largest:\n")
    for s in planning.largest(sizes, top):
        out.write(f"  {s.tokens:>9,}  {s.location.cite()}\n")
