"""One document through plan -> generation -> validation -> verification -> merge.

The backend here replays a fixed answer, so a planted invented quote, an impossible date and a
cut-off answer can be fed through the real pipeline; tokenizer, chat template and PDF are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsv2cli import sources
from dsv2cli.chat import ChatPrompt, ModelFacts
from dsv2cli.engines.base import Capabilities, GenerationParams, PromptProgress, Usage
from dsv2cli.extract import ExtractionError, ExtractionResult, ExtractPlan, contract_fields, plan, run
from dsv2cli.extract.batch import describe
from dsv2cli.ggufmeta import read_gguf
from dsv2cli.tokens import Tokenizer

from .conftest import CONTRACT


class Replay:
    """A Backend that answers every prompt with the next scripted text."""

    def __init__(self, *answers: str, finish: str = "stop") -> None:
        self.answers = list(answers)
        self.finish = finish
        self.prompts: list[ChatPrompt] = []
        self.schemas: list[object] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("replay", 8192, streaming=True, gpu_offload=False)

    def generate(
        self, prompt: ChatPrompt, params: GenerationParams, usage: Usage, on_prompt: PromptProgress | None = None
    ) -> Iterator[str]:
        self.prompts.append(prompt)
        self.schemas.append(params.json_schema)
        usage.prompt_tokens, usage.output_tokens, usage.finish_reason = len(prompt.ids), 10, self.finish
        yield self.answers.pop(0)


@pytest.fixture(scope="module")
def facts(smollm2: Path) -> ModelFacts:
    info = read_gguf(smollm2)
    return ModelFacts("smollm2", info.architecture, info.chat_template)


FIELDS = contract_fields().subset(["effective_date", "governing_law", "liability_cap"])
PARAMS = GenerationParams(max_tokens=256, temperature=0.0, seed=0)


def extract(
    answers: list[str], tokenizer: Tokenizer, facts: ModelFacts, window: int = 8192, finish: str = "stop"
) -> tuple[ExtractionResult, Replay, ExtractPlan]:
    doc = sources.load(str(CONTRACT))
    the_plan = plan(doc, tokenizer, facts, FIELDS, window, PARAMS.max_tokens)
    backend = Replay(*answers, finish=finish)
    return run(the_plan, doc, FIELDS, backend, PARAMS), backend, the_plan


def test_planted_fake_quote_is_reported_unverified_and_kept_out_of_locations(
    smollm2_tokenizer: Tokenizer, facts: ModelFacts
) -> None:
    answer = {
        "effective_date": {"value": "2026-04-01", "evidence": '"Effective Date" means 1 April 2026.'},
        "governing_law": {"value": "Ireland", "evidence": "governed by the laws of Ireland"},
        "liability_cap": {"value": {"description": "none", "amount": None}, "evidence": "Liability is unlimited."},
    }
    result, backend, _ = extract([json.dumps(answer)], smollm2_tokenizer, facts)
    assert backend.schemas == [FIELDS.grammar_schema()]  # generation was grammar-constrained
    assert result.unverified == ["liability_cap"]
    assert result.fields["liability_cap"]["verified"] is False
    assert result.fields["effective_date"]["location"]["cite"] == "§ 1.5, p. 1"
    lines = describe(result)
    assert "3 of 3 fields found, 2 with verified evidence" in lines[0]
    assert any("liability_cap: evidence not found in the document" in line for line in lines[1:])


def test_value_that_fails_its_schema_becomes_null_and_is_reported(
    smollm2_tokenizer: Tokenizer, facts: ModelFacts
) -> None:
    # the date grammar admits 2026-02-31; jsonschema's date format check does not
    answer = {
        "effective_date": {"value": "2026-02-31", "evidence": "1 April 2026"},
        "governing_law": None,
        "liability_cap": None,
    }
    result, _, _ = extract([json.dumps(answer)], smollm2_tokenizer, facts)
    assert result.fields["effective_date"] is None
    assert result.rejected and result.rejected[0].startswith("effective_date")


def test_answer_cut_off_at_max_tokens_is_a_clear_error(smollm2_tokenizer: Tokenizer, facts: ModelFacts) -> None:
    with pytest.raises(ExtractionError, match="reached --max-tokens"):
        extract(['{"effective_date": {"value": "2026-04-01", "evid'], smollm2_tokenizer, facts, finish="length")


def test_chunks_are_merged_with_conflicts_visible(smollm2_tokenizer: Tokenizer, facts: ModelFacts) -> None:
    law = {"value": "Ireland", "evidence": "governed by the laws of Ireland"}
    other = {"value": "England", "evidence": "governed by the laws of England"}
    answers = [json.dumps({"effective_date": None, "governing_law": other, "liability_cap": None})] + [
        json.dumps({"effective_date": None, "governing_law": law, "liability_cap": None})
    ] * 9
    result, backend, the_plan = extract(answers, smollm2_tokenizer, facts, window=1536)
    assert len(the_plan.chunks) >= 2 and result.chunks == len(backend.prompts) == len(the_plan.chunks)
    assert all(len(p.ids) + PARAMS.max_tokens <= 1536 for p in backend.prompts)
    law_entry = result.fields["governing_law"]
    assert law_entry["value"] == "Ireland" and law_entry["verified"] and law_entry["chunk"] >= 2
    assert [(c["value"], c["verified"], c["chunk"]) for c in law_entry["conflicts"]] == [("England", False, 1)]
