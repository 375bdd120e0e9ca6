"""Real PDFs for tests, written with fpdf2: known text on known pages."""

from __future__ import annotations

from collections.abc import Sequence
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
