"""Exact token counts for byte-level BPE vocabularies without loading llama.cpp.

``dsv2 pack --json`` and ``dsv2 plan`` count every file of a repository. Through llama.cpp that
costs an import (~0.2 s), a vocabulary load (~0.2 s) and llama.cpp's tokenizer, whose first
pre-tokenizer step runs through ``std::regex`` (~1.4 MB/s per core). This module reads the
vocabulary and merges straight from the GGUF, pre-tokenizes with the ``regex`` package (which
releases the GIL), and runs BPE once per distinct piece: code repeats its words, so a 1.4 MB
repository has ~550k pieces but ~10k distinct ones.

It reproduces llama.cpp's ``llama_tokenize(text, add_special=False, parse_special=False)`` for
the pre-tokenizers whose rules are written out below, and declines (``count`` returns None, and
callers fall back to llama.cpp) for everything else:

- the vocabulary must be ``gpt2`` (byte-level BPE) with merges and no user-defined tokens
  (llama.cpp matches those in plain text, even with ``parse_special=False``);
- the pre-tokenizer must be in ``PRE_TOKENIZERS``;
- the text must be valid Unicode whose characters were all assigned in this Python's Unicode
  database: llama.cpp classifies characters with its own tables, and a character assigned in
  one version but not the other could be split differently.

Equality with llama.cpp is tested on real code, prose in several scripts and every assigned
code point (tests/test_bpe.py).
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cached_property, partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import regex


def _gpt2(letter: str, number: str, space: str, digits_first: bool) -> str:
    """GPT-2's pattern ('s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)),
    as llama.cpp runs it (unicode_regex_split_custom_gpt2), for the given character classes.

    ``digits_first``: StarCoder-style vocabularies (SmolLM2 among them) first split every digit
    off on its own, then run GPT-2's pattern inside each piece. In one pass: a digit is a piece,
    and a run of spaces before a digit ends a piece, so it is kept whole as at the end of a text.
    """
    classes = f"{space}{letter}{number}"
    if digits_first:
        digits, spaces = f"[{number}]", f"[{space}]+(?![^{space}{number}])"
    else:
        digits, spaces = f" ?[{number}]+", f"[{space}]+(?![^{space}])"
    return f"'s|'t|'re|'ve|'m|'ll|'d| ?[{letter}]+|{digits}| ?[^{classes}]+|{spaces}|[{space}]+"


# Unicode classes for the ``regex`` package (\s is Unicode White_Space, as in llama.cpp's tables),
# and the same for ASCII-only text with the standard library's faster ``re``.
_UNICODE = (r"\p{L}", r"\p{N}", r"\s")
_ASCII = ("A-Za-z", "0-9", r"\t\n\x0b\x0c\r ")

# llama.cpp's pre-tokenizer names (GGUF ``tokenizer.ggml.pre``) that run GPT-2's pattern, with or
# without splitting digits first (llama-vocab.cpp).
PRE_TOKENIZERS = {
    **dict.fromkeys(["gpt2", "mpt", "olmo", "jais"], False),
    **dict.fromkeys(["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"], True),
}

_TOKEN_TYPE_USER_DEFINED = 4


def _byte_symbols() -> list[bytes]:
    """GPT-2's byte -> printable character map, as the UTF-8 the vocabulary stores."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table: dict[int, int] = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = 256 + extra
            extra += 1
    return [chr(table[b]).encode() for b in range(256)]


_BYTE_SYMBOLS = _byte_symbols()

# GGUF value types: scalar struct formats by type id; 8 is a string, 9 an array.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_WANTED = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
)


def _parse_metadata(data: bytes) -> dict[str, Any]:
    """The tokenizer keys of GGUF metadata at the start of ``data``; raises ``struct.error``
    or ``IndexError`` when ``data`` ends before they do."""
    q = struct.Struct("<Q").unpack_from
    magic, _version, _tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    if magic != b"GGUF":
        raise ValueError("not a GGUF file")
    pos = 24

    def string() -> bytes:
        nonlocal pos
        (n,) = q(data, pos)
        end = pos + 8 + n
        if end > len(data):
            raise IndexError("metadata continues past the data read")
        value = data[pos + 8 : end]
        pos = end
        return value

    def value(kind: int) -> Any:
        nonlocal pos
        if kind == 8:
            return string()
        if kind == 9:
            item, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if item == 8:  # the vocabulary and merges: ~100k strings, read in a tight loop
                items, at = [], pos
                for _ in range(n):
                    (length,) = q(data, at)
                    at += 8
                    items.append(data[at : at + length])
                    at += length
                if at > len(data):
                    raise IndexError("metadata continues past the data read")
                pos = at
                return items
            if item == 9:
                return [value(9) for _ in range(n)]
            fmt = f"<{n}{_GGUF_SCALARS[item]}"
        else:
            fmt = "<" + _GGUF_SCALARS[kind]
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return list(values) if kind == 9 else values[0]

    found: dict[str, Any] = {}
    for _ in range(n_kv):
        key = string().decode("utf-8", "replace")
        (kind,) = struct.unpack_from("<I", data, pos)
        pos += 4
        found[key] = value(kind)
        if all(k in found for k in _WANTED):
            break
    return found


def read_vocabulary(path: Path) -> dict[str, Any]:
    """The tokenizer keys of a GGUF's metadata (raw bytes for strings). The metadata precedes
    the tensors: the file is read from the start, 4 MB at first, more if the metadata is longer."""
    size = 4 << 20
    with path.open("rb") as handle:
        data = handle.read(size)
        while True:
            try:
                return _parse_metadata(data)
            except (struct.error, IndexError):
                more = handle.read(len(data))
                if not more:
                    raise ValueError("truncated GGUF metadata") from None
                data += more


class BpeCounter:
    """Counts tokens as llama.cpp does for one byte-level BPE vocabulary (see the module doc)."""

    def __init__(self, tokens: Sequence[bytes], merges: Sequence[bytes], digits_first: bool) -> None:
        self._tokens, self._merges = tokens, merges
        self._digits_first = digits_first
        self._ascii_pattern = re.compile(_gpt2(*_ASCII, digits_first))
        self._pieces: dict[str, int] = {}  # piece -> tokens; pieces repeat across texts

    # The lookup tables are built on first use: after ``count_many`` has forked, each process
    # builds its own at the same time.

    @cached_property
    def _ids(self) -> dict[bytes, int]:
        """Token text -> id; where two ids share a text, llama.cpp's map keeps the last."""
        return {token: i for i, token in enumerate(self._tokens)}

    @cached_property
    def _ranks(self) -> dict[bytes, int]:
        """``b"left right"`` -> merge rank."""
        return {merge: rank for rank, merge in enumerate(self._merges)}

    @cached_property
    def _pattern(self) -> regex.Pattern[str]:
        """For text that is not ASCII (``regex`` is imported then: most code never needs it)."""
        import regex

        return regex.compile(_gpt2(*_UNICODE, self._digits_first))

    @classmethod
    def load(cls, path: Path) -> BpeCounter | None:
        """The counter for a GGUF's vocabulary, or None where llama.cpp must count."""
        try:
            vocab = read_vocabulary(path)
        except (OSError, ValueError, KeyError, struct.error):
            return None
        digits_first = PRE_TOKENIZERS.get(bytes(vocab.get("tokenizer.ggml.pre", b"")).decode("utf-8", "replace"))
        tokens, merges = vocab.get("tokenizer.ggml.tokens"), vocab.get("tokenizer.ggml.merges")
        types = vocab.get("tokenizer.ggml.token_type") or []
        if vocab.get("tokenizer.ggml.model") != b"gpt2" or digits_first is None or not tokens or not merges:
            return None
        if _TOKEN_TYPE_USER_DEFINED in types:
            return None
        return cls(tokens, merges, digits_first)

    def pieces(self, text: str) -> Counter[str]:
        """The pre-tokenizer's pieces of ``text`` with their multiplicities."""
        if text.isascii():
            return Counter(self._ascii_pattern.findall(text))
        # Most of a text with an accent or an arrow in it is ASCII: only the lines around what
        # is not go through the slower ``regex`` package.
        pieces: Counter[str] = Counter()
        done = 0
        for start, end in _non_ascii_zones(text):
            pieces.update(self._ascii_pattern.findall(text, done, start))
            pieces.update(self._pattern.findall(text, start, end))
            done = end
        pieces.update(self._ascii_pattern.findall(text, done))
        return pieces

    def _merge(self, piece: str) -> list[bytes]:
        """llama.cpp's BPE on one piece (llm_tokenizer_bpe_session): merge the adjacent pair of
        lowest merge rank, leftmost first, until no adjacent pair is a merge."""
        symbols = [_BYTE_SYMBOLS[b] for b in piece.encode("utf-8")]
        ranks, never = self._ranks, len(self._ranks)
        # pair_ranks[i]: the merge rank of symbols i and i + 1 (``never`` when they do not merge)
        pair_ranks = [ranks.get(a + b" " + b, never) for a, b in pairwise(symbols)]
        while pair_ranks:
            best = min(pair_ranks)
            if best == never:
                break
            at = pair_ranks.index(best)  # the leftmost of equal ranks
            merged = symbols[at] + symbols[at + 1]
            symbols[at : at + 2] = [merged]
            del pair_ranks[at]
            if at > 0:
                pair_ranks[at - 1] = ranks.get(symbols[at - 1] + b" " + merged, never)
            if at < len(pair_ranks):
                pair_ranks[at] = ranks.get(merged + b" " + symbols[at + 1], never)
        return symbols

    def _piece_ids(self, piece: str) -> list[int]:
        """Token ids of one piece. A symbol that is no token becomes those of its single bytes
        that are (so a byte the vocabulary lacks yields nothing), as in llama.cpp."""
        ids = self._ids
        out: list[int] = []
        for symbol in self._merge(piece):
            if symbol in ids:
                out.append(ids[symbol])
            else:
                out.extend(ids[byte] for byte in (bytes([b]) for b in symbol) if byte in ids)
        return out

    def _piece_tokens(self, piece: str) -> int:
        symbols = self._merge(piece)
        ids = self._ids
        return sum(1 if s in ids else sum(bytes([b]) in ids for b in s) for s in symbols)

    def encode(self, text: str) -> list[int] | None:
        """Token ids of ``text``, as ``llama_tokenize(..., add_special=False, parse_special=False)``
        gives them; None where llama.cpp must tokenize (see ``count_pieces``)."""
        pattern = self._ascii_pattern if text.isascii() else self._pattern
        pieces = pattern.findall(text)
        if not all(p.isascii() or _classifiable(p) for p in pieces):
            return None
        return [i for piece in pieces for i in self._piece_ids(piece)]

    def count_pieces(self, pieces: Counter[str]) -> int | None:
        """Tokens in a text given its ``pieces``; None if it holds a character we cannot classify
        exactly as llama.cpp does (unassigned here, or a lone surrogate)."""
        known = self._pieces
        total = 0
        for piece, times in pieces.items():
            n = known.get(piece)
            if n is None:
                if not piece.isascii() and not _classifiable(piece):
                    return None
                n = known[piece] = self._piece_tokens(piece)
            total += n * times
        return total

    def count(self, text: str) -> int | None:
        return self.count_pieces(self.pieces(text)) if text else 0

    def _count_queued(self, texts: Sequence[str], batches: list[list[int]], queue: int) -> list[tuple[int, int | None]]:
        """Count the batches of texts named on the ``queue`` pipe until it runs dry."""
        done: list[tuple[int, int | None]] = []
        while batch := _take(queue):
            done.extend((i, self.count(texts[i])) for i in batches[batch - 1])
        return done

    def count_many(self, texts: Sequence[str], workers: int = 1) -> list[int | None]:
        """Counts of many texts, in order. With ``workers`` > 1 and enough text, forked processes
        share the work (this is pure Python: threads would take turns on the GIL). They take
        batches, largest first, from one queue, so none waits while another still has a pile."""
        if workers < 2 or len(texts) < 2 or sum(len(t) for t in texts) < PARALLEL_MIN_CHARS or not _can_fork():
            return [self.count(t) for t in texts]
        import os

        batches = _batches(texts)
        queue, feed = os.pipe()
        items = memoryview(b"".join(n.to_bytes(_ITEM, "little") for n in range(1, len(batches) + 1)))
        while items:
            items = items[os.write(feed, items) :]
        os.close(feed)  # an empty queue now reads as end of file
        counts: list[int | None] = [None] * len(texts)
        missing = set(range(len(texts)))
        children: list[tuple[int, int]] = []
        finished = False
        try:
            for _ in range(min(workers, len(batches)) - 1):
                children.append(_fork(partial(self._count_queued, texts, batches, queue)))
            results = [self._count_queued(texts, batches, queue)]
            results += [_collect(read) or [] for _, read in children]
            for i, n in (pair for result in results for pair in result):
                counts[i] = n
                missing.discard(i)
            for i in missing:  # taken by a child that failed: counted here
                counts[i] = self.count(texts[i])
            finished = True
        finally:
            os.close(queue)
            for pid, read in children:
                _reap(pid, read, kill=not finished)
        return counts


# Below this much text a forked helper costs more than it saves.
PARALLEL_MIN_CHARS = 256_000

# Queue items: batch numbers from 1, 4 bytes each; at most 4096 of them (16 KB), so the whole
# queue fits in a pipe's buffer, and each read takes one whole item.
_ITEM = 4
_MAX_BATCHES = 4096


def _batches(texts: Sequence[str]) -> list[list[int]]:
    """Indices of ``texts``, largest first, in at most ``_MAX_BATCHES`` batches."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    size = -(-len(order) // _MAX_BATCHES)
    return [order[at : at + size] for at in range(0, len(order), size)]


def _take(queue: int) -> int:
    """The next batch number from the queue pipe, 0 when it is empty. One process's read of
    one item is whole: all items were written before any read, and every read is item-sized."""
    import os

    return int.from_bytes(os.read(queue, _ITEM), "little")


def _can_fork() -> bool:
    """Forking copies only the calling thread; with others running (llama.cpp, a thread pool)
    a lock they hold would stay held in the child, so we fork only a single-threaded process."""
    import os
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def _fork(work: Callable[[], list[tuple[int, int | None]]]) -> tuple[int, int]:
    """Run ``work`` in a forked child; (pid, read end of the pipe its pickled result comes on)."""
    import os
    import pickle

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's exit handlers
        status = 1
        try:
            os.close(read)
            with os.fdopen(write, "wb") as out:
                out.write(pickle.dumps(work()))
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    return pid, read


def _collect(read: int) -> list[tuple[int, int | None]] | None:
    """A child's (index, count) pairs from the pipe, or None if it failed."""
    import os
    import pickle

    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    try:
        result = pickle.loads(b"".join(chunks))
    except Exception:  # a child that died mid-write: what it took is counted here
        return None
    return result if isinstance(result, list) else None


def _reap(pid: int, read: int, kill: bool) -> None:
    """Close the pipe and wait for the child; ``kill`` it first when the parent gave up on it."""
    import os
    import signal

    os.close(read)
    try:
        if kill:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _non_ascii_zones(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that hold its non-ASCII characters, cut where a piece always ends.

    No piece of GPT-2's pattern holds a non-space followed by a space, so a newline after a
    non-space starts a new piece: the spans run from such a newline to such a newline. Spans
    less than ``_ZONE_GAP`` apart are joined (one ``regex`` call instead of many).
    """
    zones: list[tuple[int, int]] = []
    pos = 0
    while match := _NON_ASCII.search(text, pos):
        start = text.rfind("\n", 0, match.start())
        while start > 0 and text[start - 1].isspace():
            start = text.rfind("\n", 0, start)
        end = _piece_end_after(text, match.end())
        while end < len(text) and (near := _NON_ASCII.search(text, end, end + _ZONE_GAP)):
            end = _piece_end_after(text, near.end())
        zones.append((max(start, 0), end))
        pos = end
    return zones


_ZONE_GAP = 2048


def _piece_end_after(text: str, pos: int) -> int:
    """The first newline at or after ``pos`` that follows a non-space (or the end of ``text``)."""
    end = text.find("\n", pos)
    while end > 0 and text[end - 1].isspace():
        end = text.find("\n", end + 1)
    return len(text) if end < 0 else end


def _classifiable(piece: str) -> bool:
    # "Cn": unassigned in this Python's Unicode database; "Cs": a lone surrogate.
    return not any(unicodedata.category(c) in ("Cn", "Cs") for c in piece if not c.isascii())
