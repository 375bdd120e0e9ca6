"""Real PDFs for tests, written with fpdf2: known text on known pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

FIXED_DATE = datetime(2025, 1, 1, tzinfo=timezone.utc)


class _Pdf(FPDF):
    def __init__(self, header_text: str | None, page_numbers: bool) -> None:
        super().__init__()
        self.header_text = header_text
        self.page_numbers = page_numbers
        self.set_creation_date(FIXED_DATE)
        self.set_auto_page_break(True, margin=20)

    def header(self) -> None:
        if self.header_text:
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 8, self.header_text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def footer(self) -> None:
        if self.page_numbers:
            self.set_y(-15)
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")


def write_pdf(
    path: Path,
    pages: Sequence[str | None],
    *,
    header: str | None = None,
    page_numbers: bool = False,
    password: str | None = None,
    font_size: int = 11,
) -> Path:
    """One PDF page per item; ``None`` makes a page holding only an image (no text layer).

    Text that does not fit a page flows onto the next one, so keep items short when the test
    depends on page numbers.
    """
    pdf = _Pdf(header, page_numbers)
    for text in pages:
        pdf.add_page()
        if text is None:
            from PIL import Image

            pdf.image(Image.new("RGB", (120, 60), (200, 30, 30)), x=20, y=30, w=120)
            continue
        pdf.set_font("Helvetica", size=font_size)
        pdf.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if password is not None:
        pdf.set_encryption(owner_password=password + "-owner", user_password=password)
    pdf.output(str(path))
    return path


@dataclass(frozen=True)
class Part:
    """One section of a generated manual: its number, title and how many body lines it holds."""

    number: str  # "2.1"
    title: str
    body_lines: int = 3

    @property
    def mark(self) -> str:
        """A word in every body line of this section (and nowhere else): "mark2x1"."""
        return "mark" + self.number.replace(".", "x")


def manual_parts(chapters: int, subsections: int, body_lines: int = 3) -> list[Part]:
    parts: list[Part] = []
    for c in range(1, chapters + 1):
        parts.append(Part(str(c), f"Chapter about topic {c}", body_lines))
        parts.extend(Part(f"{c}.{s}", f"Details of item {c}-{s}", body_lines) for s in range(1, subsections + 1))
    return parts


def write_manual(
    path: Path,
    parts: Sequence[Part],
    *,
    toc: str | None = "leaders",
    outline: bool = False,
    outline_numbers: bool = True,
    heading_numbers: bool = True,
    chapter_pages: bool = True,
    bookmarks: dict[str, str] | None = None,
) -> Path:
    """A manual: a title page, a table of contents, then the body, one heading per part.

    ``toc``: "leaders" ("2.1 Title . . . . 5"), "numbers" ("2.1 Title 5"), "plain" (titles
    only), or None (no contents page). ``outline`` writes PDF bookmarks (fpdf2's
    start_section); ``outline_numbers`` puts the number in the bookmark title too, and
    ``heading_numbers`` in the heading line of the body; ``bookmarks`` (number -> title)
    replaces bookmark titles. Each chapter starts a page when
    ``chapter_pages``. Body lines carry ``Part.mark``, so a test can tell whose text a segment holds.
    """
    pdf = _Pdf(None, False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=16)
    title = "Harbour Operations Manual\nEdition for the northern ports"
    pdf.multi_cell(0, 10, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if toc is not None:
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, 6, "Table of Contents", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for n, part in enumerate(parts):
            entry = f"{part.number} {part.title}"
            page = 3 + n // 4
            if toc == "leaders":
                entry = f"{entry} {'. ' * 20}{page}"
            elif toc == "numbers":
                entry = f"{entry} {page}"
            pdf.multi_cell(0, 5, entry, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=11)
    first = True
    for part in parts:
        chapter = "." not in part.number
        if first or (chapter and chapter_pages):
            pdf.add_page()
        first = False
        if outline:
            level = part.number.count(".")
            title = f"{part.number} {part.title}" if outline_numbers else part.title
            pdf.start_section((bookmarks or {}).get(part.number, title), level=level)
        heading = f"{part.number} {part.title}" if heading_numbers else part.title
        pdf.multi_cell(0, 7, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for k in range(part.body_lines):
            line = f"The harbour office logs {part.mark} readings on day {k + 1} of the season."
            pdf.multi_cell(0, 6, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.output(str(path))
    return path
