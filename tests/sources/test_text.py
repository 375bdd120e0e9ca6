"""Text, markdown, HTML and standard input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dsv2cli.errors import InputError
from dsv2cli.sources import load, load_inputs
from dsv2cli.sources.text import MAX_SEGMENT_CHARS

MARKDOWN = """# Tide Report

Intro paragraph.

## 1. Harbour

Harbour text.

```python
# not a heading: inside a code fence
x = 1
```

## 2. Channel

Channel text.
"""


def test_markdown_splits_at_headings_with_line_ranges(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text(MARKDOWN)
    doc = load(str(path))
    assert doc.kind == "markdown"
    spans = [(s.location.line_start, s.location.line_end, s.location.section) for s in doc.segments]
    assert spans == [(1, 3, None), (5, 12, "1"), (14, 16, "2")]
    lines = MARKDOWN.split("\n")
    for s in doc.segments:
        assert s.text == "\n".join(lines[s.location.line_start - 1 : s.location.line_end])
    assert doc.segments[1].location.cite() == f"{path} § 1"


def test_plain_text_with_numbered_clauses_gets_sections(tmp_path: Path) -> None:
    text = "TERMS OF HIRE\n\n1. Hire Period\nThe boat is hired for 7 days.\n\n2. Deposit\n2.1 A deposit is due.\n"
    path = tmp_path / "terms.txt"
    path.write_text(text)
    doc = load(str(path))
    assert [(s.location.section, s.location.line_start) for s in doc.segments] == [
        (None, 1),
        ("1", 3),
        ("2", 6),
        ("2.1", 7),
    ]


def test_long_text_without_structure_is_cut_at_paragraphs(tmp_path: Path) -> None:
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 10
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(f"{n} {paragraph}" for n in range(100)))
    doc = load(str(path))
    assert len(doc.segments) > 5
    assert all(len(s.text) <= MAX_SEGMENT_CHARS for s in doc.segments)
    assert all(not s.text.startswith("\n") and not s.text.endswith("\n") for s in doc.segments)
    assert doc.text == path.read_text()


def test_one_huge_line_is_still_one_segment_without_crashing(tmp_path: Path) -> None:
    path = tmp_path / "oneline.txt"
    path.write_text("x" * (MAX_SEGMENT_CHARS * 3))
    doc = load(str(path))
    assert len(doc.segments) == 1 and doc.segments[0].location.line_end == 1


def test_latin1_text_is_detected_and_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    text = "Le café de la gare coûte 3 €. Les élèves étudient à l'école près du marché. " * 4
    path.write_bytes(text.encode("cp1252"))
    doc = load(str(path))
    assert "café" in doc.text and "élèves" in doc.text
    assert len(doc.warnings) == 1 and "not valid UTF-8" in doc.warnings[0]


def test_invalid_bytes_never_crash(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"Valid start. \xff\xfe\xfd broken \xc3\x28 bytes, then ASCII again.\n")
    doc = load(str(path))
    assert doc.text.startswith("Valid start.") and "ASCII again." in doc.text
    assert doc.warnings


def test_utf16_with_bom_is_text(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_bytes("Grüße aus Kiel\n".encode("utf-16"))
    assert load(str(path)).text == "Grüße aus Kiel"


def test_stdin_is_read_once_and_named(tmp_path: Path) -> None:
    doc = load("-", io.BytesIO(b"# Piped\n\nHello from a pipe.\n"))
    assert doc.source == "<stdin>"
    assert doc.segments[0].location.cite() == "<stdin>:1-3"
    with pytest.raises(InputError, match="only once"):
        load_inputs(["-", "-"], io.BytesIO(b"x"))


def test_empty_and_binary_inputs_are_input_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(InputError, match="empty"):
        load(str(empty))
    with pytest.raises(InputError, match="binary"):
        load(str(binary))
    with pytest.raises(InputError, match="no such file"):
        load(str(tmp_path / "missing.txt"))


HTML = b"""<!doctype html><html><head><title>Ferry Notice</title>
<style>body { color: red }</style><script>alert("boo")</script></head>
<body><nav>Home | About</nav>
<h1>Ferry Notice</h1><p>Sailings to <b>Vellmar</b> resume on&nbsp;3&nbsp;March &amp; run hourly.</p>
<h2>Fares</h2><table><tr><th>Ticket</th><th>Price</th></tr><tr><td>Adult</td><td>EUR 12</td></tr></table>
<ul><li>Bikes free</li><li>Dogs EUR 2</li></ul><noscript>Enable JS</noscript>
</body></html>"""


def test_html_tags_are_stripped_and_scripts_dropped(tmp_path: Path) -> None:
    path = tmp_path / "notice.html"
    path.write_bytes(HTML)
    doc = load(str(path))
    assert doc.kind == "html"
    text = doc.text
    assert "Sailings to Vellmar resume on 3 March & run hourly." in text
    assert "Adult | EUR 12" in text
    assert "- Bikes free\n- Dogs EUR 2" in text
    for gone in ("alert", "color: red", "<b>", "Enable JS", "Home | About"):
        assert gone not in text
    assert [s.text.splitlines()[0] for s in doc.segments] == ["# Ferry Notice", "## Fares"]


def test_html_on_stdin_is_recognised() -> None:
    doc = load("-", io.BytesIO(HTML))
    assert doc.kind == "html" and "<td>" not in doc.text


def test_html_declared_charset_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "old.htm"
    path.write_bytes('<html><head><meta charset="iso-8859-1"></head><body><p>Smørrebrød</p></body></html>'
                     .encode("latin-1"))  # fmt: skip
    assert "Smørrebrød" in load(str(path)).text


def test_content_hash_follows_the_text(tmp_path: Path) -> None:
    a = load("-", io.BytesIO(b"same words"))
    b = load("-", io.BytesIO(b"same words"))
    c = load("-", io.BytesIO(b"other words"))
    assert a.content_hash == b.content_hash != c.content_hash
    assert len(a.content_hash) == 64
