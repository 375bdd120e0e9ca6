"""``dsv2 summarize``: documents in, one summary out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import prompts
from .chat import ChatPrompt, Message, format_chat
from .engines.base import Backend, GenerationParams, PromptProgress, Usage
from .errors import ContextOverflowError
from .packing import Budget, ensure_fits, render_context
from .sources.base import Document
from .strategies import WHOLE, choose
from .tokens import Tokenizer


@dataclass(frozen=True)
class PromptSpec:
    """What the model is asked: a system prompt and a user template with ``{{ document }}``."""

    system: str
    template: str


@dataclass(frozen=True)
class ModelFacts:
    """What the prompt builder must know about the model (from the GGUF header)."""

    name: str
    architecture: str
    chat_template: str | None


@dataclass
class Plan:
    prompt: ChatPrompt
    document_tokens: int
    budget: Budget
    strategy: str
    source: str


@dataclass
class SummaryResult:
    summary: str
    model: str
    strategy: str
    input_tokens: int  # the whole prompt as sent
    document_tokens: int
    output_tokens: int
    window: int
    budget: int  # document tokens allowed
    finish_reason: str | None
    timings: dict[str, float] = field(default_factory=dict)


def style_spec(style: str) -> PromptSpec:
    return PromptSpec(prompts.load("system"), prompts.load(f"summarize_{style}"))


def build_prompt(tokenizer: Tokenizer, facts: ModelFacts, spec: PromptSpec, context: str) -> ChatPrompt:
    messages = [
        Message("system", spec.system.strip()),
        Message("user", prompts.fill(spec.template, {"document": context}).strip()),
    ]
    return format_chat(tokenizer, messages, facts.chat_template, facts.architecture)


def plan(
    docs: Sequence[Document],
    tokenizer: Tokenizer,
    facts: ModelFacts,
    spec: PromptSpec,
    window: int,
    max_tokens: int,
    strategy: str | None = None,
) -> Plan:
    """Tokenize exactly what would be sent and decide how to run. No model weights needed."""
    overhead = len(build_prompt(tokenizer, facts, spec, "").ids)
    budget = Budget(window=window, output=max_tokens, overhead=overhead)
    prompt = build_prompt(tokenizer, facts, spec, render_context(docs))
    document_tokens = len(prompt.ids) - overhead
    source = ", ".join(d.source for d in docs)
    chosen = choose("summarize", document_tokens, budget.document, strategy)
    if chosen != WHOLE:
        raise ContextOverflowError(
            f"{source}: input is {document_tokens} tokens but the document budget is {max(budget.document, 0)} "
            f"(window {window} - {max_tokens} reserved for output - {overhead} prompt template); "
            f"the {chosen} fallback is not available yet: use a larger --ctx, a smaller --max-tokens, "
            "or a shorter input",
            input_tokens=document_tokens,
            window=window,
            budget=max(budget.document, 0),
        )
    ensure_fits(len(prompt.ids), window, max_tokens, document_tokens=document_tokens, source=source)
    return Plan(prompt, document_tokens, budget, chosen, source)


def run(
    the_plan: Plan,
    backend: Backend,
    params: GenerationParams,
    on_text: Callable[[str], None] | None = None,
    on_prompt_progress: PromptProgress | None = None,
) -> SummaryResult:
    usage = Usage()
    pieces: list[str] = []
    started = time.perf_counter()
    for piece in backend.generate(the_plan.prompt, params, usage, on_prompt_progress):
        pieces.append(piece)
        if on_text is not None:
            on_text(piece)
    elapsed = time.perf_counter() - started
    return SummaryResult(
        summary="".join(pieces).strip(),
        model=backend.capabilities.name,
        strategy=the_plan.strategy,
        input_tokens=usage.prompt_tokens,
        document_tokens=the_plan.document_tokens,
        output_tokens=usage.output_tokens,
        window=the_plan.budget.window,
        budget=the_plan.budget.document,
        finish_reason=usage.finish_reason,
        timings={
            "prompt_eval_s": round(usage.prompt_eval_s, 4),
            "generation_s": round(usage.generation_s, 4),
            "model_call_s": round(elapsed, 4),
            "prompt_tokens_per_s": round(usage.prompt_tokens / usage.prompt_eval_s, 1) if usage.prompt_eval_s else 0.0,
            "output_tokens_per_s": round(usage.output_tokens / usage.generation_s, 1) if usage.generation_s else 0.0,
        },
    )
