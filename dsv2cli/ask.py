"""``dsv2 ask``: the whole corpus when it fits (documents first, question last), else retrieval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import citations, prompts
from .chat import ChatPrompt, Message, ModelFacts, format_chat
from .engines.base import Backend, GenerationParams, PromptProgress, Usage
from .errors import ContextOverflowError, UsageError
from .packing import (
    Budget,
    ContextCount,
    count_context,
    ensure_fits,
    joined_by,
    render_block,
    render_context,
)
from .sources.base import Document
from .strategies import MAP_REDUCE, RETRIEVE, WHOLE, whole_prompt
from .tokens import Tokenizer

# Tokens kept free for what per-source counts cannot see (document tags, joins); the final
# prompt is still checked exactly, and packing is retried smaller if it ever overflows.
RETRIEVAL_SLACK = 48


@dataclass
class AskPlan:
    strategy: str
    prompt: ChatPrompt
    budget: Budget
    context_tokens: int
    sources: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    retrieval: str | None = None  # "hybrid" or "bm25" when retrieving
    # The passages packed into the prompt, with their text: what the answer's citations are checked against.
    passages: list[citations.Passage] = field(default_factory=list)


def verify(answer: str, the_plan: AskPlan) -> citations.CitationCheck:
    """The answer's citations matched against the passages its prompt carried, quotes checked."""
    return citations.check(answer, the_plan.passages)


def build_prompt(
    tokenizer: Tokenizer,
    facts: ModelFacts,
    system: str,
    context: str,
    question: str,
    example: str,
    template: str | None = None,
) -> ChatPrompt:
    """``example``: how to cite, shown with real markers of this context (``citations.format_example``),
    never with a made-up one a model could copy into an answer about something else. ``template``:
    the user message's template (default: the shipped ``ask``)."""
    values = {"document": context, "question": question, "example": example}
    template = prompts.load("ask") if template is None else template
    user, stable = prompts.user_message(template, values)
    return format_chat(
        tokenizer,
        [Message("system", system.strip()), Message("user", user, stable)],
        facts.chat_template,
        facts.architecture,
    )


def render_selected(sources: Sequence[Any]) -> str:
    """Retrieved spans, grouped per file in input order, each under its citation marker."""
    blocks: list[str] = []
    groups: dict[str, list[Any]] = {}
    for source in sources:
        groups.setdefault(source.path, []).append(source)
    for path, spans in groups.items():
        blocks.append(render_block(path, "\n\n".join(f"[{s.cite()}]\n{s.text}" for s in spans)))
    return "\n\n".join(blocks)


def plan(
    question: str,
    docs: Sequence[Document],
    tokenizer: Tokenizer,
    facts: ModelFacts,
    window: int,
    max_tokens: int,
    *,
    corpus: Sequence[str | Path],
    home: Path,
    strategy: str | None = None,
    embed_model: str | None = None,
    threads: int | None = None,
    on_index_progress: Callable[[int, int], None] | None = None,
    system: str | None = None,
    template: str | None = None,
    counted: ContextCount | None = None,
    gpu_layers: int | None = None,
    vectors: Any = None,
) -> AskPlan:
    """``system``: the whole system message (default: the shipped one); ``template``: the user
    message's template, with {{ document }} and {{ question }} (default: the shipped ``ask``).

    ``counted``: the corpus's counts per segment (``packing.count_context`` over a
    ``tokens.CountCache``); without it the corpus is counted here. Whole or retrieve is chosen
    from those counts; the whole corpus's prompt is built only when it runs whole.
    ``gpu_layers``: the embedder's offload when retrieving (None: all layers where the build
    offloads, as for the generator). ``vectors``: where the index keeps its vectors (an index
    server's ``index.server.ChromaServer``; None: embedded)."""
    if not question.strip():
        raise UsageError("the question is empty")
    if strategy == MAP_REDUCE:
        raise UsageError("--strategy map-reduce is for `dsv2 summarize`; ask uses whole or retrieve")
    system = prompts.load("system") if system is None else system
    passages = [citations.Passage(s.location, s.text) for d in docs for s in d.segments if s.text.strip()]
    # Retrieval shows its own first passages; the whole corpus's first ones stand in for them
    # until then (a marker's few tokens are within RETRIEVAL_SLACK, and the prompt is counted again).
    example = citations.format_example(passages)
    overhead = len(build_prompt(tokenizer, facts, system, "", question, example, template).ids)
    budget = Budget(window=window, output=max_tokens, overhead=overhead)
    counted = counted if counted is not None else count_context(docs, joined_by(tokenizer.count))
    context_tokens = counted.tokens
    whole = whole_prompt(
        "ask",
        context_tokens,
        budget,
        strategy,
        lambda: build_prompt(tokenizer, facts, system, render_context(docs), question, example, template),
        lambda p: len(p.ids) - overhead,
    )
    if whole is not None:
        document_tokens = len(whole.ids) - overhead
        ensure_fits(
            len(whole.ids),
            window,
            max_tokens,
            document_tokens=document_tokens,
            source=", ".join(d.source for d in docs),
        )
        sources = [{**p.location.to_dict(), "cite": p.cite(), "score": None} for p in passages]
        return AskPlan(WHOLE, whole, budget, document_tokens, sources, passages=passages)

    from .index import retrieve

    assert strategy in (None, RETRIEVE)
    target = budget.document - RETRIEVAL_SLACK
    found = None
    for _ in range(4):
        if target < 32:
            raise ContextOverflowError.no_room(
                window=window,
                output=max_tokens,
                prompt=overhead,
                room=budget.document,
                what="for retrieved text",
                input_tokens=context_tokens,
            )
        if found is None:  # index, embed and rank once; a retry only packs a smaller budget
            found = retrieve(
                question,
                docs,
                corpus=corpus,
                home=home,
                budget=target,
                count_tokens=tokenizer.count,
                embed_model=embed_model,
                threads=threads,
                gpu_layers=gpu_layers,
                progress=on_index_progress,
                vectors=vectors,
            )
        else:
            found = found.repack(target)
        selected = [citations.Passage(s.location, s.text) for s in found.sources]
        example = citations.format_example(selected)
        prompt = build_prompt(tokenizer, facts, system, render_selected(found.sources), question, example, template)
        excess = len(prompt.ids) + max_tokens - window
        if excess <= 0:
            return AskPlan(
                RETRIEVE,
                prompt,
                budget,
                len(prompt.ids) - overhead,
                [s.to_dict() for s in found.sources],
                found.notices,
                found.method,
                selected,
            )
        target -= excess + RETRIEVAL_SLACK
    raise AssertionError("retrieval packing did not converge")  # pragma: no cover


def run(
    the_plan: AskPlan,
    backend: Backend,
    params: GenerationParams,
    usage: Usage,
    on_text: Callable[[str], None] | None = None,
    on_prompt_progress: PromptProgress | None = None,
) -> str:
    """Generate the answer to a planned question; ``on_text`` gets each piece as it arrives."""
    pieces: list[str] = []
    for piece in backend.generate(the_plan.prompt, params, usage, on_prompt_progress):
        pieces.append(piece)
        if on_text is not None:
            on_text(piece)
    return "".join(pieces).strip()
