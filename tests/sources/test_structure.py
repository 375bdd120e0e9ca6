"""Section/clause heading detection, as a table of lines."""

from __future__ import annotations

import pytest

from dsv2cli.sources.structure import find_headings, parse_heading


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("1. Definitions", "1"),
        ("8.2 Limitation of Liability", "8.2"),
        ("8.2. Limitation of Liability", "8.2"),
        ("12.1.3 The Supplier shall notify the Customer.", "12.1.3"),
        ("Section 8.2 Cap", "8.2"),
        ("SECTION 4. TERM", "4"),
        ("§ 8 Haftung", "8"),
        ("§8.2 Haftungsgrenze", "8.2"),
        ("ARTICLE IV", "IV"),
        ("Article 4 - Termination", "4"),
        ("ARTICLE XII. GOVERNING LAW", "XII"),
        ("Clause 9.1 Termination for convenience", "9.1"),
        ("2 ASN.1 structure handling", "2"),
    ],
)
def test_numbered_heading_forms_are_recognised(line: str, label: str) -> None:
    parsed = parse_heading(line)
    assert parsed is not None and parsed[0] == label


@pytest.mark.parametrize(
    "line",
    [
        "4.82 million passengers were carried in 2025.",
        "2025 was the year the company grew.",
        "Section 8.2 of this Agreement applies.",  # a wrapped cross-reference, not a heading
        "Section 3.3 [Getting and setting attributes], page 15. Because the",  # texinfo's cross-references
        "3 vessels were sold to a buyer in Norway, which closed the deal.",
        "1.5 2.3 4.4",
        "",
        "Page 4",
    ],
)
def test_numbers_that_are_not_headings_are_ignored(line: str) -> None:
    assert parse_heading(line) is None


def test_headings_must_continue_the_numbering() -> None:
    lines = [
        "1. Definitions",
        "Text.",
        "2. Services",
        "The Supplier shall:",
        "1. Host the platform;",  # a list restarting at 1 inside section 2
        "2. Keep backups;",  # would be accepted only after the (rejected) restart
        "2.1 Hosting",
        "Hosting text.",
        "2.2 Support",
        "Support text.",
        "3. Fees",
        "Fees text.",
        "3.2 Late payment",  # tolerated gap: 3.1 lost in a table
        "Interest applies.",
        "5. Liability",  # tolerated gap
        "Liability text.",
        "9. Notices",  # gap too large: a stray number
        "Notices text.",
    ]
    found = find_headings(lines)
    assert [(h.line, h.label) for h in found] == [(0, "1"), (2, "2"), (6, "2.1"), (8, "2.2"), (10, "3"), (12, "3.2"),
                                                  (14, "5")]  # fmt: skip


def test_articles_with_roman_numerals_nest_sections() -> None:
    lines = ["ARTICLE I DEFINITIONS", "Section 1.1 Terms", "Words mean what they say.", "Section 1.2 Usage",
             "Read it whole.", "ARTICLE II TERM", "Section 2.1 Start", "It starts today."]  # fmt: skip
    assert [h.label for h in find_headings(lines)] == ["I", "1.1", "1.2", "II", "2.1"]


def test_a_single_numbered_line_is_not_a_structure() -> None:
    assert find_headings(["Intro", "1. Only item", "More text"]) == []


def test_contents_lines_are_set_aside_and_the_body_headings_found() -> None:
    lines = ["Contents", "1 Introduction . . . . . 1", "1.1 Scope . . . . . 1", "2 Usage . . . . . 3",
             "14.4 Last entry . . . . . 98", "1 Introduction", "This manual says how.", "1.1 Scope",
             "It covers ports.", "2 Usage", "Use it daily."]  # fmt: skip
    assert [(h.line, h.label) for h in find_headings(lines)] == [(5, "1"), (7, "1.1"), (9, "2")]


def test_a_heading_needs_body_text_after_it() -> None:
    # Titles only, as in a contents page without page numbers: nothing here is a heading.
    lines = ["1 Introduction", "1.1 Scope", "2 Usage", "2.1 Daily use", "3 Index", "Body text starts here."]
    assert [h.label for h in find_headings(lines)] == []


def test_a_licence_appendix_does_not_continue_the_chapters() -> None:
    # libtasn1's manual without its outline: chapters "N Title", then the GFDL's "N. TITLE" clauses.
    lines = ["1 Introduction", "Text.", "2 Usage", "Text.", "2.1 Details", "Text.",
             "Appendix A Copying Information", "The licence follows.", "0. PREAMBLE", "Text.",
             "1. APPLICABILITY AND DEFINITIONS", "Text.", "5. COMBINING DOCUMENTS", "Text."]  # fmt: skip
    assert [(h.line, h.label) for h in find_headings(lines)] == [(0, "1"), (2, "2"), (4, "2.1"),
                                                                 (6, "Appendix A")]  # fmt: skip


def test_an_index_after_the_last_chapter_is_not_part_of_it() -> None:
    lines = ["1 Scope", "Text.", "2 Terms", "Text.", "Concept Index", "apple: 3", "banana: 4"]
    assert [(h.line, h.label) for h in find_headings(lines)] == [(0, "1"), (2, "2"), (4, "Concept Index")]


def test_chapters_written_one_way_are_not_continued_by_a_list_written_another() -> None:
    lines = ["1 Scope", "Text.", "2 Terms", "Text.", "3. Pay the fee", "Text.", "3 Fees", "Text."]
    assert [h.label for h in find_headings(lines)] == ["1", "2", "3"]
    assert find_headings(lines)[-1].line == 6
