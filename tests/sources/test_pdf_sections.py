"""PDF sections: the outline when there is one, else numbered headings with the contents set aside,
else none. Every body segment's section must be the heading that governs it, or none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dsv2cli.sources import load
from dsv2cli.sources.base import Document

from .pdfs import Part, manual_parts, write_manual

_MARK = re.compile(r"mark(\d+(?:x\d+)*)")


def _check_governing(doc: Document, label_of: dict[str, str]) -> dict[str, set[int]]:
    """Every segment holding body text of one part is labelled with that part; others have no section.

    Returns label -> pages where it was given, for the caller's own checks."""
    pages: dict[str, set[int]] = {}
    for seg in doc.segments:
        marks = {m.replace("x", ".") for m in _MARK.findall(seg.text)}
        assert len(marks) <= 1, f"a segment mixes sections: {seg.location.cite()}: {seg.text!r}"
        expected = label_of[marks.pop()] if marks else None
        assert seg.location.section == expected, f"{seg.location.cite()}: {seg.text[:80]!r}"
        if seg.location.section is not None:
            pages.setdefault(seg.location.section, set()).add(seg.location.page or 0)
    return pages


@pytest.mark.parametrize("toc", ["leaders", "numbers", "plain", None])
def test_without_an_outline_contents_lines_are_not_headings(tmp_path: Path, toc: str | None) -> None:
    parts = manual_parts(chapters=4, subsections=3, body_lines=6)
    doc = load(str(write_manual(tmp_path / "manual.pdf", parts, toc=toc)))
    assert doc.headings == "numbered headings"
    pages = _check_governing(doc, {p.number: p.number for p in parts})
    assert set(pages) == {p.number for p in parts}  # every heading was found in the body


@pytest.mark.parametrize("toc", ["leaders", "numbers", "plain"])
def test_a_report_whose_contents_end_with_14_4_labels_no_other_page_14_4(tmp_path: Path, toc: str) -> None:
    parts = manual_parts(chapters=14, subsections=4, body_lines=2)
    path = write_manual(tmp_path / "report.pdf", parts, toc=toc, chapter_pages=False)
    doc = load(str(path))
    pages = _check_governing(doc, {p.number: p.number for p in parts})
    in_14_4 = {s.location.page for s in doc.segments if "mark14x4" in s.text}
    assert pages["14.4"] == in_14_4
    assert len(pages) == len(parts)


def test_the_outline_gives_the_sections_even_where_headings_carry_no_numbers(tmp_path: Path) -> None:
    parts = manual_parts(chapters=3, subsections=2, body_lines=8)
    path = write_manual(tmp_path / "book.pdf", parts, toc="numbers", outline=True, outline_numbers=False,
                        heading_numbers=False)  # fmt: skip
    doc = load(str(path))
    assert doc.headings == "outline"
    pages = _check_governing(doc, {p.number: p.title for p in parts})
    assert set(pages) == {p.title for p in parts}


def test_an_outline_without_numbers_takes_the_number_from_the_heading_line(tmp_path: Path) -> None:
    # Texinfo manuals: the bookmark says "ASN.1 syntax", the page says "2.1 ASN.1 syntax".
    parts = manual_parts(chapters=3, subsections=3, body_lines=7)
    path = write_manual(tmp_path / "texinfo.pdf", parts, toc="leaders", outline=True, outline_numbers=False)
    doc = load(str(path))
    assert doc.headings == "outline"
    _check_governing(doc, {p.number: p.number for p in parts})


def test_the_outline_wins_over_misleading_numbered_lines(tmp_path: Path) -> None:
    # Body text full of numbered lines that would pass for headings, and a contents page; the
    # bookmarks say where sections really start.
    parts = [Part("1", "Scope", 4), Part("1.1", "Ports", 4), Part("2", "Rules", 4), Part("2.1", "Berths", 4)]
    path = write_manual(tmp_path / "outlined.pdf", parts, toc="plain", outline=True)
    doc = load(str(path))
    assert doc.headings == "outline"
    _check_governing(doc, {p.number: p.number for p in parts})


def test_a_pdf_without_outline_or_numbered_headings_has_no_sections(tmp_path: Path) -> None:
    parts = [Part("1", "Scope", 3), Part("2", "Rules", 3)]
    doc = load(str(write_manual(tmp_path / "plain.pdf", parts, toc=None, heading_numbers=False)))
    assert doc.headings == "none"
    assert all(seg.location.section is None for seg in doc.segments)


def test_pack_json_says_how_each_documents_headings_were_found(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from dsv2cli.cli import app

    parts = manual_parts(chapters=2, subsections=1, body_lines=2)
    outlined = write_manual(tmp_path / "outlined.pdf", parts, outline=True)
    numbered = write_manual(tmp_path / "numbered.pdf", parts)
    plain = write_manual(tmp_path / "plain.pdf", parts, toc=None, heading_numbers=False)
    result = CliRunner().invoke(app, ["pack", str(outlined), str(numbered), str(plain), "--json"])
    assert result.exit_code == 0, result.output
    documents = json.loads(result.stdout)["documents"]
    assert [d["headings"] for d in documents] == ["outline", "numbered headings", "none"]
    assert {s["section"] for s in documents[0]["segments"]} >= {"1", "1.1", "2", "2.1"}


def test_an_outline_whose_titles_are_nowhere_on_their_pages_is_not_trusted(tmp_path: Path) -> None:
    parts = manual_parts(chapters=3, subsections=2, body_lines=4)
    bogus = {p.number: f"Bookmark {n}" for n, p in enumerate(parts)}
    path = write_manual(tmp_path / "bogus.pdf", parts, outline=True, bookmarks=bogus)
    doc = load(str(path))
    assert doc.headings == "numbered headings"
    _check_governing(doc, {p.number: p.number for p in parts})


@pytest.mark.parametrize(
    ("title", "line", "label"),
    [
        ("6.3.4 Attaching arbitrary lists", "6.3.4 Attaching arbitrary lists", "6.3.4"),
        ("ASN.1 syntax", "2.1 ASN.1 syntax", "2.1"),  # texinfo: the bookmark has no number
        ("R and statistics", "1.3 R and statistics", "1.3"),  # not a lettered heading "R"
        ("attach() and detach()", "6.3.2 attach() and detach()", "6.3.2"),
        ("Invoking R from the command line", "B.1 Invoking R from the command line", "B.1"),
        ("A A sample session", "Appendix A A sample session", "Appendix A"),
        ("Concept Index", "Concept Index", "Concept Index"),
        ("Notes [draft]", None, "Notes (draft)"),  # brackets would end a citation marker early
    ],
)
def test_outline_labels_are_numbers_where_the_page_gives_one(title: str, line: str | None, label: str) -> None:
    from dsv2cli.sources.pdf import outline_label

    assert outline_label(title, line) == label
