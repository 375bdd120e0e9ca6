"""Citation markers: parsed from answers, matched against the packed passages, quotes checked (tables of cases)."""

from __future__ import annotations

import pytest

from dsv2cli import citations, prompts
from dsv2cli.citations import Passage, check, find_markers, format_example, parse_part, same_file
from dsv2cli.render import sources_block
from dsv2cli.sources.base import Location

PASSAGES = [
    Passage(
        Location("docs/contract.pdf", page=3, section="8.2"),
        "The liability of either party is capped at EUR 2 million.",
    ),
    Passage(Location("docs/contract.pdf", page=4, section="9"), "Either party may terminate with ninety days' notice."),
    Passage(
        Location("src/net/retry.py", line_start=1, line_end=30),
        "RETRY_DELAY_S = 5\n\ndef backoff(n):\n    return 2 ** n\n",
    ),
    Passage(Location("src/net/retry.py", line_start=60, line_end=80), "def give_up():\n    raise TimeoutError\n"),
    Passage(Location("notes.md", line_start=1, line_end=4, section="1. Fares"), "Residents pay “at most” 4.50 euros."),
]


@pytest.mark.parametrize(
    ("text", "path", "pages", "lines", "section"),
    [
        ("report.pdf p. 4", "report.pdf", ((4, 4),), (), None),
        ("p. 4", None, ((4, 4),), (), None),
        ("p.4", None, ((4, 4),), (), None),
        ("pp. 4-6", None, ((4, 6),), (), None),
        ("report.pdf, pages 4 and 7", "report.pdf", ((4, 4), (7, 7)), (), None),
        ("contract.pdf § 8.2, p. 3", "contract.pdf", ((3, 3),), (), "8.2"),
        ("§ 14.4, p. 38", None, ((38, 38),), (), "14.4"),
        ("§ 8.2", None, (), (), "8.2"),
        ("notes.md § 1. Fares", "notes.md", (), (), "1. Fares"),
        ("src/app.py:12-20", "src/app.py", (), ((12, 20),), None),
        ("src/app.py:12", "src/app.py", (), ((12, 12),), None),
        ("src/app.py:20-12", "src/app.py", (), ((12, 20),), None),
        ("src/app.py lines 12–20", "src/app.py", (), ((12, 20),), None),
        ("src/app.py#L12-L20", "src/app.py", (), ((12, 20),), None),
        ("`src/app.py`, line 7", "src/app.py", (), ((7, 7),), None),
        ("see report.pdf p. 2", "report.pdf", ((2, 2),), (), None),
        ("setup.py:4", "setup.py", (), ((4, 4),), None),
        ("src/app.py", "src/app.py", (), (), None),  # a file alone, with a known extension
        # not citations
        ("0", None, None, None, None),
        ("x", None, None, None, None),
        ("1, 2", None, None, None, None),
        ("optional", None, None, None, None),
        ("the table above", None, None, None, None),
        ("the figure on p. 4 of the annex", None, None, None, None),
    ],
)
def test_parse_marker(text: str, path: str | None, pages: object, lines: object, section: str | None) -> None:
    marker = parse_part(text)
    if pages is None:
        assert marker is None
        return
    assert marker is not None
    assert (marker.path, marker.pages, marker.lines, marker.section) == (path, pages, lines, section)


def test_find_markers_in_prose_splits_shared_brackets_and_skips_links_and_code() -> None:
    answer = (
        "The cap is EUR 2 million [contract.pdf § 8.2, p. 3]; see [the docs](https://x.org) and `xs[0]`. "
        "Retries wait [src/net/retry.py:1-3; src/net/retry.py:60]. A file alone: [README] or [retry.py]."
    )
    found = [m.text for m in find_markers(answer, known_paths=["src/net/retry.py"])]
    assert found == ["[contract.pdf § 8.2, p. 3]", "[src/net/retry.py:1-3]", "[src/net/retry.py:60]", "[retry.py]"]


@pytest.mark.parametrize(
    ("marker", "passage", "same"),
    [
        ("src/app.py", "src/app.py", True),
        ("app.py", "src/app.py", True),
        ("./src/app.py", "src/app.py", True),
        ("src\\app.py", "src/app.py", True),
        ("/home/u/proj/src/app.py", "src/app.py", True),
        ("pp.py", "src/app.py", False),
        ("src/app.pyc", "src/app.py", False),
        ("report.pdf", "/tmp/t/report.pdf", True),
        ("old-report.pdf", "/tmp/t/report.pdf", False),
    ],
)
def test_same_file(marker: str, passage: str, same: bool) -> None:
    assert same_file(marker, passage) is same


@pytest.mark.parametrize(
    ("marker", "matched", "reason"),
    [
        ("[contract.pdf p. 3]", [0], ""),
        ("[p. 4]", [1], ""),  # no path: any file with that page
        ("[contract.pdf pp. 3-4]", [0, 1], ""),
        ("[contract.pdf § 9, p. 3]", [0], ""),  # the page decides, not the section
        ("[contract.pdf § 8.2]", [0], ""),
        ("[contract.pdf § 8]", [0], ""),  # a section holds its subsections
        ("[contract.pdf p. 9]", [], "page 9 of contract.pdf was not sent"),
        ("[contract.pdf pp. 9-10]", [], "pages 9-10 of contract.pdf were not sent"),
        ("[contract.pdf § 12]", [], "section 12 of contract.pdf was not sent"),
        ("[report.pdf p. 4]", [], "no passage of report.pdf was sent"),  # the old template's example
        ("[src/app.py:12-20]", [], "no passage of src/app.py was sent"),  # the other one
        ("[retry.py:25-65]", [2, 3], ""),  # overlapping lines, both spans
        ("[src/net/retry.py:2]", [2], ""),
        ("[src/net/retry.py:40-50]", [], "lines 40-50 of src/net/retry.py were not sent"),
        ("[src/net/retry.py:41]", [], "line 41 of src/net/retry.py was not sent"),
        ("[src/net/retry.py]", [2, 3], ""),
        ("[notes.md § 1. Fares]", [4], ""),
        ("[notes.md:2]", [4], ""),  # lines that were not shown still locate the passage
        ("[contract.pdf:3]", [], "line 3 of contract.pdf was not sent"),  # pages have no lines
    ],
)
def test_match_marker_against_passages(marker: str, matched: list[int], reason: str) -> None:
    [found] = find_markers(marker, [p.path for p in PASSAGES])
    assert citations.match(found, PASSAGES) == (matched, reason)


@pytest.mark.parametrize(
    ("answer", "verified", "found_in"),
    [
        ('It is "capped at EUR 2 million" [contract.pdf p. 3].', True, None),
        ("It is “Capped at EUR 2 million.” [contract.pdf p. 3].", True, None),  # case, curly quotes, wrapping
        ('[contract.pdf p. 4]: "ninety days’ notice"', True, None),  # the marker just before the quote
        ('"The liability ... is capped" [contract.pdf p. 3]', True, None),  # elided text, pieces in order
        ('"is capped ... The liability" [contract.pdf p. 3]', False, None),  # pieces out of order
        ('"ninety days\' notice" [contract.pdf p. 3]', False, "docs/contract.pdf § 9, p. 4"),  # on another page
        ('"capped at EUR 3 million" [contract.pdf p. 3]', False, None),  # a figure changed
        ('"RETRY_DELAY_S = 5" [src/net/retry.py:1]', True, None),
        ('Residents pay "at most" 4.50 euros [notes.md § 1. Fares].', True, None),
        ('"capped at EUR 2 million" [report.pdf p. 4]', False, "docs/contract.pdf § 8.2, p. 3"),  # unknown marker
    ],
)
def test_quote_next_to_a_citation_is_checked_in_the_cited_passage(
    answer: str, verified: bool, found_in: str | None
) -> None:
    [quote] = check(answer, PASSAGES).quotes
    assert (quote.verified, quote.found_in) == (verified, found_in)


@pytest.mark.parametrize(
    "answer",
    [
        'The clause says "capped at EUR 9 million".\n[contract.pdf p. 3]',  # the marker is on another line
        '"capped at EUR 9 million" is not what it says, as the whole long sentence explains at length [p. 3]',
        '"ok" [contract.pdf p. 3]',  # too short to prove anything
        'A "quote" with no citation at all.',
    ],
)
def test_quotes_not_next_to_a_citation_or_too_short_are_not_checked(answer: str) -> None:
    assert check(answer, PASSAGES).quotes == []


def test_check_counts_repeats_and_lists_uncited_passages() -> None:
    answer = "A [contract.pdf p. 3]. B [contract.pdf  p. 3]. C [report.pdf p. 4]. D [report.pdf p. 4]."
    result = check(answer, PASSAGES)
    assert [(u.marker.text, u.count) for u in result.used] == [("[contract.pdf p. 3]", 2)]
    assert [(u.marker.text, u.count) for u in result.unknown] == [("[report.pdf p. 4]", 2)]
    assert result.uncited == [1, 2, 3, 4]
    assert not result.ok
    assert result.problems() == [
        "1 citation matches nothing that was sent: [report.pdf p. 4] (no passage of report.pdf was sent)"
    ]


def test_an_answer_without_markers_is_not_a_failure() -> None:
    result = check("The documents do not say.", PASSAGES)
    assert result.ok and result.used == [] and result.uncited == [0, 1, 2, 3, 4]
    assert sources_block(result).splitlines()[:3] == ["", "Sources:", "  the answer cites none of the 5 passages sent"]


def test_sources_block_lists_used_unknown_quotes_and_uncited_per_file() -> None:
    answer = (
        'Capped "at EUR 2 million" [contract.pdf § 8.2, p. 3]. Retries [src/net/retry.py:2]. '
        "Invented [contract.pdf p. 12]."
    )
    assert sources_block(check(answer, PASSAGES)) == (
        "\nSources:\n"
        "  [contract.pdf § 8.2, p. 3]  docs/contract.pdf, p. 3, § 8.2\n"
        "  [src/net/retry.py:2]  src/net/retry.py, line 2\n"
        "  [contract.pdf p. 12]  NOT SENT: page 12 of contract.pdf was not sent\n"
        "Quotes:\n"
        '  "at EUR 2 million" [contract.pdf § 8.2, p. 3]: found in the cited passage\n'
        "Sent but not cited:\n"
        "  docs/contract.pdf: p. 4\n"
        "  src/net/retry.py: lines 60-80\n"
        "  notes.md: lines 1-4\n"
    )


def test_uncited_pages_are_merged_into_ranges_and_long_lists_are_cut() -> None:
    pages = [Passage(Location("big.pdf", page=n), f"page {n}") for n in (1, 2, 3, 5, 8, 9)]
    files = [Passage(Location(f"f{i}.py", line_start=1, line_end=2), "x = 1\n") for i in range(25)]
    block = sources_block(check("Nothing cited.", pages + files)).splitlines()
    assert "  big.pdf: pp. 1-3, 5, 8-9" in block
    assert block[-1] == "  ... and 6 more files (--json lists every passage)"


@pytest.mark.parametrize(
    ("locations", "example"),
    [
        ([Location("docs/contract.pdf", page=1, section="1")], "[docs/contract.pdf § 1, p. 1]"),
        ([Location("r.pdf", page=2), Location("r.pdf", page=3)], "[r.pdf p. 2]"),
        ([Location("src/a.py", line_start=1, line_end=400)], "[src/a.py:1-8]"),  # a few real lines, not the file
        ([Location("src/a.py", line_start=5, line_end=6)], "[src/a.py:5-6]"),
        ([Location("n.md", line_start=1, line_end=3, section="Fares")], "[n.md § Fares]"),
        ([Location("r.pdf", page=1), Location("src/a.py", line_start=1, line_end=9)], "[r.pdf p. 1] or [src/a.py:1-8]"),
    ],
)
def test_the_prompt_example_is_a_real_marker_of_the_context(locations: list[Location], example: str) -> None:
    passages = [Passage(loc, "text") for loc in locations]
    assert format_example(passages) == example
    # what the example shows matches what was sent
    for marker in find_markers(example):
        assert citations.match(marker, passages)[0]


@pytest.mark.parametrize("name", prompts.template_names())
def test_no_prompt_carries_an_example_marker_a_model_could_copy(name: str) -> None:
    """Models copied the templates' own examples ([report.pdf p. 4], [src/app.py:12-20]) into answers
    about other documents: the format is shown with the context's real markers ({{ example }})."""
    assert find_markers(prompts.load(name)) == []


@pytest.mark.parametrize(
    ("marker", "section", "mismatch"),
    [
        ("[manual.pdf p. 38]", "6.3.4, 6.3.5", False),  # a page that holds two sections
        ("[manual.pdf § 6.3.5, p. 38]", "6.3.5", False),
        ("[manual.pdf § 6.3, p. 38]", "6.3.4, 6.3.5", False),
        ("[manual.pdf § 14.4, p. 38]", "6.3.4, 6.3.5", True),  # the page matches, the section is wrong
        ("[manual.pdf § 14.4, p. 39]", None, False),  # a passage without a section cannot contradict one
    ],
)
def test_a_used_marker_reports_the_sections_of_its_page(marker: str, section: str | None, mismatch: bool) -> None:
    passages = [
        Passage(Location("manual.pdf", page=38, section="6.3.4"), "6.3.4 Attaching arbitrary lists"),
        Passage(Location("manual.pdf", page=38, section="6.3.5"), "6.3.5 Managing the search path"),
        Passage(Location("manual.pdf", page=39), "Chapter 7 Reading data from files"),
    ]
    result = check(f"Use attach() {marker}.", passages)
    [used] = result.to_dict()["used"]
    assert (used["section"], used["section_mismatch"]) == (section, mismatch)
    assert result.ok  # the page decides
    line = sources_block(result).splitlines()[2]
    assert line.endswith(f"(not in the section the answer names: {marker})") is mismatch
