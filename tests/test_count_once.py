"""Count once: summarize, ask and extract choose a strategy from per-segment counts (cached by
content) and tokenize the whole input into a prompt only when that prompt is what runs.

A recording tokenizer (the real SmolLM2 vocabulary underneath) notes the longest text it was
asked to tokenize: over an input too big for the window, no call may see the whole context.
At the budget's edge the exact prompt decides, whatever the per-segment counts said.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dsv2cli import ask, summarize
from dsv2cli.chat import ModelFacts
from dsv2cli.extract.run import plan as extract_plan
from dsv2cli.extract.schema import contract_fields
from dsv2cli.packing import ContextCount, count_context, fit_halving, render_context
from dsv2cli.sources import load
from dsv2cli.sources.base import Document, Segment
from dsv2cli.strategies import MAP_REDUCE, RETRIEVE, WHOLE
from dsv2cli.tokens import CountCache, Tokenizer, tokenizer_key

from .conftest import SAMPLES

FACTS = ModelFacts("smollm2", "llama", None)
SPEC = summarize.style_spec("brief")


class Recording(Tokenizer):
    """The real tokenizer; ``longest`` is the longest text it has encoded or counted."""

    def __init__(self, base: Tokenizer) -> None:
        super().__init__(base.llama)
        self.longest = 0

    def encode(self, text: str) -> list[int]:
        self.longest = max(self.longest, len(text))
        return super().encode(text)

    def count(self, text: str) -> int:
        self.longest = max(self.longest, len(text))
        return super().count(text)


@pytest.fixture
def report() -> list[Document]:
    """The sample annual report's 13 pages, eight times over as pages 1-104 (~17k tokens)."""
    doc = load(str(SAMPLES / "meridian-coast-annual-report-2025.pdf"))
    pages = [
        Segment(seg.text, replace(seg.location, page=round_ * 13 + (seg.location.page or 0)))
        for round_ in range(8)
        for seg in doc.segments
    ]
    return [replace(doc, segments=pages)]


def cached_counts(docs: list[Document], smollm2: Path, tmp_path: Path) -> tuple[ContextCount, CountCache]:
    cache = CountCache(lambda: Tokenizer.load(smollm2), tmp_path / "counts.sqlite", tokenizer_key(smollm2), smollm2)
    try:
        return count_context(docs, cache.count_joined), cache
    finally:
        cache.close()


def test_map_reduce_is_planned_without_tokenizing_the_whole_input(
    report: list[Document], smollm2: Path, smollm2_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    counted, _ = cached_counts(report, smollm2, tmp_path)
    context = render_context(report)
    tok = Recording(smollm2_tokenizer)
    the_plan = summarize.plan(report, tok, FACTS, SPEC, window=2048, max_tokens=256, counted=counted)
    assert the_plan.strategy == MAP_REDUCE and the_plan.prompt is None
    assert the_plan.document_tokens == counted.tokens > 2048
    assert tok.longest < len(context) // 4, "something tokenized (most of) the whole input"
    # every non-empty page in exactly one chunk, in order
    planned = [p.segment for c in the_plan.chunks for p in c.pieces]
    assert [s for s in planned] == [s for d in report for s in d.segments if s.text.strip()]
    # sized from the context's counts, every chunk's real map prompt fits: nothing is halved
    assert the_plan.mapper is not None
    fitted = fit_halving(
        the_plan.chunks,
        lambda c: the_plan.mapper._prompt(the_plan.mapper.final_template, {"document": c.render()}),  # type: ignore[union-attr]
        lambda prompt: len(prompt.ids) + 256 <= 2048,
    )
    assert [c for c, _ in fitted] == the_plan.chunks


def test_the_counts_and_a_whole_count_choose_alike(
    report: list[Document], smollm2: Path, smollm2_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    counted, _ = cached_counts(report, smollm2, tmp_path)
    for window in (2048, 65536):
        with_counts = summarize.plan(report, smollm2_tokenizer, FACTS, SPEC, window, 256, counted=counted)
        alone = summarize.plan(report, smollm2_tokenizer, FACTS, SPEC, window, 256)
        assert with_counts.strategy == alone.strategy == (MAP_REDUCE if window == 2048 else WHOLE)
        if with_counts.prompt is not None:
            assert alone.prompt is not None and with_counts.prompt.ids == alone.prompt.ids


def exact_prompt_tokens(docs: list[Document], tok: Tokenizer) -> int:
    return len(summarize.build_prompt(tok, FACTS, SPEC, render_context(docs)).ids)


@pytest.mark.parametrize("claimed", [-5, 0, 5], ids=["counts-under", "counts-exact", "counts-over"])
def test_at_the_budget_edge_the_exact_prompt_decides(
    report: list[Document], smollm2: Path, smollm2_tokenizer: Tokenizer, tmp_path: Path, claimed: int
) -> None:
    """Per-segment counts may stand a few tokens off the prompt (tokens merge where the template
    meets the context): whatever they claim near the edge, a prompt that fits runs whole and one
    token over goes to map-reduce."""
    counted, _ = cached_counts(report, smollm2, tmp_path)
    exact = exact_prompt_tokens(report, smollm2_tokenizer)
    overhead = len(summarize.build_prompt(smollm2_tokenizer, FACTS, SPEC, "").ids)
    shifted = ContextCount(exact - overhead + claimed, counted.parts)
    fits = summarize.plan(report, smollm2_tokenizer, FACTS, SPEC, exact + 256, 256, counted=shifted)
    assert fits.strategy == WHOLE and fits.prompt is not None and len(fits.prompt.ids) == exact
    over = summarize.plan(report, smollm2_tokenizer, FACTS, SPEC, exact + 255, 256, counted=shifted)
    assert over.strategy == MAP_REDUCE


def test_ask_retrieves_without_tokenizing_the_whole_corpus(
    report: list[Document], smollm2: Path, smollm2_tokenizer: Tokenizer, minilm_gguf: Path, tmp_path: Path
) -> None:
    counted, _ = cached_counts(report, smollm2, tmp_path)
    tok = Recording(smollm2_tokenizer)
    the_plan = ask.plan(
        "What was net cash provided by operating activities?",
        report,
        tok,
        FACTS,
        2048,
        256,
        corpus=[report[0].source],
        home=tmp_path / "home",
        embed_model=str(minilm_gguf),
        threads=1,
        counted=counted,
    )
    assert the_plan.strategy == RETRIEVE
    assert len(the_plan.prompt.ids) + 256 <= 2048
    assert tok.longest < len(render_context(report)) // 4, "something tokenized (most of) the whole corpus"


def test_ask_runs_whole_from_the_counts_with_the_exact_prompt(
    report: list[Document], smollm2: Path, smollm2_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    counted, _ = cached_counts(report, smollm2, tmp_path)
    question = "Who audited the accounts?"
    args = (question, report, smollm2_tokenizer, FACTS, 65536, 256)
    with_counts = ask.plan(*args, corpus=["r"], home=tmp_path, counted=counted)
    alone = ask.plan(*args, corpus=["r"], home=tmp_path)
    assert with_counts.strategy == alone.strategy == WHOLE
    assert with_counts.prompt.ids == alone.prompt.ids
    assert with_counts.context_tokens == alone.context_tokens


def test_extract_chunks_without_tokenizing_the_whole_document(
    report: list[Document], smollm2: Path, smollm2_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    counted, _ = cached_counts(report, smollm2, tmp_path)
    fields = contract_fields()
    tok = Recording(smollm2_tokenizer)
    the_plan = extract_plan(report[0], tok, FACTS, fields, 2048, 256, counted)
    assert len(the_plan.prompts) > 1 and len(the_plan.chunks) == len(the_plan.prompts)
    assert all(len(p.ids) + 256 <= 2048 for p in the_plan.prompts)
    assert tok.longest < len(render_context(report)) // 4
    roomy = extract_plan(report[0], smollm2_tokenizer, FACTS, fields, 65536, 256, counted)
    alone = extract_plan(report[0], smollm2_tokenizer, FACTS, fields, 65536, 256)
    assert len(roomy.prompts) == len(alone.prompts) == 1 and roomy.prompts[0].ids == alone.prompts[0].ids
