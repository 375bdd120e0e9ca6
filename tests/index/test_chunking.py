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
