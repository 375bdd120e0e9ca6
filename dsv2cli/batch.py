"""Batches of many documents (``summarize --each``): bounded, resumable, packed, with progress.

- **Bounded.** At most ``concurrency`` requests are in flight, and a worker does not start a unit
  more than ``AHEAD`` units past the oldest one still running: results are handed on in input
  order and dropped, so memory does not grow with the number of documents.
- **Resumable.** With an output folder (:class:`OutDir`) each finished summary is appended to
  ``summaries.jsonl`` with one write (an interrupted run loses at most what was in flight) and
  written as a Markdown file; a rerun skips every document whose text and settings key are
  already recorded, so nothing finished is sent again.
- **Packed.** Consecutive short documents share one request (:func:`pack_groups`): each is
  numbered, the model writes ``### N`` before each summary, and :func:`split_packed` splits the
  answer back. A document without its own non-empty summary (or whose summary the output limit
  cut) is summarized again on its own.
- **Progress.** :class:`BatchStatus` after every document: done, skipped and failed of the total,
  requests, cost so far and the time left at the rate so far.

Nothing here prints: the caller gets callbacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import prompts
from .chat import ChatPrompt, Message, ModelFacts, format_chat
from .engines.base import Backend, GenerationParams, Usage
from .errors import UsageError
from .fsutil import write_atomic
from .packing import render_document
from .sources.base import Document
from .summarize import SummaryResult
from .tokens import Tokenizer

# A worker may run this many units ahead of the oldest unfinished one (per worker): the ``ahead``
# that ``summarize --each`` and batch extraction give ``parallel.ordered_map``.
AHEAD = 4
# At most this many documents share one packed request, and each gets at most this many output
# tokens of it (or --max-tokens, if less): a brief summary is well under 200 tokens.
PACK_MAX_DOCUMENTS = 10
PACK_OUTPUT_PER_DOCUMENT = 200
# Packed requests tried before packing is turned off for a model that answers none of them usably.
PACK_TRIAL = 2
# What a packed request asks for per document, by --style.
PACK_STYLES = {
    "brief": "one short paragraph of at most three sentences, its main point first",
    "detailed": "a detailed summary of one or two paragraphs with the important facts and figures",
    "bullets": "three to five short bullet points",
}


# --- progress ------------------------------------------------------------------------------------


@dataclass
class BatchStatus:
    """Where a batch stands; ``cost_usd`` is None on an unpriced backend."""

    total: int
    done: int = 0
    skipped: int = 0  # already in the output folder
    failed: int = 0
    requests: int = 0  # model calls made (a packed request counts once; retries are not calls)
    rerun: int = 0  # documents a packed answer missed, summarized again on their own
    prompt_tokens: int = 0  # as the server counted them, over every request
    output_tokens: int = 0
    packed_requests: int = 0  # requests that carried several documents
    packed_documents: int = 0  # documents in them (summarized there or re-run)
    packed_prompt_tokens: int = 0  # the prompt tokens of those requests alone
    cost_usd: float | None = None
    started: float = field(default_factory=time.perf_counter)
    task: str = "summarizing"  # what is done to each document: "summarizing", "extracting"

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate of the documents sent so far (skipped ones take no time)."""
        sent = self.done + self.failed
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        if not sent:
            return None
        return left * self.elapsed_s / sent

    def add_cost(self, usd: float | None) -> None:
        if usd is not None:
            self.cost_usd = round((self.cost_usd or 0.0) + usd, 6)


BatchProgress = Callable[[BatchStatus], None]


@dataclass
class Sent:
    """What one unit (a document, or a pack and its re-runs) produced and cost: outcomes are
    (document position, its run or its per-input error); tokens are the server's counts."""

    outcomes: list[tuple[int, Any]]
    requests: int = 0
    cost_usd: float | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    rerun: int = 0
    packed: tuple[int, int] = (0, 0)  # a packed request: (documents in it, its prompt tokens)

    def add(self, other: Sent) -> None:
        self.outcomes += other.outcomes
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.output_tokens += other.output_tokens
        self.rerun += other.rerun
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd


# --- the output folder ----------------------------------------------------------------------------


def settings_key(*parts: object) -> str:
    """What makes two summaries of the same text the same: prompt, model, output limit (16 hex)."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


class OutDir:
    """``--out DIR``: ``summaries.jsonl`` (one record a line) and one ``.md`` file per document."""

    RECORDS = "summaries.jsonl"

    def __init__(self, path: Path, key: str, *, force: bool = False) -> None:
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path}: not a folder (summarize --each writes a folder of summaries)")
        if not path.parent.is_dir():
            raise UsageError(f"--out {path}: folder {path.parent} does not exist")
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {path}: cannot create the folder ({exc.strerror})") from exc
        self.path, self.key = path, key
        self.records = path / self.RECORDS
        # Summary files written with this key: the input's name and its text's hash (file_for), so
        # that an input is skipped only when that same input (not another with the same text) is done.
        self.done: set[str] = set()
        self.notes: list[str] = []
        self._lock = threading.Lock()
        if force and self.records.exists():
            write_atomic(self.records, "")
        elif self.records.exists() and self.records.stat().st_size:
            self._read_back()

    def _read_back(self) -> None:
        bad = other = 0
        for line in self.records.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad += 1  # a line cut off by an interruption: that document is summarized again
                continue
            if not isinstance(record, dict) or not isinstance(record.get("file"), str):
                bad += 1
            elif record.get("key") == self.key:
                self.done.add(record["file"])
            else:
                other += 1
        if bad:
            self.notes.append(f"warning: {self.records}: ignored {bad} unreadable line(s)")
        if other:
            self.notes.append(
                f"{self.records}: {other} summary(ies) made with other settings (style, prompt, model or "
                "--max-tokens) are kept but not reused"
            )
        with self.records.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            ends_cleanly = fh.read(1) == b"\n"
        if not ends_cleanly:
            self._append("\n")  # a cut-off last line stays on its own line

    def has(self, doc: Document) -> bool:
        return self.file_for(doc) in self.done

    def file_for(self, doc: Document) -> str:
        """``report.pdf`` -> ``report.pdf-1a2b3c4d.md``: the name, and the text's hash against collisions."""
        name = "stdin" if doc.source == "-" else Path(doc.source).name
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "document"
        return f"{name[:80]}-{doc.content_hash[:8]}.md"

    def write(self, doc: Document, record: dict[str, Any]) -> None:
        """The summary as Markdown, then its record: a record is only there once its file is."""
        name = self.file_for(doc)
        write_atomic(self.path / name, f"# {doc.source}\n\n{record.get('summary', '')}\n")
        line = {**record, "file": name, "content_hash": doc.content_hash, "key": self.key}
        self._append(json.dumps(line, ensure_ascii=False) + "\n")
        with self._lock:
            self.done.add(name)

    def _append(self, text: str) -> None:
        data = text.encode("utf-8")
        with self._lock:
            fd = os.open(self.records, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, data)  # one write on O_APPEND: never half a record
                while written < len(data):
                    written += os.write(fd, data[written:])
            finally:
                os.close(fd)


# --- packing many short documents into one request ------------------------------------------------


def numbered(doc: Document, number: int) -> Document:
    """The document as it appears in a packed request: its source name led by its number."""
    return Document(f"{number}: {doc.source}", doc.kind, doc.segments, heading_source=doc.heading_source)


def packed_prompt(
    tokenizer: Tokenizer, facts: ModelFacts, system: str, style: str, docs: Sequence[Document]
) -> ChatPrompt:
    """One request for ``docs``: each between its own ``<document>`` markers, numbered 1, 2, ..."""
    if style not in PACK_STYLES:
        raise UsageError(f"--pack: no packed form of --style {style}; use one of {', '.join(PACK_STYLES)}")
    context = "\n\n".join(render_document(numbered(doc, n)) for n, doc in enumerate(docs, 1))
    values = {"document": context, "count": str(len(docs)), "style": PACK_STYLES[style]}
    user, stable = prompts.user_message(prompts.load("summarize_packed"), values)
    messages = [Message("system", system.strip()), Message("user", user, stable)]
    return format_chat(tokenizer, messages, facts.chat_template, facts.architecture)


def pack_groups(
    sizes: Sequence[int | None], room: int, per_document_output: int, max_documents: int
) -> list[list[int]]:
    """Consecutive documents grouped so that each group's documents and outputs fit ``room``.

    ``sizes[i]``: document ``i``'s tokens as packed (None: not packable, it goes alone). A group
    holds at most ``max_documents``; its documents' tokens plus ``per_document_output`` for each
    must fit ``room`` (the window less the packed prompt's own tokens). The exact prompt is counted
    again before it is sent (:func:`fit_pack`).
    """
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if size is None or size + per_document_output > room:
            if current:
                groups.append(current)
            groups.append([i])
            current, used = [], 0
            continue
        if current and (len(current) >= max_documents or used + size + per_document_output > room):
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += size + per_document_output
    if current:
        groups.append(current)
    return groups


_HEADER = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*(?:document[ \t]*)?|\*\*[ \t]*(?:document[ \t]*)?|document[ \t]+)#?(\d{1,4})\b"
    r"[ \t]*(?:\*\*)?[ \t]*[:.)\-]?[ \t]*(?:\*\*)?[ \t]*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)


def split_packed(text: str, count: int, *, cut_short: bool = False) -> dict[int, str]:
    """Summaries by document number (1..count) from a packed answer; a number without one is absent.

    A summary is the text after its ``### N`` line up to the next such line. Numbers outside
    1..count, and a number seen twice, are not headers of their own (their line stays text).
    ``cut_short`` (the answer hit the output limit): the last summary is dropped as incomplete.
    """
    found: list[tuple[int, int, int, str]] = []  # (number, header start, body start, rest of the header line)
    seen: set[int] = set()
    for match in _HEADER.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= count and number not in seen:
            seen.add(number)
            found.append((number, match.start(), match.end(), match.group(2)))
    out: dict[int, str] = {}
    for k, (number, _start, body, rest) in enumerate(found):
        end = found[k + 1][1] if k + 1 < len(found) else len(text)
        summary = (rest.strip() + "\n" + text[body:end]).strip()
        if re.search(r"\w", summary):
            out[number] = summary
    if cut_short and found:
        out.pop(found[-1][0], None)
    return out


@dataclass
class PackOutcome:
    """One packed request: the documents that got a summary (by position in the pack), and the call's usage."""

    results: dict[int, SummaryResult]
    usage: Usage
    missing: list[int]  # positions in the pack without a usable summary: summarize them on their own


def run_pack(
    docs: Sequence[Document],
    backend: Backend,
    tokenizer: Tokenizer,
    facts: ModelFacts,
    system: str,
    style: str,
    window: int,
    per_document_output: int,
    params: GenerationParams,
) -> PackOutcome:
    """Summarize ``docs`` in one request and split the answer back per document.

    Each document's share of the request (its own tokens plus an equal part of the prompt's
    overhead, and its summary's part of the output) is its ``input_tokens`` / ``output_tokens``,
    so per-document costs add up to the request's.
    """
    prompt = packed_prompt(tokenizer, facts, system, style, docs)
    output = per_document_output * len(docs)
    if len(prompt.ids) + output > window:  # the estimate let through a pack the exact count does not fit
        return PackOutcome({}, Usage(), list(range(len(docs))))
    usage = Usage()
    text = "".join(backend.generate(prompt, replace(params, max_tokens=output), usage))
    found = split_packed(text, len(docs), cut_short=usage.finish_reason == "length")
    # Counted again, not taken from the caller's sizes: those are each document's tokens in its own
    # prompt plus a margin for its number (pack_groups' estimate), these the document as numbered in
    # this prompt, which is what each result's document_tokens (--json) reports. 10 short documents
    # (9,821 tokens): 20 ms, against 73 ms to build the packed prompt and seconds for the request.
    sizes = [tokenizer.count(render_document(numbered(doc, n))) for n, doc in enumerate(docs, 1)]
    overhead = max(len(prompt.ids) - sum(sizes), 0)
    counted = len(prompt.ids) or 1
    written = sum(len(found[n]) for n in found) or 1
    results: dict[int, SummaryResult] = {}
    for n, summary in found.items():
        share = len(summary) / written
        # the server's prompt tokens, shared as our count of the prompt is: own tokens plus 1/k of the rest
        mine = (sizes[n - 1] + overhead / len(docs)) / counted
        results[n - 1] = SummaryResult(
            summary=summary,
            model=backend.capabilities.name,
            strategy="packed",
            input_tokens=round(usage.prompt_tokens * mine),
            document_tokens=sizes[n - 1],
            output_tokens=round(usage.output_tokens * share),
            window=window,
            budget=window - output - overhead,
            finish_reason=usage.finish_reason,
            calls=1,
            usage_estimated=bool(usage.extra.get("usage_estimated")),
            cache_hit_tokens=round(usage.extra.get("cache_hit_tokens", 0) * mine),
            attempts=int(usage.extra.get("attempts", 0)),
            timings={"packed_with": float(len(docs))},
        )
    return PackOutcome(results, usage, [i for i in range(len(docs)) if i not in results])
