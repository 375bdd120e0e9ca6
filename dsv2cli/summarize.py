"""``dsv2 summarize``: documents in, one summary out (whole pass, or map-reduce when too big)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import prompts
from .chat import ChatPrompt, Message, ModelFacts, format_chat
from .engines.base import Backend, GenerationParams, PromptProgress, Usage
from .errors import PER_INPUT_ERRORS, Dsv2Error, UsageError
from .packing import (
    Budget,
    ContextCount,
    PackedChunk,
    count_context,
    ensure_fits,
    joined_by,
    render_context,
)
from .parallel import closer, ordered_map
from .sources.base import Document
from .strategies import MAP_REDUCE, RETRIEVE, WHOLE, whole_prompt
from .strategies.map_reduce import MapReduce, StageProgress
from .tokens import Tokenizer


@dataclass(frozen=True)
class PromptSpec:
    """What the model is asked: a system prompt and a user template with ``{{ document }}``."""

    system: str
    template: str


@dataclass
class Plan:
    strategy: str
    document_tokens: int
    budget: Budget
    source: str
    prompt: ChatPrompt | None = None  # whole: the exact prompt
    mapper: MapReduce | None = None  # map-reduce: the job
    chunks: list[PackedChunk] = field(default_factory=list)

    def sent_estimate(self) -> tuple[int, int]:
        """(prompt tokens, requests) this plan sends, before reduce levels: for the privacy line and cost."""
        if self.prompt is not None:
            return len(self.prompt.ids), 1
        overhead = self.budget.overhead
        return sum(c.tokens + overhead for c in self.chunks), len(self.chunks) + 1

    def sources(self, docs: Sequence[Document]) -> list[dict[str, object]]:
        """Ordered list of what is sent, for ``--dry-run --json``."""
        if self.strategy == WHOLE:
            return [
                {**seg.location.to_dict(), "score": None, "chunk": None}
                for doc in docs
                for seg in doc.segments
                if seg.text.strip()
            ]
        return [
            {**piece.segment.location.to_dict(), "score": None, "chunk": i, "tokens": piece.tokens}
            for i, chunk in enumerate(self.chunks, 1)
            for piece in chunk.pieces
        ]


@dataclass
class SummaryResult:
    summary: str
    model: str
    strategy: str
    input_tokens: int  # prompt tokens sent, summed over every model call
    document_tokens: int
    output_tokens: int  # summed over every model call
    window: int
    budget: int  # document tokens allowed in one window
    finish_reason: str | None
    calls: int = 1
    chunks: list[dict[str, object]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage_estimated: bool = False  # a remote server did not report usage: our counts stand in
    cache_hit_tokens: int = 0  # of input_tokens, served from a remote provider's prompt cache
    attempts: int = 0  # HTTP requests sent to a remote backend, retries included (0 locally)


def style_spec(style: str) -> PromptSpec:
    return PromptSpec(prompts.load("system"), prompts.load(f"summarize_{style}"))


def build_prompt(tokenizer: Tokenizer, facts: ModelFacts, spec: PromptSpec, context: str) -> ChatPrompt:
    user, stable = prompts.user_message(spec.template, {"document": context})
    messages = [Message("system", spec.system.strip()), Message("user", user, stable)]
    return format_chat(tokenizer, messages, facts.chat_template, facts.architecture)


def plan(
    docs: Sequence[Document],
    tokenizer: Tokenizer,
    facts: ModelFacts,
    spec: PromptSpec,
    window: int,
    max_tokens: int,
    strategy: str | None = None,
    concurrency: int = 1,
    counted: ContextCount | None = None,
) -> Plan:
    """Decide how to run from token counts, and build the prompt only for what runs. No model
    weights needed.

    ``counted``: the context's counts per segment (``packing.count_context`` over a
    ``tokens.CountCache``: cached, so a document is tokenized once across runs); without it the
    context is counted here. The strategy is chosen from those counts; the whole prompt is then
    built (and counted exactly) only when it runs whole, and map-reduce sizes its chunks from the
    same per-segment counts.
    """
    if strategy == RETRIEVE:
        raise UsageError("--strategy retrieve is for `dsv2 ask`; summarize uses whole or map-reduce")
    overhead = len(build_prompt(tokenizer, facts, spec, "").ids)
    budget = Budget(window=window, output=max_tokens, overhead=overhead)
    counted = counted if counted is not None else count_context(docs, joined_by(tokenizer.count))
    source = ", ".join(d.source for d in docs)
    prompt = whole_prompt(
        "summarize",
        counted.tokens,
        budget,
        strategy,
        lambda: build_prompt(tokenizer, facts, spec, render_context(docs)),
        lambda p: len(p.ids) - overhead,
    )
    if prompt is not None:
        document_tokens = len(prompt.ids) - overhead
        ensure_fits(len(prompt.ids), window, max_tokens, document_tokens=document_tokens, source=source)
        return Plan(WHOLE, document_tokens, budget, source, prompt=prompt)
    mapper = MapReduce(
        tokenizer, facts.architecture, facts.chat_template, spec.system, spec.template, window, max_tokens, concurrency
    )
    chunks = mapper.chunks(docs, counted.segment_tokens())
    return Plan(MAP_REDUCE, counted.tokens, budget, source, mapper=mapper, chunks=chunks)


def run(
    the_plan: Plan,
    docs: Sequence[Document],
    backend: Backend,
    params: GenerationParams,
    on_text: Callable[[str], None] | None = None,
    on_prompt_progress: PromptProgress | None = None,
    on_stage: StageProgress | None = None,
) -> SummaryResult:
    started = time.perf_counter()
    if the_plan.mapper is not None:
        mr = the_plan.mapper.run(docs, backend, params, on_stage=on_stage, on_text=on_text, chunks=the_plan.chunks)
        usage, summary, calls = mr.usage, mr.summary, mr.calls
        chunks = [{"chunk": i, "source": c.label(), "tokens": c.tokens} for i, c in enumerate(mr.chunks, 1)]
    else:
        assert the_plan.prompt is not None
        usage = Usage()
        pieces: list[str] = []
        for piece in backend.generate(the_plan.prompt, params, usage, on_prompt_progress):
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)
        summary, calls, chunks = "".join(pieces).strip(), 1, []
    elapsed = time.perf_counter() - started
    return SummaryResult(
        summary=summary,
        model=backend.capabilities.name,
        strategy=the_plan.strategy,
        input_tokens=usage.prompt_tokens,
        document_tokens=the_plan.document_tokens,
        output_tokens=usage.output_tokens,
        window=the_plan.budget.window,
        budget=the_plan.budget.document,
        finish_reason=usage.finish_reason,
        calls=calls,
        chunks=chunks,
        usage_estimated=bool(usage.extra.get("usage_estimated")),
        cache_hit_tokens=int(usage.extra.get("cache_hit_tokens", 0)),
        attempts=int(usage.extra.get("attempts", 0)),
        timings={
            "prompt_eval_s": round(usage.prompt_eval_s, 4),
            "generation_s": round(usage.generation_s, 4),
            "model_call_s": round(elapsed, 4),
            "prompt_tokens_per_s": round(usage.prompt_tokens / usage.prompt_eval_s, 1) if usage.prompt_eval_s else 0.0,
            "output_tokens_per_s": round(usage.output_tokens / usage.generation_s, 1) if usage.generation_s else 0.0,
        },
    )


Job = tuple[Plan, Sequence[Document], Backend]


def run_many(
    jobs: Sequence[Job],
    params: GenerationParams,
    concurrency: int,
    on_result: Callable[[int, SummaryResult | Dsv2Error], None],
    on_stage: StageProgress | None = None,
) -> None:
    """One summary per job, ``concurrency`` jobs at once; ``on_result`` in input order, as soon as
    every earlier job is done. A job's per-input error (errors.PER_INPUT_ERRORS) is its result: the
    others go on; any other error stops them all."""

    def one(job: Job) -> SummaryResult | Dsv2Error:
        the_plan, docs, backend = job
        try:
            return run(the_plan, docs, backend, params)
        except PER_INPUT_ERRORS as exc:  # a server or model failure stops the batch instead
            return exc

    def each(i: int, outcome: SummaryResult | Dsv2Error) -> None:
        on_result(i, outcome)
        if on_stage:
            on_stage("documents", i + 1, len(jobs))

    ordered_map(one, jobs, concurrency, each, on_abort=closer(*{id(b): b for _, _, b in jobs}.values()))
