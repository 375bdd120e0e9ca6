from __future__ import annotations

import itertools

from dsv2cli.index.chunking import chunk_document
from dsv2cli.sources.base import Document, Location, Segment


def code_document(path: str, text: str) -> Document:
    lines = text.count("\n") + 1
    return Document(path, "code", [Segment(text, Location(path, line_start=1, line_end=lines))])


def test_python_chunks_follow_top_level_definitions_and_cover_every_line() -> None:
    functions = [f"def f{i}(x):\n" + "".join(f"    x += {j}\n" for j in range(25)) + "    return x\n" for i in range(4)]
    text = '"""Module."""\nimport os\n\n\n' + "\n\n".join(functions)
    chunks = chunk_document(code_document("pkg/m.py", text), max_lines=60)
    lines = text.split("\n")
    assert all(c.text.strip() for c in chunks)
    for chunk in chunks:
        start, end = chunk.location.line_start, chunk.location.line_end
        assert chunk.text == "\n".join(lines[start - 1 : end])
        assert chunk.text.lstrip().startswith(("def ", '"""'))  # boundaries at definitions
    covered = {n for c in chunks for n in range(c.location.line_start, c.location.line_end + 1)}
    assert covered >= {i + 1 for i, line in enumerate(lines) if line.strip()}
    assert any(c.symbol and "f3" in c.symbol for c in chunks)


def test_long_class_splits_at_its_methods() -> None:
    methods = "".join(f"    def m{i}(self):\n" + "        y = 1\n" * 20 + "        return y\n\n" for i in range(5))
    text = "class Big:\n    '''Doc.'''\n\n" + methods
    chunks = chunk_document(code_document("big.py", text), max_lines=40)
    symbols = [c.symbol for c in chunks]
    assert any(s and "Big.m3" in s for s in symbols)
    assert all(len(c.text.split("\n")) <= 40 for c in chunks)


def test_a_definition_longer_than_the_limit_is_windowed_with_overlap() -> None:
    text = "def huge():\n" + "".join(f"    v{i} = {i}\n" for i in range(150))
    chunks = chunk_document(code_document("h.py", text), max_lines=60, overlap=10)
    assert len(chunks) >= 3
    for a, b in itertools.pairwise(chunks):
        assert b.location.line_start <= a.location.line_end  # overlapping windows
    assert chunks[-1].location.line_end == 151


def test_other_languages_split_at_definition_lines() -> None:
    body = "".join(f"  const v{i} = {i};\n" for i in range(30))
    text = f"function alpha() {{\n{body}}}\n\nexport async function beta() {{\n{body}}}\n"
    chunks = chunk_document(code_document("web/app.js", text), max_lines=40)
    assert [c.symbol for c in chunks] == ["alpha", "beta"]


def test_blank_segments_and_empty_files_produce_no_chunks() -> None:
    doc = Document("e.py", "code", [Segment("   \n\n", Location("e.py", line_start=1, line_end=2))])
    assert chunk_document(doc) == []


def test_pages_never_share_a_chunk_and_keep_their_page_number() -> None:
    pages = [Segment(f"Page {n} text about clause {n}.1.\n\nMore.", Location("r.pdf", page=n)) for n in (1, 2, 3)]
    chunks = chunk_document(Document("r.pdf", "pdf", pages))
    assert [c.location.page for c in chunks] == [1, 2, 3]


def test_a_long_page_splits_at_paragraphs_within_the_page() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 100 for i in range(12))
    chunks = chunk_document(Document("r.pdf", "pdf", [Segment(text, Location("r.pdf", page=7))]), max_chars=1200)
    assert len(chunks) > 1
    assert {c.location.page for c in chunks} == {7}
    assert all(len(c.text) <= 1200 for c in chunks)
    assert "".join(c.text for c in chunks).count("Paragraph") == 12


# --- tables in PDF pages ------------------------------------------------------------------------

CASH_FLOW_ROWS = [
    (f"{kind} item {i:02d} of the cash flow statement", 100 + i, 90 + i, 80 + i)
    for i, kind in enumerate(["Operating", "Investing", "Financing"] * 26)
]
CASH_FLOW_ROWS[55] = ("Net cash provided by operating activities", 873, 801, 739)


def cash_flow_page() -> str:
    rows = [f"{label} {a:,}.0 ({b:,}.5) {c:,}.0" for label, a, b, c in CASH_FLOW_ROWS]
    return "\n".join(
        [
            "The statements below were audited.",
            "",
            "Consolidated Statements of Cash Flows",
            "(in millions of USD)",
            "2019 2018 2017",
            *rows,
            "",
            "The accompanying notes are an integral part of these consolidated financial statements and should be "
            "read together with them.",
        ]
    )


def assert_every_piece_has_the_table_head(chunks: list) -> None:  # type: ignore[type-arg]
    with_rows = [c for c in chunks if "of the cash flow statement" in c.text]
    assert len(with_rows) >= 2  # the table really is split
    for chunk in with_rows:
        lines = chunk.text.split("\n")
        assert "Consolidated Statements of Cash Flows" in lines and "(in millions of USD)" in lines
        assert "2019 2018 2017" in lines
        assert lines.index("2019 2018 2017") < min(i for i, line in enumerate(lines) if "cash flow statement" in line)
    rows = [line for c in with_rows for line in c.text.split("\n") if "of the cash flow statement" in line]
    assert len(set(rows)) == len(CASH_FLOW_ROWS) - 1  # every row whole, none cut in the middle
    (answer,) = [c for c in chunks if "Net cash provided by operating activities 873.0 (801.5) 739.0" in c.text]
    assert "2019 2018 2017" in answer.text


def test_a_table_split_across_chunks_carries_its_title_and_years_into_each_piece() -> None:
    page = Document("10k.pdf", "pdf", [Segment(cash_flow_page(), Location("10k.pdf", page=48))])
    chunks = chunk_document(page)
    assert all(c.location.page == 48 and len(c.text) <= 2400 + 100 for c in chunks)
    assert_every_piece_has_the_table_head(chunks)


def test_a_table_in_a_real_pdf_keeps_its_head_in_every_chunk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fpdf import FPDF

    from dsv2cli.sources.pdf import pdf_document

    pdf = FPDF(format=(210, 600))  # one tall page holds the whole statement, as a dense 10-K page does
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=7)
    for line in cash_flow_page().split("\n"):
        pdf.cell(0, 3.4, line, new_x="LMARGIN", new_y="NEXT")
    path = tmp_path / "10k.pdf"
    pdf.output(str(path))
    chunks = chunk_document(pdf_document(path, "10k.pdf"))
    assert {c.location.page for c in chunks} == {1}
    assert_every_piece_has_the_table_head(chunks)


def test_prose_with_years_is_not_taken_for_a_table() -> None:
    text = "\n\n".join(
        f"In 2019 and 2018 the company grew revenue in region {i} while costs stayed flat, as the "
        f"board had planned in 2017; paragraph {i} explains why."
        for i in range(40)
    )
    chunks = chunk_document(Document("r.pdf", "pdf", [Segment(text, Location("r.pdf", page=3))]))
    assert "".join(c.text for c in chunks).replace("\n", "") == text.replace("\n", "")
