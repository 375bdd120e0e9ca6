"""Options shared by several commands: each declared once, attached in groups with :func:`uses`."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from ..settings import Settings

# Options shared by model-running commands.
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="GGUF model file, or a pulled model's name (env DSV2_MODEL).", show_default=False
    ),
]


CtxOpt = Annotated[
    int | None,
    typer.Option(
        "--ctx", help="Context window in tokens [default: the model's rated/trained context].", show_default=False
    ),
]


MaxTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        help="Tokens reserved for the output [default: 512; extract: 96 a field + 64, at most half the window].",
        show_default=False,
    ),
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
    int | None,
    typer.Option(
        "--threads",
        help="CPU threads for llama.cpp [default: one per physical core; dsv2 plan --measure compares counts].",
        show_default=False,
    ),
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
    typer.Option(
        "--temperature", help="Sampling temperature, 0 = greedy [default: 0.2; extract: 0].", show_default=False
    ),
]


SeedOpt = Annotated[int | None, typer.Option("--seed", help="Sampling seed [default: 0].", show_default=False)]


VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show llama.cpp's own log and timing details on stderr.")
]


DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]


StreamOpt = Annotated[
    bool,
    typer.Option("--stream", help="Stream tokens to stdout as they arrive (default when stdout is a terminal)."),
]


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
    bool,
    typer.Option(
        "--allow-secrets",
        help="Send to a remote backend even though secrets were found (values read from inputs stay "
        "redacted; a question is sent as typed).",
    ),
]


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Send to a remote backend without asking (scripts).")]


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


NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the prompt-prefix cache.")]


CacheSizeOpt = Annotated[
    str | None,
    typer.Option("--cache-size", help="Prefix-cache bound, e.g. 2G or 500M [default: 4G].", show_default=False),
]


NoLogOpt = Annotated[bool, typer.Option("--no-log", help="Do not record this run in the log (dsv2 logs).")]


SystemOpt = Annotated[
    str | None,
    typer.Option(
        "--system",
        "-s",
        help="System prompt: added to the built-in instructions (documents stay data); dsv2 prompt sends it alone.",
        show_default=False,
    ),
]


TemplateOpt = Annotated[
    str | None,
    typer.Option("--template", "-t", help="A named prompt template (dsv2 templates list).", show_default=False),
]


ContinueOpt = Annotated[
    bool, typer.Option("--continue", "-c", help="Continue the last conversation (its documents when none are given).")
]


CidOpt = Annotated[
    str | None, typer.Option("--cid", help="Continue the conversation with this id (dsv2 logs).", show_default=False)
]


EmbedModelOpt = Annotated[
    str | None,
    typer.Option(
        "--embed-model",
        help="Embedding GGUF for retrieval (env DSV2_EMBED_MODEL) [default: MiniLM].",
        show_default=False,
    ),
]


IndexUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--index-url",
        help="Keep the retrieval index's vectors in this Chroma server, e.g. http://host:8000 "
        "(env DSV2_INDEX_URL; token from DSV2_INDEX_TOKEN) [default: embedded, under DSV2_HOME].",
        show_default=False,
    ),
]


# --- Option groups: each shared option declared once, as a field of Flags ----------------------

# The groups a command attaches with :func:`uses`.
PASSWORD, REPO, ENGINE, SAMPLING, REMOTE = "password", "repo", "engine", "sampling", "remote"
SENDING, CACHE, RETRIEVAL, VERBOSE, DEBUG = "sending", "cache", "retrieval", "verbose", "debug"
LOG = "log"
INPUTS = (REPO, PASSWORD)


def _in(group: str, default: Any = None) -> Any:
    return field(default=default, metadata={"group": group})


@dataclass
class Flags:
    """The shared options of one command run, each with its typer declaration and its group;
    a command gets the groups it names in :func:`uses`, the rest keep their defaults."""

    repo: RepoOpt = _in(REPO)
    include: IncludeOpt = _in(REPO)
    exclude: ExcludeOpt = _in(REPO)
    password: PasswordOpt = _in(PASSWORD)
    model: ModelOpt = _in(ENGINE)
    ctx: CtxOpt = _in(ENGINE)
    max_tokens: MaxTokensOpt = _in(ENGINE)
    gpu_layers: GpuLayersOpt = _in(ENGINE)
    threads: ThreadsOpt = _in(ENGINE)
    flash_attn: FlashOpt = _in(ENGINE)
    cache_type_k: CacheTypeKOpt = _in(ENGINE)
    cache_type_v: CacheTypeVOpt = _in(ENGINE)
    split_mode: SplitModeOpt = _in(ENGINE)
    tensor_split: TensorSplitOpt = _in(ENGINE)
    tokenizer: TokenizerOpt = _in(ENGINE)
    temperature: TempOpt = _in(SAMPLING)
    seed: SeedOpt = _in(SAMPLING)
    backend: BackendOpt = _in(REMOTE)
    base_url: BaseUrlOpt = _in(REMOTE)
    api_model: ApiModelOpt = _in(REMOTE)
    api_key_env: ApiKeyEnvOpt = _in(REMOTE)
    concurrency: ConcurrencyOpt = _in(REMOTE)
    escalate_to: EscalateOpt = _in(REMOTE)
    allow_secrets: AllowSecretsOpt = _in(SENDING, False)
    yes: YesOpt = _in(SENDING, False)
    no_cache: NoCacheOpt = _in(CACHE, False)
    cache_size: CacheSizeOpt = _in(CACHE)
    embed_model: EmbedModelOpt = _in(RETRIEVAL)
    index_url: IndexUrlOpt = _in(RETRIEVAL)
    verbose: VerboseOpt = _in(VERBOSE, False)
    no_log: NoLogOpt = _in(LOG, False)
    debug: DebugOpt = _in(DEBUG, False)  # every command has it

    def settings(self, environ: Mapping[str, str], **own: Any) -> Settings:
        """The settings these flags (and a command's ``own`` setting flags, such as --style) give,
        over DSV2_* variables, the config file and defaults."""
        from ..settings import SETTING_NAMES, resolve

        given = {f.name: getattr(self, f.name) for f in fields(self) if f.name in SETTING_NAMES}
        return resolve({**given, **own}, environ)


F = TypeVar("F", bound=Callable[..., Any])


def uses(*groups: str | tuple[str, ...]) -> Callable[[F], F]:
    """Attach option groups (and --debug) to a command.

    The command declares its own arguments and options as usual, plus ``flags: Flags`` and
    ``env: Env``, which typer never sees: the wrapper's signature is the command's own parameters
    followed by the groups' options (in Flags' order), and it calls the command with those values
    collected in a :class:`Flags` and the run's :class:`~.common.Env` (also what the app's error
    handler reports through, with --debug deciding whether a traceback shows).
    """
    wanted = {DEBUG, *(g for group in groups for g in ((group,) if isinstance(group, str) else group))}
    declared = typing.get_type_hints(Flags, include_extras=True)
    added = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=declared[f.name])
        for f in fields(Flags)
        if f.metadata["group"] in wanted
    ]

    def attach(command: F) -> F:
        hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(command).parameters.values()
            if p.name not in ("flags", "env")
        ]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            from .common import Env, current_env

            flags = Flags(**{p.name: kwargs.pop(p.name) for p in added})
            env = current_env() or Env()
            env.debug = flags.debug
            return command(flags=flags, env=env, **kwargs)

        params = own + added
        run.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return run  # type: ignore[return-value]

    return attach
