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
        from ..engines.llamacpp import default_threads
        from ..packing import Budget, count_context
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
        rate = None
        measured_now = False
        if session.path is not None and settings.tokenizer == "model":
            speed_cache = planning.SpeedCache(settings.home / "cache" / "prompt-speed.json")
            key = planning.speed_key(
                session.path, settings.threads or default_threads(), settings.gpu_layers, settings.flash_attn
            )
            rate = None if measure else speed_cache.get(key)
        if rate is None and measure is not False and session.path is not None and settings.tokenizer == "model":
            env.note("measuring prompt-evaluation speed once for this model and settings (loads the weights)")
            rate = planning.measure_prompt_speed(session.backend)
            speed_cache.put(key, rate)
            measured_now = True
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
        if rate:
            out.write(
                f"estimate:  prompt evaluation ~{eval_tokens / rate:,.1f} s at {rate:,.0f} tok/s "
                f"({'measured now' if measured_now else 'measured earlier on this machine'})\n"
            )
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
