"""Evidence checks against the real sample contract PDF (no model needed)."""

from __future__ import annotations

import pytest

from dsv2cli import sources
from dsv2cli.extract import SourceText, check_fields
from dsv2cli.sources.base import Document, Location, Segment

from .conftest import CONTRACT


@pytest.fixture(scope="module")
def contract() -> SourceText:
    return SourceText(sources.load(str(CONTRACT)))


def test_planted_fake_quote_is_marked_unverified(contract: SourceText) -> None:
    fields: dict[str, object] = {
        "governing_law": {"value": "Ireland", "evidence": "governed by the laws of Ireland"},
        "liability_cap": {"value": "unlimited", "evidence": "Neither party's liability is limited in any way"},
        "insurance": None,
    }
    unverified = check_fields(fields, contract)
    assert unverified == ["liability_cap"]
    assert fields["liability_cap"] == {
        "value": "unlimited",
        "evidence": "Neither party's liability is limited in any way",
        "verified": False,
        "location": None,
    }
    assert fields["insurance"] is None


def test_real_quote_is_verified_with_its_section_and_page(contract: SourceText) -> None:
    fields: dict[str, object] = {"governing_law": {"value": "Ireland", "evidence": "governed by the laws of Ireland"}}
    assert check_fields(fields, contract) == []
    entry = fields["governing_law"]
    assert isinstance(entry, dict)
    assert entry["verified"] is True
    assert entry["location"]["section"] == "11.1" and entry["location"]["page"] == 4
    assert entry["location"]["cite"] == "§ 11.1, p. 4"


@pytest.mark.parametrize(
    "quote",
    [
        "GOVERNED BY THE LAWS OF IRELAND",  # case
        "governed   by the\nlaws of Ireland.",  # whitespace and line breaks
        '"...governed by the laws of Ireland..."',  # the quote's own wrapping
    ],
)
def test_matching_ignores_case_whitespace_and_wrapping(contract: SourceText, quote: str) -> None:
    assert contract.find(quote) is not None


@pytest.mark.parametrize(
    "quote",
    [
        "governed by the law of Ireland",  # a changed word
        "governed by ... Ireland",  # skipped text
        "the",  # too short to prove anything
        "",
    ],
)
def test_altered_skipping_or_trivial_quotes_are_not_verified(contract: SourceText, quote: str) -> None:
    assert contract.find(quote) is None


def test_quote_across_a_page_break_cites_both_pages(contract: SourceText) -> None:
    found = contract.find("gives notice of non-renewal at least ninety (90) days before the end")
    assert found is not None
    assert found.to_dict()["cite"] == "§ 3.2, pp. 1-2"


def test_curly_quotes_and_dashes_match_straight_ones() -> None:
    segment = Segment("The \u201cTerm\u201d \u2013 twelve months.", Location("t.txt", None, 7, 7))
    doc = Document("t.txt", "text", [segment])
    found = SourceText(doc).find('the "term" - twelve months')
    assert found is not None
    assert found.to_dict()["cite"] == "line 7"


def test_text_file_quote_gets_its_exact_lines() -> None:
    text = "Invoice INV-1\nDue date: 5 March 2026\nTotal due: EUR 2,840.00\n"
    doc = Document("inv.txt", "text", [Segment(text, Location("inv.txt", None, 10, 12))])
    found = SourceText(doc).find("Total due: EUR 2,840.00")
    assert found is not None
    assert (found.location.line_start, found.location.line_end) == (12, 12)
