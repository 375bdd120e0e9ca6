"""The backend interface: capabilities plus one streaming generate method."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..chat import ChatPrompt
from ..tokens import Tokenizer

# Called between prompt-evaluation slices with (tokens evaluated so far, total prompt tokens).
PromptProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Capabilities:
    name: str  # model identity shown to users
    context_window: int  # n_ctx in tokens
    streaming: bool
    gpu_offload: bool


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int
    temperature: float
    seed: int
    # Constrain the output to JSON matching this JSON Schema (a grammar, for local models).
    json_schema: Mapping[str, Any] | None = None


@dataclass
class Usage:
    """Filled in by ``generate`` as it runs; complete once the iterator is exhausted."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    prompt_eval_s: float = 0.0
    generation_s: float = 0.0
    finish_reason: str | None = None  # "stop" (end of turn) or "length" (hit max_tokens)
    extra: dict[str, float] = field(default_factory=dict)  # e.g. prefix_cache_hits, prefix_reused_tokens

    def add(self, other: Usage) -> None:
        """Sum ``other`` (one call) into this total; the finish reason is the last call's."""
        self.prompt_tokens += other.prompt_tokens
        self.output_tokens += other.output_tokens
        self.prompt_eval_s += other.prompt_eval_s
        self.generation_s += other.generation_s
        self.finish_reason = other.finish_reason
        for key, value in other.extra.items():
            self.extra[key] = self.extra.get(key, 0.0) + value


class Backend(Protocol):
    """A model that answers prompts: llama.cpp in this process, or an OpenAI-compatible server."""

    load_s: float  # seconds spent loading weights (0 until loaded; always 0 remotely)
    notices: list[str]  # lines for the user (cache notices, retries); the reader clears them

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer prompts for this backend are built with (a local model loads its weights)."""
        ...

    def close(self) -> None:
        """Free the model or the connection; the next call opens them again."""
        ...

    def generate(
        self,
        prompt: ChatPrompt,
        params: GenerationParams,
        usage: Usage,
        on_prompt_progress: PromptProgress | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is produced."""
        ...
