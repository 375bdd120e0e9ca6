"""Options shared by several commands (typer needs them spelled out on each command)."""

from __future__ import annotations

from typing import Annotated

import typer

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


EmbedModelOpt = Annotated[
    str | None,
    typer.Option(
        "--embed-model",
        help="Embedding GGUF for retrieval (env DSV2_EMBED_MODEL) [default: MiniLM].",
        show_default=False,
    ),
]
