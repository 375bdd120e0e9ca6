"""Hierarchical map-reduce summaries for inputs larger than the window.

Split along the document's own structure (pages, sections, files, paragraphs) into chunks that
fill the window; summarize each chunk keeping page/section references; merge the partial
summaries in groups that fit, level after level, until the final summary's prompt fits.
Every segment lands in exactly one chunk, in order: nothing dropped, nothing repeated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .. import prompts
from ..chat import ChatPrompt, Message, format_chat
from ..engines.base import Backend, GenerationParams, Usage
from ..errors import ContextOverflowError
from ..packing import blocks, render_block, render_body, render_segments
from ..parallel import closer, ordered_map
from ..sources.base import Document, Location, Segment
from ..tokens import Tokenizer

# Slack for tokens that per-piece counts cannot see (the joins between pieces).
PIECE_JOIN_TOKENS = 2

StageProgress = Callable[[str, int, int], None]  # (stage, done, total)
Count = Callable[[str], int]


@dataclass(frozen=True)
class Piece:
    source: str
    segment: Segment
    tokens: int
    numbered: bool = False  # code: rendered with line numbers
    header_tokens: int = 0  # the <document source=...> / </document> pair around this source


@dataclass
class Chunk:
    pieces: list[Piece]

    @property
    def tokens(self) -> int:
        headers = {p.source: p.header_tokens for p in self.pieces}
        return sum(p.tokens + PIECE_JOIN_TOKENS for p in self.pieces) + sum(headers.values())

    def label(self) -> str:
        return span_label([p.source for p in self.pieces], [p.segment.location for p in self.pieces])

    def render(self) -> str:
        blocks: list[str] = []
        run: list[Piece] = []
        for piece in self.pieces:
            if run and piece.source != run[0].source:
                blocks.append(render_segments(run[0].source, [p.segment for p in run], run[0].numbered))
                run = []
            run.append(piece)
        if run:
            blocks.append(render_segments(run[0].source, [p.segment for p in run], run[0].numbered))
        return "\n\n".join(blocks)


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
    parts: list[str] = []
    while text:
        size = len(text)
        while size > 1 and count(text[:size]) > limit - 8:
            size = size * 3 // 4
        parts.append(text[:size])
        text = text[size:]
    return parts


def make_pieces(docs: Sequence[Document], limit: int, count: Count) -> list[Piece]:
    pieces: list[Piece] = []
    for source, segments, numbered in (block for doc in docs for block in blocks(doc)):
        header = count(render_segments(source, [])) + PIECE_JOIN_TOKENS
        for segment in segments:
            if not segment.text.strip():
                continue
            tokens = piece_tokens(segment, count, numbered)
            if tokens <= limit - header:  # the usual case (a page, a section): counted once
                pieces.append(Piece(source, segment, tokens, numbered, header))
                continue
            for part, part_tokens in split_counted(segment, limit - header, count, numbered):
                pieces.append(Piece(source, part, part_tokens, numbered, header))
    return pieces


def plan_chunks(pieces: Sequence[Piece], budget: int) -> list[Chunk]:
    """Greedy, in order: consecutive pieces fill a chunk up to ``budget`` tokens (a pure function)."""
    chunks: list[Chunk] = []
    current = Chunk([])
    for piece in pieces:
        candidate = Chunk([*current.pieces, piece])
        if current.pieces and candidate.tokens > budget:
            chunks.append(current)
            current = Chunk([piece])
        else:
            current = candidate
    if current.pieces:
        chunks.append(current)
    return chunks


@dataclass
class Partial:
    label: str
    text: str


@dataclass
class MapReduceResult:
    summary: str
    chunks: list[Chunk]
    levels: int
    calls: int
    usage: Usage = field(default_factory=Usage)  # summed over every call


@dataclass
class MapReduce:
    """The whole job; ``chunks()`` alone is what ``--dry-run`` shows."""

    tokenizer: Tokenizer
    architecture: str
    chat_template: str | None
    system: str
    final_template: str
    window: int
    max_tokens: int
    concurrency: int = 1  # model calls in flight at once (a remote backend serves them in parallel)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _prompt(self, template: str, values: dict[str, str]) -> ChatPrompt:
        messages = [Message("system", self.system.strip()), Message("user", prompts.fill(template, values).strip())]
        return format_chat(self.tokenizer, messages, self.chat_template, self.architecture)

    def _budget(self, template: str, values: dict[str, str]) -> int:
        overhead = len(self._prompt(template, {**values, "document": ""}).ids)
        return self.window - self.max_tokens - overhead

    def chunks(self, docs: Sequence[Document]) -> list[Chunk]:
        budget = self._budget(prompts.load("map"), {"part": "9999", "parts": "9999"})
        if budget < 64:
            raise ContextOverflowError(
                f"the {self.window}-token window leaves {max(budget, 0)} tokens per chunk after "
                f"{self.max_tokens} reserved for output: use a larger --ctx or a smaller --max-tokens",
                input_tokens=0,
                window=self.window,
                budget=max(budget, 0),
            )
        return plan_chunks(make_pieces(docs, budget - PIECE_JOIN_TOKENS, self.tokenizer.count), budget)

    def run(
        self,
        docs: Sequence[Document],
        backend: Backend,
        params: GenerationParams,
        on_stage: StageProgress | None = None,
        on_text: Callable[[str], None] | None = None,
        chunks: list[Chunk] | None = None,
    ) -> MapReduceResult:
        """Summarize ``chunks`` (default: ``self.chunks(docs)``; pass the plan's to not split twice)."""
        chunks = self.chunks(docs) if chunks is None else chunks
        result = MapReduceResult("", chunks, levels=0, calls=0)
        map_template = prompts.load("map")
        # Fit first (per-piece counts can miss a few boundary tokens: halve such a chunk, keep the
        # order), with the widest part numbers; then number the parts and send them.
        fitted: list[Chunk] = []
        queue = list(chunks)
        while queue:
            chunk = queue.pop(0)
            prompt = self._prompt(map_template, {"document": chunk.render(), "part": "9999", "parts": "9999"})
            if len(prompt.ids) + self.max_tokens > self.window and len(chunk.pieces) > 1:
                half = len(chunk.pieces) // 2
                queue[:0] = [Chunk(chunk.pieces[:half]), Chunk(chunk.pieces[half:])]
                continue
            fitted.append(chunk)
        map_prompts = [
            self._prompt(map_template, {"document": c.render(), "part": str(i), "parts": str(len(fitted))})
            for i, c in enumerate(fitted, 1)
        ]
        texts = self._call_all(map_prompts, backend, params, result, on_stage, "map")
        partials = [Partial(c.label(), text) for c, text in zip(fitted, texts, strict=True)]
        result.levels = 1
        reduce_template = prompts.load("reduce")
        while True:
            final = self._prompt(self.final_template, {"document": self._render_partials(partials)})
            if len(final.ids) + self.max_tokens <= self.window:
                if on_stage:
                    on_stage("final", 0, 1)
                result.summary = self._call(final, backend, params, result, on_text).strip()
                if on_stage:
                    on_stage("final", 1, 1)
                return result
            groups = self._group(partials, self._budget(reduce_template, {}))
            if len(groups) >= len(partials):
                longest = max(self.tokenizer.count(p.text) for p in partials)
                raise ContextOverflowError(
                    f"partial summaries do not shrink: two of them (up to {longest} tokens each) do not fit one "
                    f"{self.window}-token window with {self.max_tokens} reserved for output: lower --max-tokens "
                    "or raise --ctx",
                    input_tokens=sum(self.tokenizer.count(p.text) for p in partials),
                    window=self.window,
                    budget=self._budget(reduce_template, {}),
                )
            result.levels += 1
            reduce_prompts = [
                self._prompt(reduce_template, {"document": self._render_partials(group)}) for group in groups
            ]
            texts = self._call_all(reduce_prompts, backend, params, result, on_stage, f"reduce (level {result.levels})")
            partials = [Partial(_join_labels(group), text) for group, text in zip(groups, texts, strict=True)]

    def _call_all(
        self,
        prompts_: Sequence[ChatPrompt],
        backend: Backend,
        params: GenerationParams,
        result: MapReduceResult,
        on_stage: StageProgress | None,
        stage: str,
    ) -> list[str]:
        """Every prompt's answer, in order; ``concurrency`` calls in flight, progress as each completes."""
        done = 0
        if on_stage:
            on_stage(stage, 0, len(prompts_))

        def progress(_i: int, _text: str) -> None:
            nonlocal done
            done += 1
            if on_stage:
                on_stage(stage, done, len(prompts_))

        return ordered_map(
            lambda prompt: self._call(prompt, backend, params, result),
            prompts_,
            self.concurrency,
            progress,
            in_order=False,
            on_abort=closer(backend),
        )

    @staticmethod
    def _render_partials(partials: Sequence[Partial]) -> str:
        return render_block(
            "summaries of consecutive parts", "\n\n".join(f"[{p.label}]\n{p.text.strip()}" for p in partials)
        )

    def _group(self, partials: Sequence[Partial], budget: int) -> list[list[Partial]]:
        groups: list[list[Partial]] = []
        current: list[Partial] = []
        for partial in partials:
            trial = [*current, partial]
            if current and self.tokenizer.count(self._render_partials(trial)) > budget:
                groups.append(current)
                current = [partial]
            else:
                current = trial
        if current:
            groups.append(current)
        return groups

    def _call(
        self,
        prompt: ChatPrompt,
        backend: Backend,
        params: GenerationParams,
        result: MapReduceResult,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        if len(prompt.ids) + params.max_tokens > self.window:
            raise ContextOverflowError(
                f"internal: a {len(prompt.ids)}-token chunk prompt does not fit the {self.window}-token window",
                input_tokens=len(prompt.ids),
                window=self.window,
                budget=self.window - params.max_tokens,
            )
        usage = Usage()
        pieces = []
        for piece in backend.generate(prompt, params, usage):
            pieces.append(piece)
            if on_text:
                on_text(piece)
        with self._lock:
            result.calls += 1
            result.usage.add(usage)
        return "".join(pieces).strip()


def _join_labels(partials: Sequence[Partial]) -> str:
    if len(partials) == 1:
        return partials[0].label
    return f"{partials[0].label} .. {partials[-1].label}"
