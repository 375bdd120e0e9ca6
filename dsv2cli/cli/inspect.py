"""``dsv2 pack``, ``dsv2 plan``, ``dsv2 models``: what would be sent and how, without running the model."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .app import app
from .common import Env, choice_view, handle_errors, load_inputs, memory_line, resolve_settings
from .options import (
    ApiModelOpt,
    BackendOpt,
    BaseUrlOpt,
    CacheTypeKOpt,
    CacheTypeVOpt,
    CtxOpt,
    DebugOpt,
    ExcludeOpt,
    FlashOpt,
    GpuLayersOpt,
    IncludeOpt,
    JsonOpt,
    MaxTokensOpt,
    ModelOpt,
    PasswordOpt,
    PathsArg,
    RepoOpt,
    SplitModeOpt,
    TensorSplitOpt,
    ThreadsOpt,
    TokenizerOpt,
)
from .session import count_cache, open_session


@app.command()
def pack(
    paths: PathsArg = None,
    repo: RepoOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    password: PasswordOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the segments with locations and token counts as JSON.")
    ] = False,
    model: ModelOpt = None,
    tokenizer: TokenizerOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print the packed context exactly as the model receives it (markers, line numbers)."""
    env = Env()
    with handle_errors(env, debug):
        from ..packing import count_context, render_context

        docs = load_inputs(env, paths, repo, include, exclude, password)
        if not json_out:
            env.stdout.write(render_context(docs) + "\n")
            return
        settings = resolve_settings(env, locals())
        counter, resolved = count_cache(env, settings)
        try:
            counted = count_context(docs, counter.count_joined)
        finally:
            counter.close()
        tokens = counted.segment_tokens()
        payload = {
            "model": str(resolved.path),
            "tokenizer": settings.tokenizer,
            "context_tokens": counted.tokens,
            "documents": [
                {
                    "source": doc.source,
                    "kind": doc.kind,
                    "segments": [{**seg.location.to_dict(), "tokens": tokens.get(id(seg), 0)} for seg in doc.segments],
                }
                for doc in docs
            ],
        }
        env.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


@app.command()
def plan(
    paths: PathsArg = None,
    repo: RepoOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    password: PasswordOpt = None,
    top: Annotated[int, typer.Option("--top", help="How many of the largest files/pages to list.")] = 10,
    measure: Annotated[
        bool | None,
        typer.Option(
            "--measure/--no-measure",
            help="Measure prompt speed now (loads the weights) / never. Default: measure once, then reuse.",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
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
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    api_model: ApiModelOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Token counts, what fits, which strategy would run, how long prompt evaluation would take,
    and on a remote backend what it would cost."""
    env = Env()
    with handle_errors(env, debug):
        from .. import planning
        from .. import summarize as summ
        from ..models import embedded_model_path
        from ..packing import Budget, count_context
        from ..parallel import DEFAULT_THREADS_RULE, cpu_counts, default_threads
        from ..strategies import choose

        settings = resolve_settings(env, locals())
        docs = load_inputs(env, paths, repo, include, exclude, password)
        session = open_session(env, settings, verbose=False, announce=False)
        counter, _ = count_cache(env, settings, session)
        try:
            counted = count_context(docs, counter.count_joined)
            context_tokens = counted.tokens
            sizes = planning.part_sizes(counted)
            overhead = len(summ.build_prompt(counter.tokenizer, session.facts, summ.style_spec(settings.style), "").ids)
        finally:
            counter.close()
        budget = Budget(window=session.window, output=settings.max_tokens, overhead=overhead)
        strategy = {task: choose(task, context_tokens, budget.document) for task in ("summarize", "ask")}
        chunks = -(-context_tokens // max(budget.document, 1))
        eval_tokens = context_tokens + overhead * (chunks if chunks > 1 else 1)

        requests = chunks + 1 if chunks > 1 else 1
        cost = None
        if session.remote is not None:
            # input as counted; output at most --max-tokens per request (map-reduce: chunks + final)
            cost = {
                "input_usd": session.cost(eval_tokens, 0),
                "output_max_usd": session.cost(0, settings.max_tokens * requests),
                "total_max_usd": session.cost(eval_tokens, settings.max_tokens * requests),
                "requests": requests,
            }
        model_path = session.path if settings.tokenizer == "model" else None  # None: nothing local to measure
        local = model_path is not None
        threads_used = settings.threads or default_threads()
        speed_cache = planning.SpeedCache(planning.speed_cache_path(settings.home))
        rate = output_rate = None
        measured_now = False
        key = ""
        if model_path is not None:
            key = planning.speed_key(model_path, threads_used, settings.gpu_layers, settings.flash_attn)
            entry = None if measure else speed_cache.entry(key)
            rate = speed_cache.get(key) if entry is not None else None
            measured_output = entry.get("output_tokens_per_s") if entry is not None else None
            output_rate = float(measured_output) if isinstance(measured_output, (int, float)) else None
        if rate is None and measure is not False and local:
            env.note("measuring prompt-evaluation and generation speed once for these settings (loads the weights)")
            rate = planning.measure_prompt_speed(session.backend)
            output_rate = planning.measure_output_speed(session.backend)
            speed_cache.put(key, rate, output_rate)
            measured_now = True
        # Thread counts compared: measured with --measure, shown again from the cache later.
        thread_rows = None
        threads_measured_now = False
        if model_path is not None:
            tkey = planning.threads_key(model_path, settings.gpu_layers, settings.flash_attn)
            if measure:
                candidates = sorted({*cpu_counts().candidates(), threads_used}, reverse=True)
                env.note(f"measuring prompt and generation speed at {', '.join(map(str, candidates))} threads")
                session.backend.close()  # one model in memory at a time
                thread_rows = planning.measure_threads(session.backend.options, candidates)
                planning.store_threads(speed_cache, tkey, thread_rows)
                threads_measured_now = True
            else:
                thread_rows = planning.cached_threads(speed_cache, tkey)
            if output_rate is None and thread_rows:
                output_rate = next((r.output_tokens_per_s for r in thread_rows if r.threads == threads_used), None)
        sources = {
            "prompt_eval": "measured" if rate else None,
            "generation": "measured" if output_rate else None,
            "index": None,
        }
        if local and model_path == embedded_model_path():
            # Nothing measured for the embedded model: its speed on the project's machine stands in.
            if rate is None:
                rate, sources["prompt_eval"] = planning.EMBEDDED_PROMPT_TOKENS_PER_S, "default"
            if output_rate is None:
                output_rate, sources["generation"] = planning.EMBEDDED_OUTPUT_TOKENS_PER_S, "default"
        generation_s = settings.max_tokens * requests / output_rate if output_rate else None
        index_plan = None
        index_s = None
        if strategy["ask"] == "retrieve":
            corpus = list(paths or []) + ([repo] if repo else [])
            index_plan = planning.estimate_index(
                settings.home,
                corpus,
                docs,
                embed_model=settings.embed_model,
                threads=threads_used,
                measure=measure,
            )
            sources["index"] = index_plan.source
            index_s = index_plan.seconds
        payload = {
            "model": session.model_path or session.backend.capabilities.name,
            "backend": session.describe(),
            "estimated_cost": cost,
            "window": session.window,
            "reserved_output": settings.max_tokens,
            "prompt_overhead": overhead,
            "budget": budget.document,
            "context_tokens": context_tokens,
            "fits": budget.fits(context_tokens),
            "strategy": strategy,
            "largest": [{**s.location.to_dict(), "tokens": s.tokens} for s in planning.largest(sizes, top)],
            "segments": len(sizes),
            "prompt_tokens_per_s": round(rate, 1) if rate else None,
            "speed_measured_now": measured_now,
            "estimated_prompt_eval_s": round(eval_tokens / rate, 1) if rate else None,
            "tokenizer": session.remote.counting if session.remote is not None else settings.tokenizer,
            "memory": session.memory.to_dict() if session.memory else None,
            # generation: at most --max-tokens per request (map-reduce: one per chunk and the final one)
            "output_tokens_per_s": round(output_rate, 1) if output_rate else None,
            "estimated_generation_s": round(generation_s, 1) if generation_s is not None else None,
            "requests": requests,
            # the first ask on a corpus that needs retrieval builds its index (chunks x embedding rate)
            "index_state": index_plan.state if index_plan else None,
            "index_chunks": index_plan.chunks if index_plan else None,
            "index_chunks_to_embed": index_plan.to_embed if index_plan else None,
            "index_embedder": index_plan.embedder if index_plan else None,
            "embed_chunks_per_s": round(index_plan.chunks_per_s, 1) if index_plan and index_plan.chunks_per_s else None,
            "estimated_index_s": round(index_s, 1) if index_s is not None else None,
            # where each number comes from: "measured" (on this machine, now or earlier) or "default"
            "estimates": sources,
            "estimates_measured_now": [
                name
                for name, now in (
                    ("prompt_eval", measured_now),
                    ("generation", measured_now),
                    ("index", bool(index_plan and index_plan.measured_now)),
                    ("threads", threads_measured_now),
                )
                if now
            ],
            "threads": [r.to_dict() for r in thread_rows] if thread_rows else None,
            "threads_in_use": threads_used if local else None,
            "threads_default": default_threads() if local else None,
            "threads_measured_now": threads_measured_now,
        }
        if json_out:
            env.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
            return
        out = env.stdout
        shown = session.path.name if session.path is not None else f"{session.backend.capabilities.name} at "
        if session.remote is not None:
            shown += session.remote.base_url
        out.write(
            f"model:     {shown} (window {session.window:,} tokens, {settings.max_tokens:,} reserved for output)\n"
        )
        out.write(
            f"input:     {context_tokens:,} tokens in {len(sizes):,} segments; "
            f"budget {budget.document:,} -> {'fits' if payload['fits'] else 'does not fit'} one window\n"
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
                    f"generation up to ~{generation_s:,.1f} s ({settings.max_tokens:,} tokens x {requests} "
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
                + (" (--threads)" if settings.threads else f" (default: {DEFAULT_THREADS_RULE})")
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
                    + (" (token counts estimated)" if session.remote.counting == "estimate" else "")
                    + "\n"
                )
        if session.memory is not None:
            out.write(f"memory:    {memory_line(session.memory)}\n")
        out.write("largest:\n")
        for s in planning.largest(sizes, top):
            out.write(f"  {s.tokens:>9,}  {s.location.cite()}\n")


@app.command()
def models(
    model: ModelOpt = None,
    ctx: CtxOpt = None,
    gpu_layers: GpuLayersOpt = None,
    flash_attn: FlashOpt = None,
    cache_type_k: CacheTypeKOpt = None,
    cache_type_v: CacheTypeVOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show the resolved model and what it is, without loading its weights.

    The window is the one a run would use (--ctx, DSV2_CTX or ctx in config.toml, else the
    model's default, lowered to what fits in free memory), with the memory estimate at it.

    Examples:

    \b
      dsv2 models
      dsv2 models --model ~/models/DeepSeek-V2-Lite-Chat.Q4_K_M.gguf --ctx 32768
      dsv2 models --json | jq .window
    """
    env = Env()
    with handle_errors(env, debug):
        from ..models import model_info, resolve_model

        settings = resolve_settings(env, locals())
        info = model_info(resolve_model(settings), settings)
        if json_out:
            env.stdout.write(json.dumps(info) + "\n")
            return
        labels = {
            "path": "model",
            "resolved_from": "resolved from",
            "name": "name",
            "architecture": "architecture",
            "trained_context": "trained context",
            "window": "dsv2 window",
            "layers": "layers",
            "vocab_size": "vocabulary",
            "chat_template": "chat template",
            "quantization": "quantization",
            "file_size_bytes": "file size",
            "gguf_version": "GGUF version",
            "gpu_offload": "GPU offload",
            "kv_format": "KV cache",
            "memory": "memory",
        }
        for key, label in labels.items():
            value = info[key]
            if key == "window":
                default = info["default_context"]
                shown = f"{value:,} ({info['window_from']}"
                value = shown + (")" if value == default else f"; model default {default:,})")
            elif key == "kv_format":
                value = f"{value} format, {info['kv_bytes_per_token']:,} bytes/token at f16"
            elif key == "memory":
                value = memory_line(choice_view(value))  # type: ignore[arg-type]  # dict from model_info
            elif key == "file_size_bytes":
                value = f"{int(value) / 1e6:,.1f} MB ({value} bytes)"  # type: ignore[call-overload]  # int from model_info
            elif isinstance(value, bool):
                value = "yes" if value else "no"
                if key == "gpu_offload":
                    value += " (this llama.cpp build)" if value == "yes" else " (CPU-only llama.cpp build)"
            env.stdout.write(f"{label + ':':<17}{value}\n")
