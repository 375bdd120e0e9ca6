"""Budgets, context rendering and chunking.

The guarantee: prompt tokens + reserved output tokens <= the context window, counted with
the model's own tokenizer on the exact token ids that will be sent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from .errors import ContextOverflowError, UsageError
from .sources.base import Document, Location, Segment

# Document text is data: neutralise anything that could close or open our delimiters.
_DELIMITER = re.compile(r"<(/?)(document)\b", re.IGNORECASE)


def escape_data(text: str) -> str:
    """Make ``<document`` / ``</document`` inside data inert (``<\\document``, ``<\\/document``)."""
    return _DELIMITER.sub(lambda m: "<\\" + m.group(1) + m.group(2), text)


def quote_attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    )


def document_tags(source: str) -> tuple[str, str]:
    """The opening and closing delimiters of one ``<document>`` block, the source attribute quoted."""
    return f'<document source="{quote_attr(source)}">\n', "\n</document>"


def render_block(source: str, body: str) -> str:
    """One delimited block: ``<document source="...">``, the body, ``</document>``.

    The body is escaped (``escape_data``, which leaves escaped text as it is) so that nothing in
    it can close the block or open another. Every ``<document>`` the model sees is written here
    or, split into parts to be counted, by ``document_parts`` with the same tags.
    """
    head, tail = document_tags(source)
    return head + escape_data(body) + tail


def marker(loc: Location) -> str | None:
    """``[p. 4]``, ``[§ 8.2, p. 4]`` or ``[§ 8.2]``: written like the citations we ask for."""
    parts = []
    if loc.section:
        parts.append(f"§ {loc.section}")
    if loc.page is not None:
        parts.append(f"p. {loc.page}")
    return f"[{', '.join(parts)}]" if parts else None


def number_lines(text: str, first: int) -> str:
    """``  12 | code``: line numbers so answers can cite ``path:line``."""
    lines = text.split("\n")
    width = len(str(first + len(lines) - 1))
    return "\n".join(f"{n:>{width}} | {line}" for n, line in enumerate(lines, first))


def render_body(seg: Segment, numbered: bool = False) -> str:
    """One segment as the model sees it: its marker, then its text (line-numbered for code)."""
    text = escape_data(seg.text)
    if numbered and seg.location.line_start is not None:
        text = number_lines(text, seg.location.line_start)
    label = marker(seg.location)
    return (f"{label}\n{text}" if label else text).strip("\n")


# One piece of a rendered context and the segment it carries (None: a document with no text).
Part = tuple[Segment | None, str]


def document_parts(source: str, segments: Sequence[Segment], numbered: bool = False) -> list[Part]:
    """A document as consecutive parts, one per non-empty segment; their concatenation is the document.

    Segments are separated by a blank line, and the cut between two parts falls inside it: each
    part ends with a newline and the next begins with one. Cut there, the two halves tokenize as
    the whole does for the tokenizers we use (see ``tokens.Tokenizer.splits_in_blank_lines``), so
    counts per part add up to the count of the context.
    """
    header, footer = document_tags(source)
    bodies = [(seg, body) for seg in segments if (body := render_body(seg, numbered))]
    if not bodies:
        return [(None, render_block(source, ""))]
    last = len(bodies) - 1
    return [
        (seg, (header if i == 0 else "\n") + body + (footer if i == last else "\n"))
        for i, (seg, body) in enumerate(bodies)
    ]


def render_segments(source: str, segments: Sequence[Segment], numbered: bool = False) -> str:
    """Segments of one source between markers: page/section markers, or line numbers for code."""
    return "".join(text for _, text in document_parts(source, segments, numbered))


def blocks(doc: Document) -> list[tuple[str, list[Segment], bool]]:
    """(source, segments, numbered) of each ``<document>`` block a document is rendered as.

    Code is line-numbered. A directory read as one document (``sources.load`` of a directory, kind
    "repo", as ``extract DIR`` does) is rendered file by file, like the files of ``--repo``, so
    every line can still be cited as ``path:line``.
    """
    if doc.kind == "repo":
        return [
            (source, list(segments), True)
            for source, segments in itertools.groupby(doc.segments, key=lambda s: s.location.source)
        ]
    return [(doc.source, list(doc.segments), doc.kind == "code")]


def render_document(doc: Document) -> str:
    return "".join(text for _, text in context_parts([doc]))


def context_parts(docs: Sequence[Document]) -> list[Part]:
    """``render_context`` as parts: ``"".join(text for _, text in context_parts(d)) == render_context(d)``."""
    parts: list[Part] = []
    for source, segments, numbered in (block for doc in docs for block in blocks(doc)):
        doc_parts = document_parts(source, segments, numbered)
        if parts:  # the blank line between documents, cut in the middle like the one between segments
            parts[-1] = (parts[-1][0], parts[-1][1] + "\n")
            doc_parts[0] = (doc_parts[0][0], "\n" + doc_parts[0][1])
        parts.extend(doc_parts)
    return parts


def render_context(docs: Sequence[Document]) -> str:
    return "".join(text for _, text in context_parts(docs))


@dataclass(frozen=True)
class ContextCount:
    """Exact tokens of ``render_context(docs)``, and of each part as it stands in that context."""

    tokens: int
    parts: list[tuple[Segment | None, int]]

    def segment_tokens(self) -> dict[int, int]:
        """``id(segment)`` -> tokens (its marker, line numbers, and its share of tags and blank lines)."""
        return {id(seg): n for seg, n in self.parts if seg is not None}


# (texts) -> (exact tokens of "".join(texts), tokens of each text): ``tokens.CountCache.count_joined``.
CountJoined = Callable[[Sequence[str]], tuple[int, list[int]]]


def count_context(docs: Sequence[Document], count_joined: CountJoined) -> ContextCount:
    """Count the packed context part by part (see ``tokens.CountCache.count_joined``), never twice."""
    parts = context_parts(docs)
    total, counts = count_joined([text for _, text in parts])
    return ContextCount(total, [(seg, n) for (seg, _), n in zip(parts, counts, strict=True)])


def joined_by(count: Callable[[str], int]) -> CountJoined:
    """``count_joined`` for a bare tokenizer, without a count cache: the whole counted exactly
    (cuts between parts can merge tokens), and each part on its own."""

    def count_joined(texts: Sequence[str]) -> tuple[int, list[int]]:
        return count("".join(texts)), [count(t) for t in texts]

    return count_joined


@dataclass(frozen=True)
class Budget:
    """Token arithmetic for one model call.

    window:   the context size (n_ctx)
    output:   tokens reserved for the answer (--max-tokens)
    overhead: prompt tokens that are not the document (chat template, instructions)
    """

    window: int
    output: int
    overhead: int

    def __post_init__(self) -> None:
        if self.output >= self.window:
            raise UsageError(f"--max-tokens {self.output} leaves no room in a {self.window}-token window")
        if self.overhead < 0:
            raise ValueError("overhead must be >= 0")

    @property
    def prompt(self) -> int:
        """Most prompt tokens allowed."""
        return self.window - self.output

    @property
    def document(self) -> int:
        """Most document tokens allowed (may be <= 0 when the template alone is too big)."""
        return self.prompt - self.overhead

    def fits(self, document_tokens: int) -> bool:
        return document_tokens <= self.document


# How far a context's own count may stand from its share of the prompt it is put in (tokens can
# merge where the template meets the context). Planners choose a strategy from the context's
# counts; within this many tokens over the budget they build the prompt and count it exactly first.
TEMPLATE_JOIN_SLACK = 16


def near_budget(document_tokens: int, budget: Budget) -> bool:
    """Over ``budget.document`` by so little that only the exact prompt can tell whether it fits."""
    return budget.document < document_tokens <= budget.document + TEMPLATE_JOIN_SLACK


def ensure_fits(prompt_tokens: int, window: int, output: int, *, document_tokens: int, source: str) -> None:
    """Raise ContextOverflowError unless ``prompt_tokens + output <= window``."""
    if prompt_tokens + output <= window:
        return
    budget = window - output - (prompt_tokens - document_tokens)
    raise ContextOverflowError(
        f"{source}: input is {document_tokens} tokens but the document budget is {max(budget, 0)} "
        f"(window {window} - {output} reserved for output - {prompt_tokens - document_tokens} prompt "
        f"template); it does not fit: use a larger --ctx, a smaller --max-tokens, or a shorter input",
        input_tokens=document_tokens,
        window=window,
        budget=max(budget, 0),
    )


# -- Chunking: a context too big for one prompt, cut along its own structure ----------------
#
# Pieces (a page, a section, part of a file) are counted once each and packed greedily, in
# order, into chunks that fill a budget: every segment lands in exactly one chunk, nothing is
# dropped or repeated. Map-reduce summaries and chunked extraction both use this chunker.

# Slack for tokens that per-piece counts cannot see (the joins between pieces).
PIECE_JOIN_TOKENS = 2

Count = Callable[[str], int]
P = TypeVar("P")  # what a chunk is made into (its prompt)


@dataclass(frozen=True)
class Piece:
    source: str
    segment: Segment
    tokens: int
    numbered: bool = False  # code: rendered with line numbers
    header_tokens: int = 0  # the <document source=...> / </document> pair around this source


@dataclass
class PackedChunk:
    """Consecutive pieces sent in one prompt (a map-reduce part, an extraction chunk); not the
    retrieval index's ``index.chunking.Chunk``."""

    pieces: list[Piece]

    @property
    def tokens(self) -> int:
        headers = {p.source: p.header_tokens for p in self.pieces}
        return sum(p.tokens + PIECE_JOIN_TOKENS for p in self.pieces) + sum(headers.values())

    def label(self) -> str:
        return span_label([p.source for p in self.pieces], [p.segment.location for p in self.pieces])

    def render(self) -> str:
        rendered: list[str] = []
        run: list[Piece] = []
        for piece in self.pieces:
            if run and piece.source != run[0].source:
                rendered.append(render_segments(run[0].source, [p.segment for p in run], run[0].numbered))
                run = []
            run.append(piece)
        if run:
            rendered.append(render_segments(run[0].source, [p.segment for p in run], run[0].numbered))
        return "\n\n".join(rendered)


def span_label(sources: Sequence[str], locations: Sequence[Location]) -> str:
    """``report.pdf p. 3-5``, ``notes.txt:1-80``, ``a.md:1-9; b.md:1-4``."""
    out: list[str] = []
    for source in dict.fromkeys(sources):
        locs = [loc for s, loc in zip(sources, locations, strict=True) if s == source]
        pages = [loc.page for loc in locs if loc.page is not None]
        starts = [loc.line_start for loc in locs if loc.line_start is not None]
        ends = [loc.line_end or loc.line_start for loc in locs if loc.line_start is not None]
        if pages:
            lo, hi = min(pages), max(pages)
            out.append(f"{source} p. {lo}" + (f"-{hi}" if hi != lo else ""))
        elif starts:
            out.append(f"{source}:{min(starts)}-{max(e for e in ends if e is not None)}")
        else:
            out.append(source)
    return "; ".join(out)


def piece_tokens(segment: Segment, count: Count, numbered: bool = False) -> int:
    """Tokens of a segment exactly as ``render_segments`` writes it (marker, line numbers, escaping)."""
    return count(render_body(segment, numbered))


def split_segment(segment: Segment, limit: int, count: Count, numbered: bool = False) -> list[Segment]:
    """Split one segment into pieces of at most ``limit`` tokens: paragraphs, then lines, then characters."""
    return [piece for piece, _ in split_counted(segment, limit, count, numbered)]


def split_counted(segment: Segment, limit: int, count: Count, numbered: bool = False) -> list[tuple[Segment, int]]:
    """``split_segment``, with the tokens of each piece.

    Pieces are filled greedily in order. A paragraph too big for a piece of its own starts a new
    piece and goes line by line; a line too big is cut by characters, each part a piece. Each
    piece is found with a handful of exact counts (doubling, then halving, the number of
    paragraphs or lines it takes), not one count per paragraph or line added: on a 3,600-line
    file that was thousands of counts of ever longer texts. A text of fewer bytes than ``limit``
    fits without a count: every token covers at least one byte (one more for a SentencePiece
    vocabulary's leading space).
    """
    whole = piece_tokens(segment, count, numbered)
    if whole <= limit:
        return [(segment, whole)]
    lines = segment.text.split("\n")
    base = segment.location.line_start
    blocks: list[tuple[int, list[str]]] = []  # paragraphs as (first line index, lines)
    start = 0
    for i, line in enumerate([*lines, ""]):
        if line.strip() == "" or i == len(lines):
            if i > start:
                blocks.append((start, lines[start:i]))
            start = i + 1

    def entries_text(entries: list[tuple[int, str]]) -> Segment:
        loc = segment.location
        if base is not None:
            loc = replace(loc, line_start=base + entries[0][0], line_end=base + entries[-1][0])
        return Segment("\n".join(t for _, t in entries), loc)

    counted: dict[str, int] = {}  # rendered piece -> tokens, for the pieces chosen

    def fits(entries: list[tuple[int, str]]) -> bool:
        body = render_body(entries_text(entries), numbered)
        if len(body.encode("utf-8", "surrogatepass")) < limit:
            return True
        tokens = counted[body] = count(body)
        return tokens <= limit

    # Units in order: (kind, (line index, text) entries). "para" joins a piece after a blank
    # line; "line" (of a paragraph too big alone) joins with a newline and its first one
    # ("first") starts a piece; "hard" (part of a line too big alone) is a piece by itself.
    units: list[tuple[str, list[tuple[int, str]]]] = []
    for first, block in blocks:
        block_lines = [(first + k, t) for k, t in enumerate(block)]
        if fits(block_lines):
            units.append(("para", block_lines))
            continue
        for n, entry in enumerate(block_lines):
            if fits([entry]):
                units.append(("first" if n == 0 else "line", [entry]))
            else:
                units.extend(("hard", [(entry[0], part)]) for part in _hard_split(entry[1], limit, count))

    def joined(i: int, j: int) -> list[tuple[int, str]]:
        entries: list[tuple[int, str]] = []
        for kind, unit in units[i:j]:
            if entries and kind == "para":
                entries.append((unit[0][0] - 1, ""))
            entries.extend(unit)
        return entries

    pieces: list[tuple[Segment, int]] = []
    i = 0
    while i < len(units):
        # The piece takes units[i:j]: units[i] fits alone; find the largest j before the next
        # unit that starts a piece, doubling the step while it fits, then halving.
        stop = i + 1
        if units[i][0] != "hard":
            while stop < len(units) and units[stop][0] not in ("first", "hard"):
                stop += 1
        good, step = i + 1, 1
        while good + step <= stop and fits(joined(i, good + step)):
            good, step = good + step, step * 2
        bad = min(good + step, stop + 1)
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(joined(i, mid)):
                good = mid
            else:
                bad = mid
        piece = entries_text(joined(i, good))
        piece = replace(piece, text=piece.text.strip("\n"))
        body = render_body(piece, numbered)
        pieces.append((piece, counted[body] if body in counted else count(body)))
        i = good
    return [(p, n) for p, n in pieces if p.text.strip()]


def _hard_split(text: str, limit: int, count: Count) -> list[str]:
    """Cut one line too big for a piece into parts of at most ``limit - 8`` tokens.

    Each part is sized from the one before (doubled while it fits, then cut by quarters until
    it does), so every count is of about one part's length: linear in the line. Shrinking from
    the whole rest of the line each time made a 2 MB line take 78 s."""
    parts: list[str] = []
    room = limit - 8
    size = max(16, room * 2)  # characters: a first guess, most tokens cover 2-4 of them
    at = 0
    while at < len(text):
        while at + size < len(text) and count(text[at : at + 2 * size]) <= room:
            size *= 2
        size = min(size, len(text) - at)
        while size > 1 and count(text[at : at + size]) > room:
            size = size * 3 // 4
        parts.append(text[at : at + size])
        at += size
    return parts


def make_pieces(
    docs: Sequence[Document], limit: int, count: Count, known: Mapping[int, int] | None = None
) -> list[Piece]:
    """The pieces of ``docs``, each at most ``limit`` tokens with its document's tags.

    ``known``: tokens per ``id(segment)`` already counted in the context
    (``ContextCount.segment_tokens``), used instead of counting each segment again. Such a count
    also takes in the newlines around the segment and, at a document's ends, its tags: a few
    tokens more than the piece alone, so chunks come out a few tokens short of full, never over
    (the prompts built from them are counted exactly: ``fit_halving``). A segment it says is too
    big is counted on its own before it is split.
    """
    pieces: list[Piece] = []
    for source, segments, numbered in (block for doc in docs for block in blocks(doc)):
        header = count(render_segments(source, [])) + PIECE_JOIN_TOKENS
        for segment in segments:
            if not segment.text.strip():
                continue
            tokens = known.get(id(segment)) if known is not None else None
            if tokens is None:
                tokens = piece_tokens(segment, count, numbered)
            if tokens <= limit - header:  # the usual case (a page, a section): counted once
                pieces.append(Piece(source, segment, tokens, numbered, header))
                continue
            for part, part_tokens in split_counted(segment, limit - header, count, numbered):
                pieces.append(Piece(source, part, part_tokens, numbered, header))
    return pieces


def plan_chunks(pieces: Sequence[Piece], budget: int) -> list[PackedChunk]:
    """Greedy, in order: consecutive pieces fill a chunk up to ``budget`` tokens (a pure function)."""
    chunks: list[PackedChunk] = []
    current = PackedChunk([])
    for piece in pieces:
        candidate = PackedChunk([*current.pieces, piece])
        if current.pieces and candidate.tokens > budget:
            chunks.append(current)
            current = PackedChunk([piece])
        else:
            current = candidate
    if current.pieces:
        chunks.append(current)
    return chunks


def fit_halving(
    chunks: Sequence[PackedChunk], build: Callable[[PackedChunk], P], fits: Callable[[P], bool]
) -> list[tuple[PackedChunk, P]]:
    """Each chunk with what ``build`` makes of it (its prompt), in order, every one that ``fits``.

    Per-piece counts can miss a few tokens where pieces join: a chunk of several pieces whose
    prompt does not fit is halved, the halves taking its place in order, until each part fits.
    A single piece that does not fit is returned as it is, for the caller to report.
    """
    fitted: list[tuple[PackedChunk, P]] = []
    queue = list(chunks)
    while queue:
        chunk = queue.pop(0)
        built = build(chunk)
        if not fits(built) and len(chunk.pieces) > 1:
            half = len(chunk.pieces) // 2
            queue[:0] = [PackedChunk(chunk.pieces[:half]), PackedChunk(chunk.pieces[half:])]
            continue
        fitted.append((chunk, built))
    return fitted
