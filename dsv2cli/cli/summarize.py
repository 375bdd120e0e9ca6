"""``dsv2 summarize``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app, elapsed
from .common import Env, handle_errors, load_inputs, resolve_settings
from .options import (
    AllowSecretsOpt,
    ApiKeyEnvOpt,
    ApiModelOpt,
    BackendOpt,
    BaseUrlOpt,
    CacheSizeOpt,
    CacheTypeKOpt,
    CacheTypeVOpt,
    ConcurrencyOpt,
    CtxOpt,
    DebugOpt,
    DryRunOpt,
    EscalateOpt,
    ExcludeOpt,
    FlashOpt,
    GpuLayersOpt,
    IncludeOpt,
    JsonOpt,
    MaxTokensOpt,
    ModelOpt,
    NoCacheOpt,
    PasswordOpt,
    PathsArg,
    RepoOpt,
    SeedOpt,
    SplitModeOpt,
    StrategyOpt,
    TempOpt,
    TensorSplitOpt,
    ThreadsOpt,
    TokenizerOpt,
    VerboseOpt,
    YesOpt,
)
from .session import ModelSession, Routing, guard_outgoing, open_session


@app.command()
def summarize(
    paths: PathsArg = None,
    repo: RepoOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    password: PasswordOpt = None,
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
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Stream tokens to stdout as they arrive (default when stdout is a terminal)."),
    ] = False,
    json_out: JsonOpt = False,
    each: Annotated[
        bool,
        typer.Option(
            "--each",
            help="One summary per input document (each file; a directory's files) instead of one for all; "
            "with --json one object per line. A remote backend summarizes --concurrency of them at once.",
        ),
    ] = False,
    no_cache: NoCacheOpt = False,
    cache_size: CacheSizeOpt = None,
    model: ModelOpt = None,
    ctx: CtxOpt = None,
    max_tokens: MaxTokensOpt = None,
    gpu_layers: GpuLayersOpt = None,
    threads: ThreadsOpt = None,
    flash_attn: FlashOpt = None,
    cache_type_k: CacheTypeKOpt = None,
    cache_type_v: CacheTypeVOpt = None,
    split_mode: SplitModeOpt = None,
    tensor_split: TensorSplitOpt = None,
    tokenizer: TokenizerOpt = None,
    temperature: TempOpt = None,
    seed: SeedOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    api_model: ApiModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    escalate_to: EscalateOpt = None,
    allow_secrets: AllowSecretsOpt = False,
    yes: YesOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
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
    """
    env = Env()
    with handle_errors(env, debug):
        settings = resolve_settings(env, locals())
        from .. import prompts
        from .. import summarize as summ
        from ..engines.base import GenerationParams

        spec = summ.style_spec(settings.style)
        if prompt_file is not None:
            spec = summ.PromptSpec(spec.system, prompts.load_user_template(prompt_file, frozenset({"document"})))
        docs = load_inputs(env, paths, repo, include, exclude, password)
        session = open_session(env, settings, verbose, no_cache=no_cache)
        tokenize_started = time.perf_counter()

        def plan_on(session: ModelSession) -> Any:
            tok = session.tokenizer(verbose, dry_run)
            return summ.plan(
                docs, tok, session.facts, spec, session.window, settings.max_tokens, strategy, settings.parallel
            )

        if each:
            _summarize_each(
                env, docs, session, settings, spec, strategy, dry_run, json_out, allow_secrets, yes, verbose
            )
            return
        from ..remote import classify_input

        the_plan = plan_on(session)
        routing = Routing(env, settings, session, verbose)
        session, answered_by = routing.choose(
            classify_input(the_plan.document_tokens, the_plan.budget.document), "input fits one window"
        )
        if session is not routing.first:
            the_plan = plan_on(session)
        tokenize_s = time.perf_counter() - tokenize_started
        if dry_run:
            _print_dry_run(env, the_plan, docs, json_out, session, answered_by)
            return
        if the_plan.strategy != "whole":
            env.note(
                f"input is {the_plan.document_tokens} tokens, over the {the_plan.budget.document}-token budget "
                f"of one {session.window}-token window: map-reduce over {len(the_plan.chunks)} chunks"
            )
        guard_outgoing(
            env,
            session,
            docs,
            *the_plan.sent_estimate(),
            allow_secrets=allow_secrets,
            yes=yes,
        )

        streaming = not json_out and (stream or env.stdout_isatty)
        screen = env.screen
        params = GenerationParams(settings.max_tokens, settings.temperature, settings.seed)
        with screen.progress():
            result = summ.run(
                the_plan,
                docs,
                session.backend,
                params,
                on_text=screen.write if streaming else None,
                on_prompt_progress=screen.on_prompt,
                on_stage=screen.on_stage,
            )
        if streaming:
            screen.write("\n")  # the streamed summary's last line ends before any note below it
        for notice in session.notices():
            env.note(notice)
        result.timings = {
            "load_s": round(session.load_s, 4),
            "tokenize_s": round(tokenize_s, 4),
            **result.timings,
            "total_s": round(elapsed(), 4),
        }
        if verbose:
            t = result.timings
            env.note(
                f"{result.calls} model call(s): prompt {result.input_tokens} tokens in {t['prompt_eval_s']:.2f} s "
                f"({t['prompt_tokens_per_s']} tok/s); output {result.output_tokens} tokens in "
                f"{t['generation_s']:.2f} s ({t['output_tokens_per_s']} tok/s)"
            )
        if result.finish_reason == "length":
            env.note(f"warning: the summary reached --max-tokens ({settings.max_tokens}) and may be cut short")
        if json_out:
            payload = {
                "summary": result.summary,
                "model": result.model,
                "model_path": session.model_path,
                "backend": session.describe(),
                "answered_by": answered_by,
                "strategy": result.strategy,
                "input_tokens": result.input_tokens,
                "document_tokens": result.document_tokens,
                "output_tokens": result.output_tokens,
                "window": result.window,
                "budget": result.budget,
                "finish_reason": result.finish_reason,
                "calls": result.calls,
                "chunks": result.chunks,
                "usage_estimated": bool(result.usage_estimated),
                "cost_usd": session.cost(result.input_tokens, result.output_tokens),
                "timings": result.timings,
            }
            screen.write(json.dumps(payload, ensure_ascii=False) + "\n")
        elif not streaming:
            screen.write(result.summary + "\n")


def _summarize_each(
    env: Env,
    docs: list[Any],
    session: ModelSession,
    settings: Any,
    spec: Any,
    strategy: str | None,
    dry_run: bool,
    json_out: bool,
    allow_secrets: bool,
    yes: bool,
    verbose: bool,
) -> None:
    """``summarize --each``: a summary per document, in input order; a failed one is reported and skipped."""
    from .. import summarize as summ
    from ..engines.base import GenerationParams
    from ..errors import Dsv2Error
    from ..remote import classify_input

    routing = Routing(env, settings, session, verbose)

    def plan_on(chosen: ModelSession, doc: Any) -> Any:
        # Documents run settings.parallel at once; each one's map-reduce calls run one at a time.
        tok = chosen.tokenizer(verbose, dry_run)
        return summ.plan([doc], tok, chosen.facts, spec, chosen.window, settings.max_tokens, strategy, 1)

    jobs: list[summ.Job] = []
    routes: list[tuple[ModelSession, dict[str, Any]]] = []
    for doc in docs:
        the_plan = plan_on(session, doc)
        reason = classify_input(the_plan.document_tokens, the_plan.budget.document)
        chosen, answered_by = routing.choose(f"{doc.source}: {reason}" if reason else None, "input fits one window")
        if chosen is not session:
            the_plan = plan_on(chosen, doc)
        jobs.append((the_plan, [doc], chosen.backend))
        routes.append((chosen, answered_by))
    if dry_run:
        for (the_plan, job_docs, _), (chosen, answered_by) in zip(jobs, routes, strict=True):
            _print_dry_run(env, the_plan, job_docs, json_out, chosen, answered_by)
        return
    for chosen in {id(c): c for c, _ in routes}.values():
        mine = [(p, d) for (p, d, _), (c, _) in zip(jobs, routes, strict=True) if c is chosen]
        tokens = sum(p.sent_estimate()[0] for p, _ in mine)
        calls = sum(p.sent_estimate()[1] for p, _ in mine)
        guard_outgoing(env, chosen, [d[0] for _, d in mine], tokens, calls, allow_secrets=allow_secrets, yes=yes)
    params = GenerationParams(settings.max_tokens, settings.temperature, settings.seed)
    failed: list[Dsv2Error] = []

    def on_result(i: int, outcome: Any) -> None:
        doc = jobs[i][1][0]
        chosen, answered_by = routes[i]
        if isinstance(outcome, Dsv2Error):
            env.note(f"error: {doc.source}: {outcome}; skipped")
            failed.append(outcome)
            return
        if outcome.finish_reason == "length":
            env.note(f"warning: {doc.source}: the summary reached --max-tokens ({settings.max_tokens})")
        if json_out:
            record = {
                "source": doc.source,
                "summary": outcome.summary,
                "model": outcome.model,
                "backend": chosen.describe(),
                "answered_by": answered_by,
                "strategy": outcome.strategy,
                "input_tokens": outcome.input_tokens,
                "output_tokens": outcome.output_tokens,
                "calls": outcome.calls,
                "finish_reason": outcome.finish_reason,
                "usage_estimated": outcome.usage_estimated,
                "cost_usd": chosen.cost(outcome.input_tokens, outcome.output_tokens),
            }
            env.screen.block(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            env.screen.block(("\n" if i else "") + f"## {doc.source}\n\n{outcome.summary}\n")

    with env.screen.progress(resumable=True):
        summ.run_many(jobs, params, settings.parallel, on_result, env.screen.on_stage)
    if failed:
        env.note(f"{len(jobs) - len(failed)} summarized, {len(failed)} failed")
        raise typer.Exit(int(failed[0].exit_code))


def _print_dry_run(
    env: Env, the_plan: Any, docs: Any, json_out: bool, session: ModelSession, answered_by: dict[str, Any]
) -> None:
    if json_out:
        prompt_tokens, calls = the_plan.sent_estimate()
        payload = {
            "backend": session.describe(),
            "answered_by": answered_by,
            "estimated_requests": calls,
            "estimated_cost_usd": session.cost(prompt_tokens, calls * the_plan.budget.output),
            "strategy": the_plan.strategy,
            "window": the_plan.budget.window,
            "budget": the_plan.budget.document,
            "reserved_output": the_plan.budget.output,
            "context_tokens": the_plan.document_tokens,
            "prompt_tokens": len(the_plan.prompt.ids) if the_plan.prompt else None,
            "chunks": len(the_plan.chunks) if the_plan.chunks else None,
            "sources": the_plan.sources(docs),
        }
        env.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    elif the_plan.prompt is not None:
        env.stdout.write(the_plan.prompt.text + "\n")
    else:
        for i, chunk in enumerate(the_plan.chunks, 1):
            env.stdout.write(f"=== chunk {i}/{len(the_plan.chunks)}: {chunk.label()} ({chunk.tokens} tokens) ===\n")
            env.stdout.write(chunk.render() + "\n")
    env.stdout.flush()
