"""Budgets and context rendering.

The guarantee: prompt tokens + reserved output tokens <= the context window, counted with
the model's own tokenizer on the exact token ids that will be sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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


def render_segments(source: str, segments: Sequence[Segment], numbered: bool = False) -> str:
    """Segments of one source between markers: page/section markers, or line numbers for code."""
    body: list[str] = []
    for seg in segments:
        text = escape_data(seg.text)
        if numbered and seg.location.line_start is not None:
            text = number_lines(text, seg.location.line_start)
        label = marker(seg.location)
        body.append(f"{label}\n{text}" if label else text)
    return f'<document source="{quote_attr(source)}">\n' + "\n\n".join(body).strip("\n") + "\n</document>"


def render_document(doc: Document) -> str:
    return render_segments(doc.source, doc.segments, numbered=doc.kind == "code")


def render_context(docs: Sequence[Document]) -> str:
    return "\n\n".join(render_document(d) for d in docs)


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
