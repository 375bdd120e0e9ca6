"""Split Documents into located, hashed, never-empty chunks that follow the text's structure.

Code splits at top-level definitions (Python through ``ast``, other languages through line
heuristics); small neighbouring definitions are grouped, long ones are windowed with overlap.
Prose splits at paragraphs, never across pages. Every chunk keeps a Location precise enough to
cite and a content hash that names it in the index.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..sources.base import Document, Location, Segment

# Bumped whenever chunk boundaries change, so existing indexes are re-chunked.
# 3: a table split across chunks carries its title and column-header rows into every piece.
CHUNKER_VERSION = 3

# Retrieval recall was measured on 60-line chunks (20 code questions over five Python packages);
# MiniLM sees at most 512 tokens of them.
MAX_LINES = 60
MAX_CHARS = 2400
OVERLAP_LINES = 10

CODE_SUFFIXES = {
    ".py",
    ".pyi",
    ".js",
    ".jsx",
    ".ts",
    ".tsx",
    ".mjs",
    ".cjs",
    ".go",
    ".rs",
    ".java",
    ".kt",
    ".kts",
    ".scala",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cxx",
    ".cs",
    ".rb",
    ".php",
    ".swift",
    ".m",
    ".sh",
    ".bash",
    ".lua",
    ".pl",
    ".r",
    ".jl",
    ".ex",
    ".exs",
    ".erl",
    ".hs",
    ".ml",
    ".sql",
    ".zig",
    ".dart",
}

# A line that starts a top-level definition in a C-like, Go, Rust, Ruby, JS/TS... file.
_DEFINITION = re.compile(
    r"^(?:export\s+)?(?:default\s+)?(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:static\s+)?(?:public\s+|private\s+|"
    r"protected\s+|internal\s+)?(?:abstract\s+|final\s+|unsafe\s+)?"
    r"(?:def|class|function|func|fn|impl|trait|struct|enum|interface|module|type|const|let|var|object|"
    r"record|namespace|template|package|macro_rules!)\b"
)
# C/C++/Java style function heads at column 0: "int main(", "static void foo(".
_C_FUNCTION = re.compile(r"^[A-Za-z_][\w\s\*&:<>,\[\]]*\s[\*&]?[A-Za-z_][\w:]*\s*\([^;]*$")


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a document."""

    text: str
    location: Location
    ordinal: int = 0  # position within its document, for source ordering
    symbol: str | None = None  # the definition(s) it holds, for code
    # For a later window of a long definition: its head (signature, docstring summary), which
    # the window itself no longer shows. Indexed and embedded with the text, never packed.
    context: str | None = None
    hash: str = field(default="", compare=False)  # of index_text: names the chunk's vector

    def __post_init__(self) -> None:
        if not self.hash:
            object.__setattr__(self, "hash", content_hash(self.index_text))

    @property
    def index_text(self) -> str:
        """What BM25 and the embedder see."""
        return f"{self.context}\n{self.text}" if self.context else self.text


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class _Block:
    start: int  # 0-based index into lines, inclusive
    end: int  # exclusive
    symbol: str | None = None


def chunk_document(
    document: Document, *, max_lines: int = MAX_LINES, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_LINES
) -> list[Chunk]:
    """All chunks of a document, in source order, none empty or whitespace-only."""
    chunks: list[Chunk] = []
    is_code = document.kind == "code" or _suffix(document.source) in CODE_SUFFIXES
    for segment in document.segments:
        if not segment.text.strip():
            continue
        if segment.location.page is not None:
            pieces = _chunk_page(segment, max_chars)
        else:
            pieces = _chunk_lines(segment, is_code, max_lines, max_chars, overlap)
        for text, location, symbol, context in pieces:
            if text.strip():
                chunks.append(Chunk(text, location, len(chunks), symbol, context))
    return chunks


def _suffix(source: str) -> str:
    dot = source.rfind(".")
    return source[dot:].lower() if dot > source.rfind("/") else ""


def _chunk_lines(
    segment: Segment, is_code: bool, max_lines: int, max_chars: int, overlap: int
) -> Iterable[tuple[str, Location, str | None, str | None]]:
    lines = segment.text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first_line = segment.location.line_start or 1
    if is_code:
        python = _suffix(segment.location.source) in (".py", ".pyi")
        blocks = _python_blocks(segment.text, len(lines), max_lines) if python else None
        if blocks is None:
            blocks = _heuristic_blocks(lines)
    else:
        blocks = _paragraph_blocks(lines)
    for start, end, symbol, context in _pack_blocks(blocks, lines, max_lines, max_chars, overlap):
        text = "\n".join(lines[start:end])
        location = Location(
            segment.location.source,
            line_start=first_line + start,
            line_end=first_line + end - 1,
            section=segment.location.section,
        )
        yield text, location, symbol, context


def _python_blocks(text: str, n_lines: int, max_lines: int) -> list[_Block] | None:
    """Top-level statements of a Python module (decorators attached); a class too long for one
    chunk is split at its methods, each named ``Class.method``."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    starts: list[tuple[int, str | None]] = []

    def start_of(node: ast.stmt) -> int:
        decorators: list[ast.expr] = getattr(node, "decorator_list", [])
        return min([node.lineno - 1, *(d.lineno - 1 for d in decorators)])

    for node in tree.body:
        name = getattr(node, "name", None)
        name = name if isinstance(name, str) else None
        starts.append((start_of(node), name))
        end = getattr(node, "end_lineno", None) or node.lineno
        if isinstance(node, ast.ClassDef) and end - node.lineno + 1 > max_lines:
            for child in node.body[1:]:
                child_name = getattr(child, "name", None)
                label = f"{name}.{child_name}" if isinstance(child_name, str) else name
                starts.append((start_of(child), label))
    return _blocks_from_starts(starts, n_lines)


def _heuristic_blocks(lines: list[str]) -> list[_Block]:
    starts: list[tuple[int, str | None]] = []
    for i, line in enumerate(lines):
        if _DEFINITION.match(line) or _C_FUNCTION.match(line):
            match = re.search(r"([A-Za-z_][\w]*)\s*[\(<{:=]", line)
            starts.append((i, match.group(1) if match else None))
    return _blocks_from_starts(starts, len(lines))


def _blocks_from_starts(starts: list[tuple[int, str | None]], n_lines: int) -> list[_Block]:
    """Blocks from definition starts; comments/blank lines just above a start join that block."""
    blocks: list[_Block] = []
    previous = 0
    for index, (start, _symbol) in enumerate(starts):
        if index == 0 and start > 0:
            blocks.append(_Block(0, start))
        if index > 0:
            blocks.append(_Block(previous, start, starts[index - 1][1]))
        previous = start
    if starts:
        blocks.append(_Block(previous, n_lines, starts[-1][1]))
    else:
        blocks.append(_Block(0, n_lines))
    return [b for b in blocks if b.end > b.start]


def _paragraph_blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    start: int | None = None
    for i, line in enumerate(lines):
        if line.strip():
            if start is None:
                start = i
        elif start is not None:
            blocks.append(_Block(start, i))
            start = None
    if start is not None:
        blocks.append(_Block(start, len(lines)))
    return blocks


def _pack_blocks(
    blocks: list[_Block], lines: list[str], max_lines: int, max_chars: int, overlap: int
) -> Iterable[tuple[int, int, str | None, str | None]]:
    """Group consecutive small blocks up to the limits; window blocks that exceed them."""

    def size(start: int, end: int) -> int:
        return sum(len(line) + 1 for line in lines[start:end])

    group: list[_Block] = []
    for block in blocks:
        if block.end - block.start > max_lines or size(block.start, block.end) > max_chars:
            if group:
                yield _emit(group)
                group = []
            yield from _windows(block, lines, max_lines, max_chars, overlap)
            continue
        if group and (block.end - group[0].start > max_lines or size(group[0].start, block.end) > max_chars):
            yield _emit(group)
            group = []
        group.append(block)
    if group:
        yield _emit(group)


def _emit(group: list[_Block]) -> tuple[int, int, str | None, str | None]:
    names = [b.symbol for b in group if b.symbol]
    return group[0].start, group[-1].end, ", ".join(names) if names else None, None


def _head(block: _Block, lines: list[str]) -> str:
    """The first line of a definition (past decorators) and its docstring's first line, if any."""
    head: list[str] = []
    for i in range(block.start, min(block.end, block.start + 8)):
        text = lines[i].strip()
        if not head and (not text or text.startswith("@")):
            continue
        if not head:
            head.append(text)
            continue
        if text.startswith(('"""', "'''", "/**", "///", "//", "#")):
            doc = text.strip("\"'/*# ")
            if doc:
                head.append(doc)
            elif i + 1 < block.end:
                head.append(lines[i + 1].strip())
            break
    return " ".join(head)


def _windows(
    block: _Block, lines: list[str], max_lines: int, max_chars: int, overlap: int
) -> Iterable[tuple[int, int, str | None, str | None]]:
    head = _head(block, lines) if block.symbol else ""
    start = block.start
    while start < block.end:
        end = start
        chars = 0
        while end < block.end and end - start < max_lines:
            if chars + len(lines[end]) + 1 > max_chars and end > start:
                break
            chars += len(lines[end]) + 1
            end += 1
        yield start, end, block.symbol, (head or None) if start > block.start else None
        if end >= block.end:
            break
        start = max(end - overlap, start + 1)


# Financial statements in PDF text: a row is a label followed by numeric cells ("Revenue 2,985.7
# 2,893.0", "Finance costs (126.2) (120.0)", "Margin 12.5% 11.0%", a dash for nil); a column-header
# row is two or more years ("2025 2024 2023", "Fiscal 2019 Fiscal 2018").
_CELL = r"(?:\(?[-\u2212]?[$\u20ac\u00a3]?\s?\d[\d,]*(?:\.\d+)?\)?%?|[-\u2013\u2014])"
_ROW = re.compile(rf"^\S.*?\s{_CELL}(?:\s+{_CELL})+\s*$")
_YEARS = re.compile(r"(?<![\d,.])(?:19|20)\d\d(?![\d,.])")
_HEADER_MAX_CHARS = 120
_TITLE_MAX_CHARS = 100


def _is_header(line: str) -> bool:
    """A column-header row: two or more years and little else."""
    years = _YEARS.findall(line)
    return len(years) >= 2 and len(line) <= _HEADER_MAX_CHARS and len(_YEARS.sub("", line).split()) <= 2 * len(years)


def _table_heads(lines: list[str]) -> list[str | None]:
    """For each line of a page: the title and column-header lines of the table it is a row of
    (None outside tables and for the header itself). A table starts at a header row; its title is
    the short non-row lines just above; long prose ends it."""
    heads: list[str | None] = [None] * len(lines)
    current: str | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if _is_header(text):
            title: list[str] = []
            for above in reversed(lines[max(0, i - 3) : i]):
                above = above.strip()
                if not above or _ROW.match(above) or len(above) > _TITLE_MAX_CHARS:
                    break
                title.insert(0, above)
            current = "\n".join([*title, text])
        elif current is not None and text and not _ROW.match(text) and len(text) > _TITLE_MAX_CHARS:
            current = None  # prose: the table ended
        elif current is not None and text:
            heads[i] = current
    return heads


def _page_units(text: str) -> list[tuple[str, str, str | None]]:
    """(text, separator before it, table head) pieces of a page in order: a paragraph, or, for a
    paragraph holding table rows, each of its lines, so a cut falls between rows."""
    lines = text.split("\n")
    heads = _table_heads(lines)
    units: list[tuple[str, str, str | None]] = []
    block: list[int] = []

    def flush() -> None:
        if not block:
            return
        if any(heads[i] for i in block):
            for k, i in enumerate(block):
                units.append((lines[i].strip(), "\n\n" if k == 0 else "\n", heads[i]))
        else:
            units.append(("\n".join(lines[i] for i in block).strip(), "\n\n", None))
        block.clear()

    for i, line in enumerate(lines):
        if line.strip():
            block.append(i)
        else:
            flush()
    flush()
    return [u for u in units if u[0]]


def _chunk_page(segment: Segment, max_chars: int) -> Iterable[tuple[str, Location, str | None, str | None]]:
    """A page stays whole when small; otherwise its paragraphs are grouped, never across the page.
    A table is cut between rows, and every piece after the first starts with the table's title
    and column-header rows, so a figure and its year are in the same passage."""
    text = segment.text.strip()
    if len(text) <= max_chars:
        yield text, segment.location, None, None
        return
    group: list[str] = []
    size = 0

    def emit() -> str:
        return "".join(group).strip()

    for unit, separator, head in _page_units(text):
        while len(unit) > max_chars:  # one huge paragraph: cut at a sentence or space
            cut = unit.rfind(". ", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 2 else max(unit.rfind(" ", 0, max_chars), max_chars // 2)
            if group:
                yield emit(), segment.location, None, None
                group, size = [], 0
            yield unit[:cut].strip(), segment.location, None, None
            unit = unit[cut:].strip()
        if group and size + len(separator) + len(unit) > max_chars:
            yield emit(), segment.location, None, None
            group, size = [], 0
        if not unit:
            continue
        if not group and head is not None:
            group.append(head)  # the table's title and years, again, above its continued rows
            size = len(head)
            separator = "\n"
        group.append((separator if group else "") + unit)
        size += len(separator) + len(unit)
    if group:
        yield emit(), segment.location, None, None
