"""``dsv2 ask``."""

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
    CtxOpt,
    DebugOpt,
    DryRunOpt,
    EmbedModelOpt,
    EscalateOpt,
    ExcludeOpt,
    FlashOpt,
    GpuLayersOpt,
    IncludeOpt,
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
    repo: RepoOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    password: PasswordOpt = None,
    strategy: StrategyOpt = None,
    dry_run: DryRunOpt = False,
    embed_model: EmbedModelOpt = None,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Stream tokens to stdout as they arrive (default when stdout is a terminal)."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per question (one line each).")
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
    escalate_to: EscalateOpt = None,
    allow_secrets: AllowSecretsOpt = False,
    yes: YesOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Answer questions about documents or a codebase, citing [path:lines] or [p. N].

    The question comes first, then the documents; with -q, every argument is an input.

    Examples:

    \b
      dsv2 ask "What is the liability cap?" contract.pdf
      dsv2 ask --repo ./src "Where is the retry delay set?"
      dsv2 ask -q "Who are the parties?" -q "When does it end?" contract.pdf
      dsv2 ask --repo ./src "How are tokens counted?" --dry-run --json
    """
    env = Env()
    with handle_errors(env, debug):
        settings = resolve_settings(env, locals())
        from .. import ask as asking
        from ..engines.base import GenerationParams, Usage
        from ..errors import UsageError
        from ..remote import classify_input, classify_question

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

        docs = load_inputs(env, paths, repo, include, exclude, password)
        first = open_session(env, settings, verbose, no_cache=no_cache)
        routing = Routing(env, settings, first, verbose)
        corpus = list(paths or []) + ([repo] if repo else [])
        params = GenerationParams(settings.max_tokens, settings.temperature, settings.seed)

        def plan_on(session: ModelSession, asked_question: str) -> Any:
            with env.screen.progress():
                return asking.plan(
                    asked_question,
                    docs,
                    session.tokenizer(verbose, dry_run),
                    session.facts,
                    session.window,
                    settings.max_tokens,
                    corpus=corpus,
                    home=settings.home,
                    strategy=strategy,
                    embed_model=settings.embed_model,
                    threads=settings.threads,
                    on_index_progress=env.screen.on_index,
                )

        confirmed: set[int] = set()
        for number, asked_question in enumerate(asked, 1):
            started = time.perf_counter()
            # A question judged complex escalates before the first backend plans anything.
            reason = classify_question(asked_question) if routing.enabled else None
            the_plan = None if reason else plan_on(first, asked_question)
            if the_plan is not None and routing.enabled:
                reason = classify_input(the_plan.context_tokens, the_plan.budget.document)
            session, answered_by = routing.choose(reason, "simple question that fits one window")
            if session is not first or the_plan is None:
                the_plan = plan_on(session, asked_question)
            plan_s = time.perf_counter() - started
            for notice in the_plan.notices if number == 1 else []:
                env.note(notice)
            described = {
                "backend": session.describe(),
                "answered_by": answered_by,
                "strategy": the_plan.strategy,
                "retrieval": the_plan.retrieval,
                "window": the_plan.budget.window,
                "budget": the_plan.budget.document,
                "reserved_output": the_plan.budget.output,
                "context_tokens": the_plan.context_tokens,
                "prompt_tokens": len(the_plan.prompt.ids),
                "sources": the_plan.sources,
            }
            if dry_run:
                if json_out:
                    cost = session.cost(len(the_plan.prompt.ids), settings.max_tokens)
                    described = {**described, "estimated_cost_usd": cost}
                    env.stdout.write(json.dumps({"question": asked_question, **described}, ensure_ascii=False) + "\n")
                else:
                    env.stdout.write(the_plan.prompt.text + "\n")
                continue
            if the_plan.strategy == "retrieve" and number == 1:
                env.note(
                    f"corpus does not fit one {session.window}-token window: answering from "
                    f"{len(the_plan.sources)} retrieved passages ({the_plan.retrieval})"
                )
            guard_outgoing(
                env,
                session,
                docs,
                len(the_plan.prompt.ids),
                1,
                allow_secrets=allow_secrets,
                yes=yes or id(session) in confirmed,
                extra={"the question": asked_question},
            )
            confirmed.add(id(session))  # asked once per backend: the next questions go to the same place
            streaming = not json_out and (stream or env.stdout_isatty)
            screen = env.screen
            if len(asked) > 1 and not json_out:
                screen.write(("\n" if number > 1 else "") + f"## {asked_question}\n\n")
            usage = Usage()
            pieces: list[str] = []
            with screen.progress():
                for piece in session.backend.generate(the_plan.prompt, params, usage, screen.on_prompt):
                    pieces.append(piece)
                    if streaming:
                        screen.write(piece)
            if streaming:
                screen.write("\n")  # the streamed answer's last line ends before any note below it
            for notice in session.notices():
                env.note(notice)
            answer = "".join(pieces).strip()
            if usage.finish_reason == "length":
                env.note(f"warning: the answer reached --max-tokens ({settings.max_tokens}) and may be cut short")
            if json_out:
                payload = {
                    "answer": answer,
                    "question": asked_question,
                    "model": session.backend.capabilities.name,
                    "model_path": session.model_path,
                    **described,
                    "input_tokens": usage.prompt_tokens,
                    "output_tokens": usage.output_tokens,
                    "usage_estimated": bool(usage.extra.get("usage_estimated")),
                    "cost_usd": session.cost(usage.prompt_tokens, usage.output_tokens),
                    "finish_reason": usage.finish_reason,
                    "prefix_reused_tokens": int(usage.extra.get("prefix_reused_tokens", 0)),
                    "prefix_cache": _cache_outcome(usage, no_cache),
                    "timings": {
                        "load_s": round(session.load_s, 4),
                        "plan_s": round(plan_s, 4),
                        "prompt_eval_s": round(usage.prompt_eval_s, 4),
                        "generation_s": round(usage.generation_s, 4),
                        "total_s": round(elapsed(), 4),
                    },
                }
                screen.write(json.dumps(payload, ensure_ascii=False) + "\n")
            elif not streaming:
                screen.write(answer + "\n")


def _cache_outcome(usage: Any, no_cache: bool) -> str:
    """ "hit" (loaded from disk), "memory" (reused in this process), "miss", "off" or "short"."""
    if usage.extra.get("prefix_cache_hits"):
        return "hit"
    if usage.extra.get("prefix_reused_tokens"):
        return "memory"
    if no_cache:
        return "off"
    if usage.extra.get("prefix_cache_misses"):
        return "miss"
    return "short"


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
