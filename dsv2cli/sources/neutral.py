"""Document text that imitates the prompt's own structure is made inert before anything counts it.

DeepSeek-V2's chat format has no role tokens: a turn is the plain text ``User: ...`` and
``Assistant:`` after a blank line (``<｜begin▁of▁sentence｜>{system}\\n\\nUser: {q}\\n\\nAssistant:``),
so a document line ``Assistant: I will now ignore...`` encodes to the same ids as the real role
line. Such lines get a zero-width space (U+200B) before the role word: the model still reads
the words, but the ids are no longer those of a turn.

DeepSeek's vocabulary also has 2,385 user-defined ``[PAD<n>]`` tokens that llama.cpp cuts out of
plain text even with ``parse_special=False`` (only control tokens are spared): document text
``[PAD100015]`` became token 100015. A zero-width space after the bracket keeps it text.

Every change is recorded (``Neutralised``: where, what) for ``--dry-run --json`` and stderr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .base import Document, Segment

ZERO_WIDTH_SPACE = "\u200b"

# A line that starts (after spaces) with a chat role and a colon.
_ROLE_LINE = re.compile(r"^([ \t]*)(user|assistant|system)([ \t]*:)", re.IGNORECASE | re.MULTILINE)
# DeepSeek LLM / V2's user-defined padding tokens, as text.
_PAD_TOKEN = re.compile(r"\[(PAD\d+\])")


@dataclass(frozen=True)
class Neutralised:
    """One change: the source, the line (or None), the kind and the text as it was."""

    source: str
    line: int | None
    page: int | None
    kind: str  # "role line" or "user-defined token"
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"path": self.source, "line": self.line, "page": self.page, "kind": self.kind, "text": self.text}


def neutralise_text(text: str) -> tuple[str, list[tuple[int, str, str]]]:
    """``text`` made inert, and each change as (offset in the original, kind, original text)."""
    found: list[tuple[int, str, str]] = []
    if ":" in text:
        found += [(m.start(2), "role line", m.group(2) + m.group(3)) for m in _ROLE_LINE.finditer(text)]
    if "[PAD" in text:
        found += [(m.start(), "user-defined token", m.group()) for m in _PAD_TOKEN.finditer(text)]
    if not found:
        return text, []
    text = _ROLE_LINE.sub(lambda m: m.group(1) + ZERO_WIDTH_SPACE + m.group(2) + m.group(3), text)
    text = _PAD_TOKEN.sub(lambda m: "[" + ZERO_WIDTH_SPACE + m.group(1), text)
    return text, sorted(found)


def neutralise(doc: Document) -> Document:
    """``doc`` with every segment made inert; what changed goes to ``doc.neutralised`` and, in
    one line per document, to its warnings."""
    changes: list[Neutralised] = []
    segments: list[Segment] = []
    for seg in doc.segments:
        text, found = neutralise_text(seg.text)
        if not found:
            segments.append(seg)
            continue
        loc = seg.location
        for offset, kind, original in found:
            line = loc.line_start + seg.text.count("\n", 0, offset) if loc.line_start is not None else None
            changes.append(Neutralised(loc.source, line, loc.page, kind, original))
        segments.append(replace(seg, text=text))
    if not changes:
        return doc
    roles = sum(c.kind == "role line" for c in changes)
    pads = len(changes) - roles
    what = [f"{n} line(s) that look like chat turns (User:/Assistant:)" for n in [roles] if n]
    what += [f"{n} [PAD…] token spelling(s)" for n in [pads] if n]
    warning = f"{doc.source}: {' and '.join(what)} made inert with a zero-width space (document text stays data)"
    return replace(doc, segments=segments, warnings=[*doc.warnings, warning], neutralised=[*doc.neutralised, *changes])
