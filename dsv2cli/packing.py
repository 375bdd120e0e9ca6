"""Budgets and context rendering.

The guarantee: prompt tokens + reserved output tokens <= the context window, counted with
the model's own tokenizer on the exact token ids that will be sent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def count_context(
    docs: Sequence[Document], count_joined: Callable[[Sequence[str]], tuple[int, list[int]]]
) -> ContextCount:
    """Count the packed context part by part (see ``tokens.CountCache.count_joined``), never twice."""
    parts = context_parts(docs)
    total, counts = count_joined([text for _, text in parts])
    return ContextCount(total, [(seg, n) for (seg, _), n in zip(parts, counts, strict=True)])


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
