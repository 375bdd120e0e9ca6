"""The ``dsv2`` command. The only module that parses flags, prints and picks exit codes."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO

import typer
from rich.console import Console

from . import __version__
from .errors import Dsv2Error, ExitCode

app = typer.Typer(
    name="dsv2",
    help="Summarize, question and extract from documents with a local DeepSeek-V2 (llama.cpp).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_STARTED = time.perf_counter()


@dataclass
class Env:
    """The process's streams and environment, bundled so tests can substitute them."""

    stdin: BinaryIO = field(default_factory=lambda: sys.stdin.buffer)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def animate(self) -> bool:
        """Progress bars only on a terminal, and never with NO_COLOR."""
        return _isatty(self.stderr) and "NO_COLOR" not in self.environ

    def console(self) -> Console:
        return Console(
            file=self.stderr,
            no_color="NO_COLOR" in self.environ or not _isatty(self.stderr),
            highlight=False,
            soft_wrap=True,
        )

    def note(self, message: str) -> None:
        print(f"dsv2: {message}", file=self.stderr, flush=True)

    def confirm(self, question: str) -> bool | None:
        """Ask on the terminal (stdin may be the document): True/False, or None when there is no terminal."""
        if not _isatty(self.stderr):
            return None
        try:
            with open("/dev/tty", "r+", encoding="utf-8") as tty:
                tty.write(f"dsv2: {question}")
                tty.flush()
                return tty.readline().strip().lower() in ("y", "yes")
        except OSError:
            return None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextmanager
def handle_errors(env: Env, debug: bool) -> Iterator[None]:
    """Dsv2Error -> one line and its exit code; anything else -> one line, exit 1 (traceback with --debug)."""
    try:
        yield
    except typer.Exit:
        raise
    except Dsv2Error as exc:
        if debug:
            raise
        env.note(f"error: {exc}")
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        env.note("interrupted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        finally:
            raise typer.Exit(0) from None
    except Exception as exc:
        if debug:
            raise
        env.note(f"unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)")
        raise typer.Exit(int(ExitCode.UNEXPECTED)) from None


def version_callback(value: bool) -> None:
    if value:
        print(f"dsv2 {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Summarize, question and extract from documents with a local DeepSeek-V2 (llama.cpp).

    Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 input error, 4 model error,
    5 context overflow, 6 remote backend error, 7 refused (secrets, not confirmed), 130 interrupted.
    """


# Options shared by model-running commands.
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="GGUF model file (env DSV2_MODEL).", show_default=False)
]
CtxOpt = Annotated[
    int | None,
    typer.Option(
        "--ctx", help="Context window in tokens [default: the model's rated/trained context].", show_default=False
    ),
]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", help="Tokens reserved for the output [default: 512].", show_default=False)
]
GpuLayersOpt = Annotated[
    int | None,
    typer.Option(
        "--gpu-layers",
        help="Layers to offload to the GPU, -1 all [default: all if the build can offload, else 0].",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="CPU threads [default: all cores].", show_default=False)
]
FlashOpt = Annotated[
    bool | None, typer.Option("--flash-attn/--no-flash-attn", help="Flash attention [default: on].", show_default=False)
]
CacheTypeKOpt = Annotated[
    str | None,
    typer.Option("--cache-type-k", help="KV cache type for K: f16 | q8_0 | q4_0 [default: f16].", show_default=False),
]
CacheTypeVOpt = Annotated[
    str | None,
    typer.Option(
        "--cache-type-v",
        help="KV cache type for V: f16 | q8_0 | q4_0; quantized needs flash attention [default: f16].",
        show_default=False,
    ),
]
SplitModeOpt = Annotated[
    str | None,
    typer.Option(
        "--split-mode", help="Several GPUs: none | layer | row [default: llama.cpp's, layer].", show_default=False
    ),
]
TensorSplitOpt = Annotated[
    str | None,
    typer.Option("--tensor-split", help="Share of the model per GPU, e.g. 3,1.", show_default=False),
]
TokenizerOpt = Annotated[
    str | None,
    typer.Option(
        "--tokenizer",
        help="Count with a shipped tokenizer instead of the model's: deepseek-v2 (no weights "
        "needed; window 128k unless --ctx). Planning only: plan, pack --json, --dry-run.",
        show_default=False,
    ),
]
TempOpt = Annotated[
    float | None,
    typer.Option("--temperature", help="Sampling temperature, 0 = greedy [default: 0.2].", show_default=False),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Sampling seed [default: 0].", show_default=False)]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show llama.cpp's own log and timing details on stderr.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="local | openai | a profile: deepseek, openrouter, vllm, llama-server, or [profiles.NAME] in the "
        "config [default: local].",
        show_default=False,
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://host:8000/v1.", show_default=False),
]
ApiModelOpt = Annotated[
    str | None, typer.Option("--api-model", help="Model name sent to the endpoint.", show_default=False)
]
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        help="Environment variable holding the API key [default: the profile's, then DSV2_API_KEY].",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="Requests in flight at once [default: 4 on a remote backend, 1 local].",
        show_default=False,
    ),
]
EscalateOpt = Annotated[
    str | None,
    typer.Option(
        "--escalate-to",
        help="A second backend or profile for requests judged complex, or whose first answer fails validation.",
        show_default=False,
    ),
]
AllowSecretsOpt = Annotated[
    bool, typer.Option("--allow-secrets", help="Send content that looks like a secret to a remote backend.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Send to a remote backend without asking (scripts).")]


def _remote_flags(
    backend: str | None,
    base_url: str | None,
    api_model: str | None,
    api_key_env: str | None,
    concurrency: int | None,
    escalate_to: str | None,
) -> dict[str, Any]:
    return {
        "backend": backend,
        "base_url": base_url,
        "api_model": api_model,
        "api_key_env": api_key_env,
        "concurrency": concurrency,
        "escalate_to": escalate_to,
    }


def _escalation(env: Env, settings: Any, verbose: bool) -> _ModelSession | None:
    """The --escalate-to backend, opened (not loaded); None without --escalate-to."""
    if not settings.escalate_to:
        return None
    from .settings import with_backend

    return _open_model(env, with_backend(settings, settings.escalate_to, env.environ), verbose)


def _settings(env: Env, **flags: Any) -> Any:
    from .settings import resolve

    return resolve(flags, env.environ)


StrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy", help="whole | map-reduce | retrieve [default: chosen from token counts].", show_default=False
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Do everything up to the model call and show what would be sent; loads no weights."),
]


PathsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Files or directories to read; - for standard input.", show_default=False),
]
RepoOpt = Annotated[
    str | None,
    typer.Option("--repo", help="A code directory to read (honours .gitignore and .dsv2ignore).", show_default=False),
]
IncludeOpt = Annotated[
    list[str] | None,
    typer.Option("--include", help="Glob of repository files to keep (repeatable).", show_default=False),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Glob of repository files to skip (repeatable).", show_default=False),
]
PasswordOpt = Annotated[
    str | None, typer.Option("--password", help="Password of an encrypted PDF.", show_default=False)
]


def _load_inputs(
    env: Env,
    paths: list[str] | None,
    repo: str | None,
    include: list[str] | None,
    exclude: list[str] | None,
    password: str | None,
) -> list[Any]:
    """Read every input; print the reader's notes (what was skipped, redacted, warned) on stderr."""
    from . import sources

    docs, notes = sources.load_inputs(
        paths or [], env.stdin, repo=repo, include=include or (), exclude=exclude or (), password=password
    )
    for line in notes:
        env.note(line)
    return docs


NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the prompt-prefix cache.")]
CacheSizeOpt = Annotated[
    str | None,
    typer.Option("--cache-size", help="Prefix-cache bound, e.g. 2G or 500M [default: 4G].", show_default=False),
]


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
    """Summarize documents (.txt, .md, .html, .pdf, a directory, or - for stdin). Only the summary goes to stdout."""
    env = Env()
    with handle_errors(env, debug):
        settings = _settings(
            env,
            model=model,
            ctx=ctx,
            max_tokens=max_tokens,
            gpu_layers=gpu_layers,
            threads=threads,
            flash_attn=flash_attn,
            cache_type_k=cache_type_k,
            cache_type_v=cache_type_v,
            split_mode=split_mode,
            tensor_split=tensor_split,
            tokenizer=tokenizer,
            temperature=temperature,
            seed=seed,
            style=style,
            cache_size=cache_size,
            **_remote_flags(backend, base_url, api_model, api_key_env, concurrency, escalate_to),
        )
        from . import prompts
        from . import summarize as summ
        from .engines.base import GenerationParams

        spec = summ.style_spec(settings.style)
        if prompt_file is not None:
            spec = summ.PromptSpec(spec.system, prompts.load_user_template(prompt_file, frozenset({"document"})))
        docs = _load_inputs(env, paths, repo, include, exclude, password)
        session = _open_model(env, settings, verbose, no_cache=no_cache)
        tokenize_started = time.perf_counter()

        def plan_on(session: _ModelSession) -> Any:
            tok = session.tokenizer(verbose, dry_run)
            return summ.plan(
                docs, tok, session.facts, spec, session.window, settings.max_tokens, strategy, settings.parallel
            )

        if each:
            _summarize_each(
                env, docs, session, settings, spec, strategy, dry_run, json_out, allow_secrets, yes, verbose
            )
            return
        the_plan = plan_on(session)
        answered_by: dict[str, Any] = {"backend": settings.backend, "escalated": False, "reason": None}
        escalation = _escalation(env, settings, verbose)
        if escalation is not None:
            from .remote import classify_input

            reason = classify_input(the_plan.document_tokens, the_plan.budget.document)
            if reason is not None:
                env.note(f"escalating to {settings.escalate_to}: {reason}")
                session, the_plan = escalation, plan_on(escalation)
                answered_by = {"backend": settings.escalate_to, "escalated": True, "reason": reason}
            else:
                answered_by["reason"] = "input fits one window"
        tokenize_s = time.perf_counter() - tokenize_started
        if dry_run:
            _print_dry_run(env, the_plan, docs, json_out, session, answered_by)
            return
        if the_plan.strategy != "whole":
            env.note(
                f"input is {the_plan.document_tokens} tokens, over the {the_plan.budget.document}-token budget "
                f"of one {session.window}-token window: map-reduce over {len(the_plan.chunks)} chunks"
            )
        _guard(
            env,
            session,
            docs,
            *the_plan.sent_estimate(),
            allow_secrets=allow_secrets,
            yes=yes,
        )

        streaming = not json_out and (stream or env.stdout_isatty)
        on_text = _stdout_writer(env) if streaming else None
        params = GenerationParams(settings.max_tokens, settings.temperature, settings.seed)
        with _progress(env, len(the_plan.prompt.ids) if the_plan.prompt else 0) as (on_prompt, on_stage):
            result = summ.run(
                the_plan,
                docs,
                session.backend,
                params,
                on_text=on_text,
                on_prompt_progress=on_prompt,
                on_stage=on_stage,
            )
        for notice in session.notices():
            env.note(notice)
        result.timings = {
            "load_s": round(session.load_s, 4),
            "tokenize_s": round(tokenize_s, 4),
            **result.timings,
            "total_s": round(time.perf_counter() - _STARTED, 4),
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
            env.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
        elif streaming:
            env.stdout.write("\n")
        else:
            env.stdout.write(result.summary + "\n")
        env.stdout.flush()


def _summarize_each(
    env: Env,
    docs: list[Any],
    session: _ModelSession,
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
    from . import summarize as summ
    from .engines.base import GenerationParams
    from .errors import Dsv2Error

    escalation = _escalation(env, settings, verbose)
    jobs: list[summ.Job] = []
    routes: list[tuple[_ModelSession, dict[str, Any]]] = []
    for doc in docs:
        chosen = session
        answered_by: dict[str, Any] = {"backend": settings.backend, "escalated": False, "reason": None}
        tok = chosen.tokenizer(verbose, dry_run)
        the_plan = summ.plan(
            [doc], tok, chosen.facts, spec, chosen.window, settings.max_tokens, strategy, settings.parallel
        )
        if escalation is not None:
            from .remote import classify_input

            reason = classify_input(the_plan.document_tokens, the_plan.budget.document)
            if reason is not None:
                chosen = escalation
                tok = chosen.tokenizer(verbose, dry_run)
                the_plan = summ.plan(
                    [doc], tok, chosen.facts, spec, chosen.window, settings.max_tokens, strategy, settings.parallel
                )
                answered_by = {"backend": settings.escalate_to, "escalated": True, "reason": reason}
            else:
                answered_by["reason"] = "input fits one window"
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
        _guard(env, chosen, [d[0] for _, d in mine], tokens, calls, allow_secrets=allow_secrets, yes=yes)
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
            env.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            env.stdout.write(("\n" if i else "") + f"## {doc.source}\n\n{outcome.summary}\n")
        env.stdout.flush()

    with _progress(env, 0) as (_, on_stage):
        summ.run_many(jobs, params, settings.parallel, on_result, on_stage)
    if failed:
        env.note(f"{len(jobs) - len(failed)} summarized, {len(failed)} failed")
        raise typer.Exit(int(failed[0].exit_code))


def _print_dry_run(
    env: Env, the_plan: Any, docs: Any, json_out: bool, session: _ModelSession, answered_by: dict[str, Any]
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


@dataclass
class _ModelSession:
    backend: Any  # LlamaCppBackend or OpenAIBackend
    facts: Any  # summarize.ModelFacts
    window: int  # what the planners may fill (a remote window less the counting margin)
    path: Path | None  # the GGUF (None: a remote backend)
    memory: Any = None  # memory.ContextChoice: the estimate behind the window (None: --tokenizer, remote)
    remote: Any = None  # remote.RemoteTarget for a remote backend
    counter: Any = None  # the vocabulary alone: a remote backend's counting tokenizer, or a local GGUF's

    def vocab_tokenizer(self, verbose: bool) -> Any:
        """The tokenizer alone (no weights): for --dry-run and planning. Loaded once."""
        from .tokens import Tokenizer

        if self.counter is None:
            assert self.path is not None
            self.counter = Tokenizer.load(self.path, verbose=verbose)
        return self.counter

    def tokenizer(self, verbose: bool, dry_run: bool = False) -> Any:
        """The tokenizer to build prompts with: a local run loads the weights (and uses their vocabulary)."""
        if dry_run or self.remote is not None:
            return self.vocab_tokenizer(verbose)
        return self.backend.tokenizer

    @property
    def model_path(self) -> str | None:
        return str(self.path) if self.path is not None else None

    def describe(self) -> dict[str, Any]:
        """The "backend" field of --json: where requests go."""
        if self.remote is not None:
            return dict(self.remote.describe())
        return {"backend": "local", "model_path": self.model_path}

    def cost(self, prompt_tokens: int, output_tokens: int) -> float | None:
        return self.remote.cost(prompt_tokens, output_tokens) if self.remote is not None else None

    def notices(self) -> list[str]:
        found = list(getattr(self.backend, "notices", []))
        if hasattr(self.backend, "notices"):
            self.backend.notices.clear()
        return found

    @property
    def load_s(self) -> float:
        return float(getattr(self.backend, "load_s", 0.0))


def _open_model(env: Env, settings: Any, verbose: bool, announce: bool = True, no_cache: bool = False) -> _ModelSession:
    """Resolve the model, read its header, prepare (not yet load) the engine."""
    from .engines.llamacpp import LlamaCppBackend, LlamaCppOptions
    from .errors import ModelError
    from .ggufmeta import read_gguf
    from .models import default_context, embedded_notice, resolve_model
    from .summarize import ModelFacts

    if settings.remote:
        return _remote_session(env, settings)
    if settings.tokenizer != "model":
        return _tokenizer_session(settings)
    from .memory import plan_context
    from .models import gpu_offload_supported

    resolved = resolve_model(settings)
    if resolved.embedded and announce:
        env.note(embedded_notice(settings))
    info = read_gguf(resolved.path)
    # The rated/trained context (or --ctx), checked against free memory before anything loads:
    # a window that cannot fit is shrunk (and said so) or, when asked for with --ctx, refused on load.
    choice = plan_context(info, settings, default_context(info), gpu_offload_supported())
    if choice.notice and announce:
        env.note(choice.notice)
    window = choice.n_ctx
    name = info.name or resolved.path.stem
    options = LlamaCppOptions(
        model_path=resolved.path,
        n_ctx=window,
        gpu_layers=settings.gpu_layers,
        threads=settings.threads,
        flash_attn=settings.flash_attn,
        type_k=settings.cache_type_k,
        type_v=settings.cache_type_v,
        split_mode=settings.split_mode,
        tensor_split=settings.tensor_split,
        refuse=ModelError(choice.problem) if choice.problem else None,
        verbose=verbose,
        prefix_cache=None if no_cache else _prefix_cache(settings),
    )
    return _ModelSession(
        LlamaCppBackend(options, name),
        ModelFacts(name, info.architecture, info.chat_template),
        window,
        resolved.path,
        choice,
    )


def _remote_session(env: Env, settings: Any) -> _ModelSession:
    """An OpenAI-compatible endpoint: counted with the DeepSeek vocabulary or an estimate (remote.py)."""
    from . import remote
    from .engines.openai import OpenAIBackend, RemoteConfig
    from .summarize import ModelFacts

    target, key = remote.target(settings, env.environ)
    if key is None and target.leaves_machine:
        names = " or ".join(n for n in (settings.api_key_env, "DSV2_API_KEY") if n)
        env.note(f"no API key for {target.base_url} (none in {names}); the server may refuse the request")
    counter = remote.counting_tokenizer(target.counting)
    name, architecture, template = remote.chat_facts(target.counting, target.api_model)
    config = RemoteConfig(
        base_url=target.base_url,
        api_model=target.api_model,
        api_key=key,
        window=target.window,
        timeout_s=settings.timeout,
        max_retries=settings.retries,
        json_mode=settings.json_mode,
        name=target.profile,
    )
    backend = OpenAIBackend(config, count=counter.count, on_retry=env.note)
    return _ModelSession(
        backend, ModelFacts(name, architecture, template), target.budget_window, None, remote=target, counter=counter
    )


def _guard(
    env: Env,
    session: _ModelSession,
    docs: Any,
    prompt_tokens: int,
    calls: int,
    *,
    allow_secrets: bool,
    yes: bool,
    extra: dict[str, str] | None = None,
) -> None:
    """Before text leaves the machine: refuse secrets, say what is sent, and ask (unless --yes)."""
    from . import remote
    from .errors import RefusedError

    target = session.remote
    if target is None:
        return
    if not allow_secrets:
        remote.refuse_secrets(remote.find_secret_hits(docs, extra), target)
    env.note(remote.outgoing_line(target, docs, prompt_tokens, calls))
    if not target.leaves_machine or yes:
        return
    reply = env.confirm(f"send this to {target.base_url}? [y/N] ")
    if reply is None:
        raise RefusedError(
            f"not sending to {target.base_url} without confirmation, and there is no terminal to ask on: "
            "pass --yes to send from a script"
        )
    if not reply:
        raise RefusedError("not sent: you answered no")


def _confirm_batch(env: Env, settings: Any, paths: list[str], yes: bool) -> None:
    """One question before a batch goes to a remote backend off this machine; each input's own
    line (tokens, secrets refused) follows as it is sent."""
    from . import remote
    from .errors import RefusedError

    if not settings.remote or yes:
        return
    target, _ = remote.target(settings, env.environ)
    if not target.leaves_machine:
        return
    listed = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    reply = env.confirm(f"send {len(paths)} input(s) [{listed}] to {target.base_url}? [y/N] ")
    if reply is None:
        raise RefusedError(
            f"not sending to {target.base_url} without confirmation, and there is no terminal to ask on: "
            "pass --yes to send from a script"
        )
    if not reply:
        raise RefusedError("not sent: you answered no")


def _tokenizer_session(settings: Any) -> _ModelSession:
    """``--tokenizer deepseek-v2``: plan for DeepSeek-V2 (its exact chat format and 128k window) with the
    shipped vocabulary; there are no weights, so a real run is refused."""
    from .engines.llamacpp import LlamaCppBackend, LlamaCppOptions
    from .errors import UsageError
    from .models import DEEPSEEK_V2_RATED
    from .summarize import ModelFacts
    from .tokens import named_tokenizer_path

    path = named_tokenizer_path(settings.tokenizer)
    window = settings.ctx or DEEPSEEK_V2_RATED
    refuse = UsageError(
        f"--tokenizer {settings.tokenizer} counts tokens without weights: use it with --dry-run, "
        "dsv2 plan or dsv2 pack --json; a real run uses the model's own tokenizer"
    )
    options = LlamaCppOptions(model_path=path, n_ctx=window, refuse=refuse)
    return _ModelSession(
        LlamaCppBackend(options, "DeepSeek-V2"), ModelFacts("DeepSeek-V2", "deepseek2", None), window, path
    )


def _choice_view(memory: dict[str, Any]) -> Any:
    """A ContextChoice-like view of ``model_info``'s "memory" dict, for :func:`_memory_line`."""
    from types import SimpleNamespace

    from .memory import MemoryEstimate, Resources

    est = MemoryEstimate(
        memory["n_ctx"],
        memory["weights_bytes"],
        memory["kv_cache_bytes"],
        memory["kv_bytes_per_token"],
        memory["compute_bytes"],
        memory["kv_format"],
        memory["gpu_layers"],
        memory["ram_bytes"],
        memory["vram_bytes"],
    )
    return SimpleNamespace(
        estimate=est, resources=Resources(memory["ram_available_bytes"], memory["vram_free_bytes"]), fits=memory["fits"]
    )


def _memory_line(choice: Any) -> str:
    from .memory import gib

    est = choice.estimate
    line = (
        f"{gib(est.total_bytes)} at {est.n_ctx:,} tokens: weights {gib(est.weights_bytes)}, KV cache "
        f"{gib(est.kv_bytes)} ({est.kv_format}, {est.kv_bytes_per_token:,} B/token), "
        f"compute {gib(est.compute_bytes)}"
    )
    free = choice.resources.ram_available
    if free is not None:
        line += f"; RAM {gib(est.ram_bytes)} of {gib(free)} available"
    if est.vram_bytes:
        vram = choice.resources.vram_free
        line += f"; GPU {gib(est.vram_bytes)} of {gib(vram) + ' free' if vram is not None else 'unknown free'}"
    return line + ("" if choice.fits is not False else " -> does not fit")


def _stdout_writer(env: Env) -> Any:
    def write(text: str) -> None:
        env.stdout.write(text)
        env.stdout.flush()

    return write


@contextmanager
def _progress(env: Env, prompt_total: int) -> Iterator[tuple[Any, Any]]:
    """Progress on stderr (terminals only): prompt evaluation with tokens/s, and one bar per map-reduce stage."""
    if not env.animate:
        yield None, None
        return
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[unit]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=env.console(),
        transient=True,
    )
    started = time.perf_counter()
    stages: dict[str, TaskID] = {}
    with progress:
        prompt_task = progress.add_task(
            "evaluating prompt", total=prompt_total or 1, unit="tokens", rate="", visible=bool(prompt_total)
        )

        def on_prompt(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            rate = f"{done / elapsed:,.0f} tok/s" if elapsed > 0 else ""
            progress.update(prompt_task, completed=done, total=total, rate=rate)
            if done >= total:
                progress.update(prompt_task, visible=False)

        def on_stage(stage: str, done: int, total: int) -> None:
            if stage not in stages:
                stages[stage] = progress.add_task(stage, total=total, unit="chunks", rate="")
            progress.update(stages[stage], completed=done, total=total)

        yield on_prompt, on_stage


EmbedModelOpt = Annotated[
    str | None,
    typer.Option(
        "--embed-model",
        help="Embedding GGUF for retrieval (env DSV2_EMBED_MODEL) [default: MiniLM].",
        show_default=False,
    ),
]


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

    `dsv2 ask "question" report.pdf`, `dsv2 ask --repo ./src "question"`, or
    `dsv2 ask -q "first" -q "second" report.pdf` (with -q, every argument is an input).
    """
    env = Env()
    with handle_errors(env, debug):
        settings = _settings(
            env,
            model=model,
            ctx=ctx,
            max_tokens=max_tokens,
            gpu_layers=gpu_layers,
            threads=threads,
            flash_attn=flash_attn,
            cache_type_k=cache_type_k,
            cache_type_v=cache_type_v,
            split_mode=split_mode,
            tensor_split=tensor_split,
            tokenizer=tokenizer,
            temperature=temperature,
            seed=seed,
            embed_model=embed_model,
            cache_size=cache_size,
            **_remote_flags(backend, base_url, api_model, api_key_env, None, escalate_to),
        )
        from . import ask as asking
        from .engines.base import GenerationParams, Usage
        from .errors import UsageError

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
            asked = [question]
        else:
            raise UsageError("no question: give one as the first argument, or -q / --questions-file")

        docs = _load_inputs(env, paths, repo, include, exclude, password)
        first = _open_model(env, settings, verbose, no_cache=no_cache)
        escalation = _escalation(env, settings, verbose)
        corpus = list(paths or []) + ([repo] if repo else [])
        params = GenerationParams(settings.max_tokens, settings.temperature, settings.seed)

        def plan_on(session: _ModelSession, asked_question: str) -> Any:
            with _progress(env, 0) as (_, on_stage):
                on_index = (lambda done, total: on_stage("indexing", done, total)) if on_stage else None
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
                    on_index_progress=on_index,
                )

        confirmed: set[int] = set()
        for number, asked_question in enumerate(asked, 1):
            started = time.perf_counter()
            session = first
            the_plan = plan_on(session, asked_question)
            answered_by: dict[str, Any] = {"backend": settings.backend, "escalated": False, "reason": None}
            if escalation is not None:
                from .remote import classify_input, classify_question

                reason = classify_question(asked_question) or classify_input(
                    the_plan.context_tokens, the_plan.budget.document
                )
                if reason is not None:
                    env.note(f"escalating to {settings.escalate_to}: {reason}")
                    session, the_plan = escalation, plan_on(escalation, asked_question)
                    answered_by = {"backend": settings.escalate_to, "escalated": True, "reason": reason}
                else:
                    answered_by["reason"] = "simple question that fits one window"
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
            _guard(
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
            if len(asked) > 1 and not json_out:
                env.stdout.write(("\n" if number > 1 else "") + f"## {asked_question}\n\n")
            usage = Usage()
            pieces: list[str] = []
            with _progress(env, len(the_plan.prompt.ids)) as (on_prompt, _):
                for piece in session.backend.generate(the_plan.prompt, params, usage, on_prompt):
                    pieces.append(piece)
                    if streaming:
                        env.stdout.write(piece)
                        env.stdout.flush()
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
                        "total_s": round(time.perf_counter() - _STARTED, 4),
                    },
                }
                env.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
            else:
                env.stdout.write("\n" if streaming else answer + "\n")
            env.stdout.flush()


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


cache_app = typer.Typer(help="Inspect or clear the prompt-prefix cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _prefix_cache(settings: Any) -> Any:
    from .engines.prefix_cache import PrefixCache

    return PrefixCache(settings.home / "cache" / "prefix", settings.cache_size_bytes)


@cache_app.command("status")
def cache_status(json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Entries and size of the prompt-prefix cache."""
    env = Env()
    with handle_errors(env, debug):
        status = _prefix_cache(_settings(env)).status().to_dict()
        if json_out:
            env.stdout.write(json.dumps(status) + "\n")
        else:
            env.stdout.write(
                f"prefix cache: {status['directory']}\nentries:      {status['entries']}\n"
                f"size:         {status['size_bytes'] / 1e6:,.1f} MB of {status['max_bytes'] / 1e6:,.0f} MB\n"
            )


@cache_app.command("clear")
def cache_clear(debug: DebugOpt = False) -> None:
    """Delete every prompt-prefix cache entry."""
    env = Env()
    with handle_errors(env, debug):
        removed = _prefix_cache(_settings(env)).clear()
        env.note(f"prefix cache cleared: {removed} entries removed")


index_app = typer.Typer(help="Inspect or manage the retrieval index of a corpus.", no_args_is_help=True)
app.add_typer(index_app, name="index")


def _open_index(env: Env, paths: list[str] | None, repo: str | None) -> tuple[Any, Any, list[str]]:
    from .index import open_index

    settings = _settings(env)
    corpus = list(paths or []) + ([repo] if repo else [])
    if not corpus:
        from .errors import UsageError

        raise UsageError("name the corpus: the same paths or --repo DIR given to `dsv2 ask`")
    return open_index(settings.home, corpus), settings, corpus


@index_app.command("status")
def index_status(
    paths: PathsArg = None, repo: RepoOpt = None, json_out: JsonOpt = False, debug: DebugOpt = False
) -> None:
    """Size, chunks, files and last update of a corpus's index."""
    env = Env()
    with handle_errors(env, debug):
        index, _, _ = _open_index(env, paths, repo)
        status = index.status().to_dict()
        if json_out:
            env.stdout.write(json.dumps(status) + "\n")
            return
        updated = status["updated_at"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)) if updated else "never"
        env.stdout.write(
            f"index:    {status['directory']} ({status['state']})\n"
            f"files:    {status['files']}\nchunks:   {status['chunks']}\n"
            f"size:     {status['size_bytes'] / 1e6:,.1f} MB\nupdated:  {when}\n"
            f"embedder: {status['embedder'] or 'none (BM25 only)'}\n"
        )


@index_app.command("rebuild")
def index_rebuild(
    paths: PathsArg = None,
    repo: RepoOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    password: PasswordOpt = None,
    embed_model: EmbedModelOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Drop and rebuild a corpus's index from scratch."""
    env = Env()
    with handle_errors(env, debug):
        from .index import resolve_embedder

        index, settings, _ = _open_index(env, paths, repo)
        docs = _load_inputs(env, paths, repo, include, exclude, password)
        choice = resolve_embedder(settings.home, embed_model or settings.embed_model, threads=settings.threads)
        if choice.notice:
            env.note(choice.notice)
        with _progress(env, 0) as (_, on_stage):
            on_index = (lambda done, total: on_stage("indexing", done, total)) if on_stage else None
            index.rebuild(docs, choice.embedder, progress=on_index)
        status = index.status()
        env.note(f"index rebuilt: {status.files} files, {status.chunks} chunks in {status.directory}")


@index_app.command("drop")
def index_drop(paths: PathsArg = None, repo: RepoOpt = None, debug: DebugOpt = False) -> None:
    """Delete a corpus's index."""
    env = Env()
    with handle_errors(env, debug):
        index, _, _ = _open_index(env, paths, repo)
        env.note(f"index {'dropped' if index.drop() else 'not found'}: {index.directory}")


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
        from .packing import count_context, render_context

        docs = _load_inputs(env, paths, repo, include, exclude, password)
        if not json_out:
            env.stdout.write(render_context(docs) + "\n")
            return
        settings = _settings(env, model=model, tokenizer=tokenizer)
        counter, resolved = _count_cache(env, settings)
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


def _count_cache(env: Env, settings: Any) -> tuple[Any, Any]:
    """The resolved model's tokenizer (vocabulary only) behind the persistent token-count cache.

    A remote backend counts with its counting tokenizer (the DeepSeek vocabulary, or the estimate).
    """
    from .models import ResolvedModel, resolve_model
    from .tokens import CountCache, EstimateTokenizer, Tokenizer, named_tokenizer_path, tokenizer_key

    path = settings.home / "cache" / "token-counts.sqlite"
    if settings.remote:
        from .remote import target

        counting = target(settings, env.environ)[0].counting
        if counting == "estimate":
            return CountCache(EstimateTokenizer, path, "tiktoken:" + EstimateTokenizer.ENCODING), None
        resolved = ResolvedModel(named_tokenizer_path(counting), f"remote counting: {counting}")
    elif settings.tokenizer != "model":
        resolved = ResolvedModel(named_tokenizer_path(settings.tokenizer), f"--tokenizer {settings.tokenizer}")
    else:
        resolved = resolve_model(settings)
    cache = CountCache(lambda: Tokenizer.load(resolved.path), path, tokenizer_key(resolved.path))
    return cache, resolved


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
        from . import planning
        from . import summarize as summ
        from .engines.llamacpp import default_threads
        from .packing import Budget, count_context
        from .strategies import choose

        settings = _settings(
            env,
            model=model,
            ctx=ctx,
            max_tokens=max_tokens,
            gpu_layers=gpu_layers,
            threads=threads,
            flash_attn=flash_attn,
            cache_type_k=cache_type_k,
            cache_type_v=cache_type_v,
            split_mode=split_mode,
            tensor_split=tensor_split,
            tokenizer=tokenizer,
            **_remote_flags(backend, base_url, api_model, None, None, None),
        )
        docs = _load_inputs(env, paths, repo, include, exclude, password)
        session = _open_model(env, settings, verbose=False, announce=False)
        counter, _ = _count_cache(env, settings)
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
            out.write(f"memory:    {_memory_line(session.memory)}\n")
        out.write("largest:\n")
        for s in planning.largest(sizes, top):
            out.write(f"  {s.tokens:>9,}  {s.location.cite()}\n")


@app.command()
def models(
    model: ModelOpt = None,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show the resolved model and what it is, without loading its weights."""
    env = Env()
    with handle_errors(env, debug):
        from .models import model_info, resolve_model

        settings = _settings(env, model=model)
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
            "default_context": "dsv2 window",
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
            if key == "kv_format":
                value = f"{value} format, {info['kv_bytes_per_token']:,} bytes/token at f16"
            elif key == "memory":
                value = _memory_line(_choice_view(value))  # type: ignore[arg-type]  # dict from model_info
            elif key == "file_size_bytes":
                value = f"{int(value) / 1e6:,.1f} MB ({value} bytes)"  # type: ignore[call-overload]  # int from model_info
            elif isinstance(value, bool):
                value = "yes" if value else "no"
                if key == "gpu_offload":
                    value += " (this llama.cpp build)" if value == "yes" else " (CPU-only llama.cpp build)"
            env.stdout.write(f"{label + ':':<17}{value}\n")


# --- dsv2 extract ----------------------------------------------------------------------------------

ExtractPathsArg = Annotated[
    list[str],
    typer.Argument(help="Documents to read (PDF, text, markdown, HTML); - for standard input.", show_default=False),
]
SchemaOpt = Annotated[
    Path | None,
    typer.Option(
        "--schema",
        help="JSON Schema whose top-level properties are the fields to extract [default: built-in contract schema].",
        show_default=False,
    ),
]
FieldsOpt = Annotated[
    str | None, typer.Option("--fields", help="Comma-separated subset of the schema's fields.", show_default=False)
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Write results to this file instead of stdout. A .jsonl or .csv file gets one record per input as each "
        "completes; a rerun skips inputs already in it.",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="json | jsonl | csv [default: from --out's suffix, else json for one input, jsonl for more].",
        show_default=False,
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Extract every input again and start --out afresh.")]


@app.command()
def extract(
    paths: ExtractPathsArg,
    schema: SchemaOpt = None,
    fields: FieldsOpt = None,
    out: OutOpt = None,
    fmt: FormatOpt = None,
    force: ForceOpt = False,
    password: PasswordOpt = None,
    model: ModelOpt = None,
    ctx: CtxOpt = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens",
            help="Tokens reserved for each answer [default: 96 a field + 64, at most half the window].",
            show_default=False,
        ),
    ] = None,
    gpu_layers: GpuLayersOpt = None,
    threads: ThreadsOpt = None,
    flash_attn: FlashOpt = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", help="Sampling temperature [default: 0, greedy].", show_default=False),
    ] = None,
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
    """Extract fields as schema-valid JSON; every value carries a verbatim quote checked against the source.

    Results go to stdout (or --out); progress, unverified quotes and failures go to stderr. A file
    that cannot be read or extracted is reported and skipped. Exit code: 0 when every input is done
    (or already in --out); otherwise that of the first failed input (3 unreadable, 4 unusable model
    answer, 5 too big for the window), after the others ran. 2: bad flags or schema, before any model work.
    """
    env = Env()
    with handle_errors(env, debug):
        settings = _settings(
            env,
            model=model,
            ctx=ctx,
            max_tokens=max_tokens,
            gpu_layers=gpu_layers,
            threads=threads,
            flash_attn=flash_attn,
            temperature=temperature,
            seed=seed,
            **_remote_flags(backend, base_url, api_model, api_key_env, concurrency, escalate_to),
        )
        from . import extract as ex
        from . import sources
        from .engines.base import GenerationParams
        from .errors import UsageError
        from .settings import with_backend

        # Everything that can be wrong with the request fails here, before any model work.
        field_set = ex.load_user_schema(schema) if schema is not None else ex.contract_fields()
        if fields is not None:
            field_set = field_set.subset([n.strip() for n in fields.split(",") if n.strip()])
        out_format = ex.pick_format(fmt, out, len(paths))
        if paths.count("-") > 1:
            raise UsageError("- (standard input) can be given only once")
        sink = ex.open_sink(out_format, env.stdout, out, force, field_set, len(paths))

        def as_model(session: _ModelSession, name: str) -> Any:
            def guard(doc: Any, tokens: int, requests: int) -> None:
                _guard(env, session, [doc], tokens, requests, allow_secrets=allow_secrets, yes=True)

            return ex.Model(
                session.backend,
                session.tokenizer(verbose),  # a local model loads its weights here
                session.facts,
                session.window,
                name=name,
                cost=session.cost if session.remote is not None else None,
                guard=guard if session.remote is not None else None,
            )

        def open_model() -> Any:
            return as_model(_open_model(env, settings, verbose), settings.backend)

        def open_escalation() -> Any:
            session = _escalation(env, settings, verbose)
            assert session is not None
            return as_model(session, settings.escalate_to)

        for which in [settings] + ([with_backend(settings, settings.escalate_to, env.environ)] if escalate_to else []):
            _confirm_batch(env, which, paths, yes)

        params = GenerationParams(
            settings.max_tokens if settings.origin("max_tokens") != "default" else 0,
            settings.temperature if settings.origin("temperature") != "default" else 0.0,
            settings.seed,
        )
        extractor = ex.Extractor(
            field_set, params, open_model, env.note, open_escalation if settings.escalate_to else None
        )
        report = ex.run_batch(
            paths,
            lambda p: sources.load(p, env.stdin, password=password),
            extractor,
            sink,
            field_set.digest,
            env.note,
            concurrency=settings.parallel,
        )
        if len(paths) > 1 or report.skipped:
            env.note(
                f"{report.done} extracted, {report.skipped} skipped (already done), {len(report.failed)} failed"
                + (f": {', '.join(p for p, _ in report.failed)}" if report.failed else "")
            )
        if report.exit_code:
            raise typer.Exit(report.exit_code)


def main() -> None:
    app(prog_name="dsv2")
