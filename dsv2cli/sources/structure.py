"""Section and clause structure: numbered headings such as ``1.``, ``8.2``, ``Section 8.2``, ``§ 8``, ``ARTICLE IV``.

Only the start of a line can open a section. Numbers alone are weak evidence (a numbered list, a
figure such as "4.82 million", a line wrapped before "Section 8.2 of this Agreement"), so a
candidate is accepted only when it continues the numbering seen so far: the next sibling
(8.1 -> 8.2), a first child (8 -> 8.1) or the next item of an ancestor (8.3 -> 9). A list that
restarts at "1." inside section 4 is therefore not a section. A gap of one number is tolerated
(8.1 -> 8.3), because PDF text sometimes loses a heading in a table or a wrapped line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}

# "ARTICLE IV", "Article 4 - Term", "ARTICLE IV. TERMINATION"
_ARTICLE = re.compile(r"(?:ARTICLE|Article)\s+([IVXLC]+|\d{1,3})\b\s*[.:\-–—]?\s*(.*)")
# "Section 8.2", "SECTION 8.2.", "Sec. 8", "Clause 12.1", "§ 8", "§§ 8.2"
_NAMED = re.compile(r"(?:SECTION|Section|Sec\.|CLAUSE|Clause|§+)\s*(\d{1,3}(?:\.\d{1,3})*)\.?(?=\s|$)\s*(.*)")
# "8.2 Limitation", "8.2. Limitation", "1. Definitions"
_DOTTED = re.compile(r"(\d{1,2}(?:\.\d{1,3})+)\.?\s+(\S.*)|(\d{1,2})\.\s+(\S.*)")
# "2 Definitions" (LaTeX style): accepted only on a short line that does not read like a sentence
_BARE = re.compile(r"(\d{1,2})\s+([A-Z].{0,60})")


@dataclass(frozen=True)
class Heading:
    line: int  # 0-based index into the lines given to find_headings
    label: str  # as written: "8.2", "IV"
    title: str  # the rest of the line, possibly the start of the clause text
    number: tuple[int, ...]


def _roman(text: str) -> int | None:
    total = 0
    for i, ch in enumerate(text):
        value = _ROMAN[ch]
        if i + 1 < len(text) and _ROMAN[text[i + 1]] > value:
            total -= value
        else:
            total += value
    return total if 0 < total < 200 else None


def _title_ok(title: str) -> bool:
    """Heading text starts like a title or a clause, not like a sentence continuing."""
    return not title or title[0].isupper() or title[0].isdigit() or title[0] in "(\"'“‘["


def parse_heading(line: str) -> tuple[str, tuple[int, ...], str] | None:
    """``(label, number, title)`` when ``line`` starts like a numbered heading, else None."""
    s = line.strip()
    if not s or len(s) > 400:
        return None
    m = _ARTICLE.match(s)
    if m:
        label, title = m.group(1), m.group(2)
        value = int(label) if label.isdigit() else _roman(label)
        if value is None or not _title_ok(title):
            return None
        return label, (value,), title
    m = _NAMED.match(s)
    if m:
        label, title = m.group(1), m.group(2)
        if not _title_ok(title):
            return None
        return label, tuple(int(p) for p in label.split(".")), title
    m = _DOTTED.match(s)
    if m:
        label = m.group(1) or m.group(3)
        title = m.group(2) or m.group(4)
        if not _title_ok(title) or (title[0].isdigit() and not re.search(r"[A-Za-z]{3}", title)):
            return None  # "1.5 2.3 4.4" is a row of numbers; "2. 2025 at a glance" is a heading
        return label, tuple(int(p) for p in label.split(".")), title
    m = _BARE.fullmatch(s)
    if m and not s.endswith((".", ",", ";", ":")):
        return m.group(1), (int(m.group(1)),), m.group(2)
    return None


def _continues(prev: tuple[int, ...] | None, cur: tuple[int, ...]) -> bool:
    if prev is None:
        # The first heading must look like the start of a numbering: 1, 1.1, I, or 0.
        return all(p <= 1 for p in cur)
    # a first child: 8 -> 8.1 (or 8.2, when 8.1 was lost)
    if len(cur) > len(prev) and cur[: len(prev)] == prev:
        return cur[len(prev)] <= 2 and all(p <= 1 for p in cur[len(prev) + 1 :])
    # the next sibling of prev or of one of its ancestors: 8.2 -> 8.3, 8.3 -> 9, 8.3 -> 9.1
    for depth in range(len(prev)):
        if cur[:depth] == prev[:depth] and len(cur) > depth and 1 <= cur[depth] - prev[depth] <= 2:
            return all(p <= 1 for p in cur[depth + 1 :])
    return False


def find_headings(lines: Sequence[str]) -> list[Heading]:
    """Numbered headings that form a consistent numbering, in order."""
    found: list[Heading] = []
    prev: tuple[int, ...] | None = None
    for index, line in enumerate(lines):
        parsed = parse_heading(line)
        if parsed is None:
            continue
        label, number, title = parsed
        if _continues(prev, number):
            found.append(Heading(index, label, title, number))
            prev = number
    # One isolated "1." is a list item more often than a structure.
    return found if len(found) >= 2 else []
