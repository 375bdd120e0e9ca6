"""One document in, one extraction result out.

Plan (no weights): the whole document in one prompt when it fits the window after the output
reserve; otherwise section/page-aligned chunks from the chunker in ``packing``, one prompt each.
Run: every prompt is answered under a grammar built from the field set's grammar schema, then
each field is validated with ``jsonschema`` (an invalid value becomes null and is reported),
its evidence checked against the source text, and the chunks merged field by field.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .. import prompts
from ..chat import ChatPrompt, Message, ModelFacts, format_chat
from ..engines.base import Backend, GenerationParams, PromptProgress, Usage
from ..errors import ContextOverflowError, Dsv2Error, ExitCode
from ..packing import (
    PIECE_JOIN_TOKENS,
    Budget,
    ContextCount,
    PackedChunk,
    count_context,
    ensure_fits,
    fit_halving,
    joined_by,
    make_pieces,
    plan_chunks,
    render_document,
)
from ..sources.base import Document
from ..strategies import whole_prompt
from ..tokens import Tokenizer
from .merge import merge
from .schema import FieldSet
from .verify import SourceText, check_fields

# Smallest useful chunk: below this the window is all template and output reserve.
MIN_CHUNK_TOKENS = 64

StageProgress = Callable[[int, int], None]  # (chunks done, total)


class ExtractionError(Dsv2Error):
    """The model's answer for one document could not be used (cut off at --max-tokens, not JSON)."""

    exit_code = ExitCode.MODEL


@dataclass
class ExtractPlan:
    source: str
    document_tokens: int
    budget: Budget
    prompts: list[ChatPrompt]
    chunks: list[PackedChunk] = field(default_factory=list)  # empty: the whole document in one prompt


@dataclass
class ExtractionResult:
    source: str
    content_hash: str
    schema: str
    schema_digest: str
    fields: dict[str, Any]
    unverified: list[str]
    rejected: list[str]  # "field (chunk n): why" for values that failed validation and became null
    model: str
    chunks: int
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    timings: dict[str, float]
    answered_by: dict[str, Any] | None = None  # backend, escalated, reason (set by the batch runner)
    cost_usd: float | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "content_hash": self.content_hash,
            "schema": self.schema,
            "schema_digest": self.schema_digest,
            "fields": self.fields,
            "unverified": self.unverified,
            "rejected": self.rejected,
            "model": self.model,
            "chunks": self.chunks,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "finish_reason": self.finish_reason,
            "timings": self.timings,
            **({"answered_by": self.answered_by} if self.answered_by is not None else {}),
            **({"cost_usd": self.cost_usd} if self.cost_usd is not None else {}),
        }


def build_prompt(tokenizer: Tokenizer, facts: ModelFacts, fields: FieldSet, context: str) -> ChatPrompt:
    user = prompts.fill(prompts.load("extract"), {"document": context, "fields": fields.describe()})
    messages = [Message("system", prompts.load("system").strip()), Message("user", user.strip())]
    return format_chat(tokenizer, messages, facts.chat_template, facts.architecture)


def plan(
    doc: Document,
    tokenizer: Tokenizer,
    facts: ModelFacts,
    fields: FieldSet,
    window: int,
    max_tokens: int,
    counted: ContextCount | None = None,
) -> ExtractPlan:
    """The prompts that would be sent: one when the document fits the window, else one per chunk.

    ``counted``: the document's counts per segment (``packing.count_context`` over a
    ``tokens.CountCache``); without it the document is counted here. The whole prompt is built
    only when those counts say it fits (or miss by a few tokens); chunks are sized from them.
    """
    overhead = len(build_prompt(tokenizer, facts, fields, "").ids)
    budget = Budget(window=window, output=max_tokens, overhead=overhead)
    counted = counted if counted is not None else count_context([doc], joined_by(tokenizer.count))
    document_tokens = counted.tokens
    whole = whole_prompt(
        "extract",
        document_tokens,
        budget,
        None,
        lambda: build_prompt(tokenizer, facts, fields, render_document(doc)),
        lambda p: len(p.ids) - overhead,
    )
    if whole is not None:
        return ExtractPlan(doc.source, len(whole.ids) - overhead, budget, [whole])
    if budget.document < MIN_CHUNK_TOKENS:
        raise ContextOverflowError.no_room(
            window=window,
            output=max_tokens,
            prompt=overhead,
            room=budget.document,
            what="per chunk",
            input_tokens=document_tokens,
            source=doc.source,
        )
    fitted = fit_halving(
        plan_chunks(
            make_pieces([doc], budget.document - PIECE_JOIN_TOKENS, tokenizer.count, counted.segment_tokens()),
            budget.document,
        ),
        lambda chunk: build_prompt(tokenizer, facts, fields, chunk.render()),
        lambda prompt: len(prompt.ids) + max_tokens <= window,
    )
    for _, prompt in fitted:  # a single piece too big for the window
        ensure_fits(len(prompt.ids), window, max_tokens, document_tokens=len(prompt.ids) - overhead, source=doc.source)
    return ExtractPlan(
        doc.source, document_tokens, budget, [prompt for _, prompt in fitted], [chunk for chunk, _ in fitted]
    )


def parse_output(text: str, usage: Usage, max_tokens: int, where: str) -> dict[str, Any]:
    """The model's JSON object. The grammar admits raw control characters in strings: accept them."""
    try:
        parsed = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        if usage.finish_reason == "length":
            raise ExtractionError(
                f"{where}: the answer reached --max-tokens ({max_tokens}) before its JSON was complete; "
                "raise --max-tokens (and --ctx) or use a schema with fewer fields"
            ) from exc
        raise ExtractionError(f"{where}: the model's answer is not JSON ({exc})") from exc
    if not isinstance(parsed, dict):
        raise ExtractionError(f"{where}: the model's answer is not a JSON object")
    return parsed


def validate_fields(parsed: dict[str, Any], fields: FieldSet, where: str) -> tuple[dict[str, Any], list[str]]:
    """Every field checked on its own: a value that fails its schema becomes null (never kept unchecked)."""
    import jsonschema

    formats = jsonschema.Draft202012Validator.FORMAT_CHECKER  # "date" really is a date (no 2026-02-31)
    grammar_props = fields.grammar_schema()["properties"]
    out: dict[str, Any] = {}
    rejected: list[str] = []
    for name in fields.fields:
        entry = parsed.get(name)
        if entry is None:
            out[name] = None
            continue
        schema = dict(grammar_props[name])
        if fields.defs:
            schema[fields.defs_key] = fields.defs
        validator = jsonschema.Draft202012Validator(schema, format_checker=formats)
        best = jsonschema.exceptions.best_match(validator.iter_errors(entry))
        if best is not None:
            rejected.append(f"{name}{where}: {best.message}")
            out[name] = None
            continue
        out[name] = {"value": entry["value"], "evidence": entry["evidence"]}
    return out, rejected


def check_result(result_fields: dict[str, Any], fields: FieldSet) -> None:
    """The merged result must satisfy the result schema (a bug of ours if not)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(fields.result_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(result_fields))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path)
        raise ExtractionError(f"internal: the merged result fails its schema at {path}: {error.message}")


def run(
    the_plan: ExtractPlan,
    doc: Document,
    fields: FieldSet,
    backend: Backend,
    params: GenerationParams,
    on_chunk: StageProgress | None = None,
    on_prompt: PromptProgress | None = None,
    on_output: PromptProgress | None = None,
) -> ExtractionResult:
    """Extract from every chunk of the plan; ``on_prompt`` / ``on_output`` report (done, total)
    prompt tokens evaluated and output tokens written (of ``params.max_tokens``) per chunk."""
    started = time.perf_counter()
    params = replace(params, json_schema=fields.grammar_schema())
    source = SourceText(doc)
    total = Usage()
    parts: list[dict[str, Any]] = []
    rejected: list[str] = []
    many = len(the_plan.prompts) > 1
    for i, prompt in enumerate(the_plan.prompts, 1):
        usage = Usage()
        pieces: list[str] = []
        for piece in backend.generate(prompt, params, usage, on_prompt):
            pieces.append(piece)
            if on_output is not None:
                on_output(usage.output_tokens, params.max_tokens)
        if on_output is not None:
            on_output(usage.output_tokens, usage.output_tokens)  # done: the answer ended here
        text = "".join(pieces)
        where = f" (chunk {i}/{len(the_plan.prompts)})" if many else ""
        parsed = parse_output(text, usage, params.max_tokens, f"{doc.source}{where}")
        entries, bad = validate_fields(parsed, fields, where)
        rejected.extend(bad)
        check_fields(entries, source)
        if many:
            for entry in entries.values():
                if entry is not None:
                    entry["chunk"] = i
        parts.append(entries)
        total.add(usage)
        if on_chunk is not None:
            on_chunk(i, len(the_plan.prompts))
    merged = merge(parts, list(fields.fields))
    check_result(merged, fields)
    elapsed = time.perf_counter() - started
    return ExtractionResult(
        source=doc.source,
        content_hash=doc.content_hash,
        schema=fields.name,
        schema_digest=fields.digest,
        fields=merged,
        unverified=[n for n, e in merged.items() if e is not None and not e["verified"]],
        rejected=rejected,
        model=backend.capabilities.name,
        chunks=len(the_plan.prompts),
        input_tokens=total.prompt_tokens,
        output_tokens=total.output_tokens,
        finish_reason=total.finish_reason,
        timings={
            "prompt_eval_s": round(total.prompt_eval_s, 4),
            "generation_s": round(total.generation_s, 4),
            "extract_s": round(elapsed, 4),
            "output_tokens_per_s": round(total.output_tokens / total.generation_s, 1) if total.generation_s else 0.0,
        },
    )
