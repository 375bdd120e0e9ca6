"""Hierarchical map-reduce summaries for inputs larger than the window.

Split along the document's own structure (pages, sections, files, paragraphs) into chunks that
fill the window (the chunker is ``packing.make_pieces`` / ``packing.plan_chunks``); summarize each
chunk keeping page/section references; merge the partial summaries in groups that fit, level
after level, until the final summary's prompt fits. Every segment lands in exactly one chunk, in
order: nothing dropped, nothing repeated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .. import prompts
from ..chat import ChatPrompt, Message, format_chat
from ..engines.base import Backend, GenerationParams, Usage
from ..errors import ContextOverflowError
from ..packing import PIECE_JOIN_TOKENS, PackedChunk, fit_halving, make_pieces, plan_chunks, render_block
from ..parallel import closer, ordered_map
from ..sources.base import Document
from ..tokens import Tokenizer

StageProgress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Partial:
    label: str
    text: str


@dataclass
class MapReduceResult:
    summary: str
    chunks: list[PackedChunk]
    levels: int
    calls: int
    usage: Usage = field(default_factory=Usage)  # summed over every call


@dataclass
class MapReduce:
    """The whole job; ``chunks()`` alone is what ``--dry-run`` shows."""

    tokenizer: Tokenizer
    architecture: str
    chat_template: str | None
    system: str
    final_template: str
    window: int
    max_tokens: int
    concurrency: int = 1  # model calls in flight at once (a remote backend serves them in parallel)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _prompt(self, template: str, values: dict[str, str]) -> ChatPrompt:
        messages = [Message("system", self.system.strip()), Message("user", prompts.fill(template, values).strip())]
        return format_chat(self.tokenizer, messages, self.chat_template, self.architecture)

    def _budget(self, template: str, values: dict[str, str]) -> int:
        overhead = len(self._prompt(template, {**values, "document": ""}).ids)
        return self.window - self.max_tokens - overhead

    def chunks(self, docs: Sequence[Document], known: Mapping[int, int] | None = None) -> list[PackedChunk]:
        """``known``: tokens per segment already counted (``packing.make_pieces``)."""
        budget = self._budget(prompts.load("map"), {"part": "9999", "parts": "9999"})
        if budget < 64:
            raise ContextOverflowError.no_room(
                window=self.window,
                output=self.max_tokens,
                prompt=self.window - self.max_tokens - budget,
                room=budget,
                what="per chunk",
                input_tokens=0,
            )
        return plan_chunks(make_pieces(docs, budget - PIECE_JOIN_TOKENS, self.tokenizer.count, known), budget)

    def run(
        self,
        docs: Sequence[Document],
        backend: Backend,
        params: GenerationParams,
        on_stage: StageProgress | None = None,
        on_text: Callable[[str], None] | None = None,
        chunks: list[PackedChunk] | None = None,
    ) -> MapReduceResult:
        """Summarize ``chunks`` (default: ``self.chunks(docs)``; pass the plan's to not split twice)."""
        chunks = self.chunks(docs) if chunks is None else chunks
        result = MapReduceResult("", chunks, levels=0, calls=0)
        map_template = prompts.load("map")
        # Fit first, with the widest part numbers; then number the parts and send them.
        fitted = [
            chunk
            for chunk, _ in fit_halving(
                chunks,
                lambda c: self._prompt(map_template, {"document": c.render(), "part": "9999", "parts": "9999"}),
                lambda prompt: len(prompt.ids) + self.max_tokens <= self.window,
            )
        ]
        map_prompts = [
            self._prompt(map_template, {"document": c.render(), "part": str(i), "parts": str(len(fitted))})
            for i, c in enumerate(fitted, 1)
        ]
        texts = self._call_all(map_prompts, backend, params, result, on_stage, "map")
        partials = [Partial(c.label(), text) for c, text in zip(fitted, texts, strict=True)]
        result.levels = 1
        reduce_template = prompts.load("reduce")
        while True:
            final = self._prompt(self.final_template, {"document": self._render_partials(partials)})
            if len(final.ids) + self.max_tokens <= self.window:
                if on_stage:
                    on_stage("final", 0, 1)
                result.summary = self._call(final, backend, params, result, on_text).strip()
                if on_stage:
                    on_stage("final", 1, 1)
                return result
            groups = self._group(partials, self._budget(reduce_template, {}))
            if len(groups) >= len(partials):
                longest = max(self.tokenizer.count(p.text) for p in partials)
                raise ContextOverflowError(
                    f"partial summaries do not shrink: two of them (up to {longest} tokens each) do not fit one "
                    f"{self.window}-token window with {self.max_tokens} reserved for output: lower --max-tokens "
                    "or raise --ctx",
                    input_tokens=sum(self.tokenizer.count(p.text) for p in partials),
                    window=self.window,
                    budget=self._budget(reduce_template, {}),
                )
            result.levels += 1
            reduce_prompts = [
                self._prompt(reduce_template, {"document": self._render_partials(group)}) for group in groups
            ]
            texts = self._call_all(reduce_prompts, backend, params, result, on_stage, f"reduce (level {result.levels})")
            partials = [Partial(_join_labels(group), text) for group, text in zip(groups, texts, strict=True)]

    def _call_all(
        self,
        prompts_: Sequence[ChatPrompt],
        backend: Backend,
        params: GenerationParams,
        result: MapReduceResult,
        on_stage: StageProgress | None,
        stage: str,
    ) -> list[str]:
        """Every prompt's answer, in order; ``concurrency`` calls in flight, progress as each completes."""
        done = 0
        if on_stage:
            on_stage(stage, 0, len(prompts_))

        def progress(_i: int, _text: str) -> None:
            nonlocal done
            done += 1
            if on_stage:
                on_stage(stage, done, len(prompts_))

        return ordered_map(
            lambda prompt: self._call(prompt, backend, params, result),
            prompts_,
            self.concurrency,
            progress,
            in_order=False,
            on_abort=closer(backend),
        )

    @staticmethod
    def _render_partials(partials: Sequence[Partial]) -> str:
        return render_block(
            "summaries of consecutive parts", "\n\n".join(f"[{p.label}]\n{p.text.strip()}" for p in partials)
        )

    def _group(self, partials: Sequence[Partial], budget: int) -> list[list[Partial]]:
        groups: list[list[Partial]] = []
        current: list[Partial] = []
        for partial in partials:
            trial = [*current, partial]
            if current and self.tokenizer.count(self._render_partials(trial)) > budget:
                groups.append(current)
                current = [partial]
            else:
                current = trial
        if current:
            groups.append(current)
        return groups

    def _call(
        self,
        prompt: ChatPrompt,
        backend: Backend,
        params: GenerationParams,
        result: MapReduceResult,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        if len(prompt.ids) + params.max_tokens > self.window:
            raise ContextOverflowError(
                f"internal: a {len(prompt.ids)}-token chunk prompt does not fit the {self.window}-token window",
                input_tokens=len(prompt.ids),
                window=self.window,
                budget=self.window - params.max_tokens,
            )
        usage = Usage()
        pieces = []
        for piece in backend.generate(prompt, params, usage):
            pieces.append(piece)
            if on_text:
                on_text(piece)
        with self._lock:
            result.calls += 1
            result.usage.add(usage)
        return "".join(pieces).strip()


def _join_labels(partials: Sequence[Partial]) -> str:
    if len(partials) == 1:
        return partials[0].label
    return f"{partials[0].label} .. {partials[-1].label}"
