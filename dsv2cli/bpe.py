"""Exact token counts for byte-level BPE vocabularies without loading llama.cpp.

``dsv2 pack --json`` and ``dsv2 plan`` count every file of a repository. Through llama.cpp that
costs an import (~0.2 s), a vocabulary load (~0.2-0.45 s) and llama.cpp's tokenizer, whose
pre-tokenizer runs partly through ``std::regex`` (~1.4 MB/s per core for SmolLM2, ~0.6 MB/s
for DeepSeek-V2). This module reads the vocabulary and merges straight from the GGUF,
pre-tokenizes with ``re`` (ASCII) and the ``regex`` package (the lines around anything else),
and runs BPE once per distinct piece: code repeats its words, so a 1.4 MB repository has ~550k
pieces but ~10k distinct ones. Large batches are shared with forked helper processes.

It reproduces llama.cpp's ``llama_tokenize(text, add_special=False, parse_special=False)`` for
two families of pre-tokenizer, and declines (``count`` returns None; callers fall back to
llama.cpp) everything else:

- GPT-2's pattern, with or without digits split off first (``PRE_TOKENIZERS``: gpt2, smollm,
  starcoder, ...), for vocabularies without user-defined tokens;
- DeepSeek LLM / V2 (``deepseek-llm``), user-defined tokens included (llama.cpp cuts them out
  of plain text: ``ü`` is a token of its own there);
- text whose characters were all assigned in this Python's Unicode database (llama.cpp
  classifies characters with its own tables; a character one of them lacks could be split
  differently) and that is not mostly CJK (llama.cpp is the faster there).

Equality with llama.cpp is tested token for token on both vocabularies: edge cases, random
text, real code and documents, and every assigned code point up to U+2FFFF (tests/test_bpe.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cached_property, partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError

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

_WANTED = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
)


def read_vocabulary(path: Path, keys: tuple[str, ...] = _WANTED) -> dict[str, Any]:
    """The tokenizer keys of a GGUF's metadata (``ggufmeta.read_metadata``: strings as bytes),
    read up to the last of ``keys``."""
    from .ggufmeta import read_metadata

    return read_metadata(path, keys)


class _Gpt2Split:
    """GPT-2's pattern, optionally with digits split off first (see ``_gpt2``)."""

    def __init__(self, digits_first: bool) -> None:
        self._digits_first = digits_first
        self._ascii = re.compile(_gpt2(*_ASCII, digits_first))

    @cached_property
    def _unicode(self) -> regex.Pattern[str]:
        """For text that is not ASCII (``regex`` is imported then: most code never needs it)."""
        import regex

        return regex.compile(_gpt2(*_UNICODE, self._digits_first))

    def split(self, text: str) -> list[str | int]:
        """The pieces of ``text`` in order."""
        return list((self._ascii if text.isascii() else self._unicode).findall(text))

    def ordered(self, text: str) -> list[str | int]:
        """``split``: GPT-2's pattern is one ``findall`` already."""
        return self.split(text)

    def pieces(self, text: str) -> Counter[str | int]:
        """The pieces of ``text`` with their multiplicities."""
        if text.isascii():
            return Counter(self._ascii.findall(text))
        # Most of a text with an accent or an arrow in it is ASCII: only the lines around what
        # is not go through the slower ``regex`` package.
        pieces: Counter[str | int] = Counter()
        done = 0
        for start, end in _non_ascii_zones(text):
            pieces.update(self._ascii.findall(text, done, start))
            pieces.update(self._unicode.findall(text, start, end))
            done = end
        pieces.update(self._ascii.findall(text, done))
        return pieces


# DeepSeek LLM / V2 (``deepseek-llm``): llama.cpp splits the text with these regular expressions
# one after the other, each inside every piece the ones before made (llama-vocab.cpp). Letters of
# cased scripts (the class is llama.cpp's, code point for code point), then ASCII and fullwidth
# punctuation, then trailing spaces, then CJK and the blocks from U+0800 up, then numbers.
_DS_SPACE = r"[\t\n\x0b\x0c\r ]"  # std::regex \s; llama.cpp maps other spaces to \x0b first
_DS_LETTERS = (
    r"A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    r"\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5"
    r"\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba"
    r"\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45"
    r"\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe"
    r"\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc"
    r"\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
    r"\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
    r"\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06"
    r"\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3"
    r"\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df"
    r"\U0001e900-\U0001e943"
)
_DS_STEPS = (
    r"[\r\n]",
    rf"{_DS_SPACE}?[{_DS_LETTERS}]+",
    rf"{_DS_SPACE}?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    rf"{_DS_SPACE}+\Z",
    r"[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
)
_DS_NUMBERS = r"\p{N}+"  # on the text itself (llama.cpp: its category table, not the mapped text)
# Unicode White_Space beyond ASCII: llama.cpp turns these into \x0b before the steps above.
_UNICODE_SPACES = "\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_TO_VERTICAL_TAB = str.maketrans(dict.fromkeys(_UNICODE_SPACES, "\x0b"))

# The same in one pass, for lines without the characters that need the steps (``_DS_STEPWISE``).
# Such a line holds spaces W, letters A (ASCII and fullwidth), punctuation Q (likewise), digits D,
# characters of the CJK step K, and others O. Letters and punctuation take one space before them;
# what is left between them splits into runs of K, runs of D, and runs of O and spaces, of which
# the last before a letter, punctuation or the line end leaves its trailing spaces apart.
_DS_W = "\t\x0b\x0c " + _UNICODE_SPACES  # what the steps see as \\s, after the mapping
_DS_A = r"A-Za-z\uff21-\uff3a\uff41-\uff5a"
_DS_Q = r"!-/:-@\[-`{-~\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff5e"
_DS_K = r"\u0800-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e\u2060-\u2fff\u3001-\u9fa5\uac00-\ud7ff"
_DS_FREE_SPACE = rf"[{_DS_W}](?![{_DS_A}{_DS_Q}])"  # a space no letter or punctuation takes
_DS_OTHER = rf"[^\r\n{_DS_W}{_DS_A}{_DS_Q}0-9{_DS_K}]"
_DS_RUN_END = rf"(?:[\r\n{_DS_A}{_DS_Q}]|[{_DS_W}][{_DS_A}{_DS_Q}]|\Z)"
_DS_ONE_PASS = (
    rf"[\r\n]|[{_DS_W}]?[{_DS_A}]+|[{_DS_W}]?[{_DS_Q}]+|[{_DS_K}]+|[0-9]+"
    rf"|(?:{_DS_OTHER}|{_DS_FREE_SPACE})*{_DS_OTHER}(?=(?:{_DS_FREE_SPACE})*{_DS_RUN_END})"
    rf"|(?:{_DS_OTHER}|{_DS_FREE_SPACE})+"
)
# Characters the one pass does not model: letters of the cased scripts beyond ASCII and
# fullwidth, the quotes and CJK marks of the punctuation step, numbers beyond 0-9, and
# characters unassigned (or lone surrogates). Lines with any of them take the six steps.
_DS_STEPWISE = (
    r"[\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u0370-\u0556\u10a0-\u10c5\u13a0-\u13fd"
    r"\u1c90-\u1cbf\u1d00-\u1d9a\u1e00-\u1ffc\u2102-\u2184\u2c00-\u2cf3\ua640-\ua69b\ua722-\ua78e"
    r"\uab70-\uabbf\ufb00-\ufb17\U00010400-\U000104fb\U00010c80-\U00010cf2\U000118a0-\U000118df"
    r"\U0001e900-\U0001e943\u2018-\u201f\u3001\u3002]|[^\P{N}0-9]|[\p{Cn}\p{Cs}]"
)


class _DeepSeekSplit:
    """DeepSeek LLM / V2's pre-tokenizer, and its user-defined tokens: llama.cpp cuts those out
    of plain text too (``parse_special=False`` only spares control tokens), so ``ü`` in a text is
    token 100014, whatever the words around it."""

    def __init__(self, user_defined: dict[str, int]) -> None:
        self._user_defined = user_defined
        self._one_pass = re.compile(_DS_ONE_PASS)
        # Where a user-defined token may start: the first four characters of each (DeepSeek's
        # 2,385 [PAD...] tokens share one), so no line of code pays for the full pattern.
        starts = sorted({t[:4] for t in user_defined}, key=len, reverse=True)
        self._user_starts = re.compile("|".join(map(re.escape, starts))) if starts else None

    @cached_property
    def _stepwise_chars(self) -> regex.Pattern[str]:
        import regex

        return regex.compile(_DS_STEPWISE)

    @cached_property
    def _user_pattern(self) -> re.Pattern[str] | None:
        return re.compile(_alternation(list(self._user_defined))) if self._user_defined else None

    def _next_stepwise(self, text: str, pos: int, plain: bool) -> tuple[int, int] | None:
        """The span of the next character (or possible user-defined token) from ``pos`` that the
        one pass does not model; ``plain``: the text is ASCII, so only a token can be."""
        hits: list[tuple[int, int]] = []
        if self._user_starts is not None and (token := self._user_starts.search(text, pos)):
            hits.append(token.span())
        if not plain and (char := self._stepwise_chars.search(text, pos)):
            hits.append(char.span())
        return min(hits) if hits else None

    @cached_property
    def _steps(self) -> tuple[regex.Pattern[str], ...]:
        import regex

        return tuple(regex.compile(p) for p in (*_DS_STEPS, _DS_NUMBERS))

    def _fragment(self, text: str) -> list[str]:
        """llama.cpp's regex steps on a text without user-defined tokens, one after the other."""
        spaced = text.translate(_TO_VERTICAL_TAB)  # same length: offsets carry over
        spans = [(0, len(text))]
        *steps, numbers = self._steps
        for step, target in [*((s, spaced) for s in steps), (numbers, text)]:
            cut: list[tuple[int, int]] = []
            for start, end in spans:
                at = start
                for match in step.finditer(target, start, end):
                    if match.start() > at:
                        cut.append((at, match.start()))
                    cut.append(match.span())
                    at = match.end()
                if at < end:
                    cut.append((at, end))
            spans = cut
        return [text[a:b] for a, b in spans]

    def split(self, text: str) -> list[str | int]:
        """The pieces of ``text`` in order, user-defined tokens as their ids."""
        out: list[str | int] = []
        at = 0
        matches = self._user_pattern.finditer(text) if self._user_pattern is not None else iter(())
        for match in matches:
            out.extend(self._fragment(text[at : match.start()]))
            out.append(self._user_defined[match.group()])
            at = match.end()
        out.extend(self._fragment(text[at:]))
        return out

    def ordered(self, text: str) -> list[str | int]:
        """``split``'s pieces in order by ``pieces``' route: the lines that need the steps take
        them, the rest the one pass (several times faster than the steps on all of it)."""
        plain = text.isascii()
        out: list[str | int] = []
        done = 0
        while found := self._next_stepwise(text, done, plain):
            start = text.rfind("\n", 0, found[0]) + 1
            end = text.find("\n", found[1])
            end = len(text) if end < 0 else end
            out.extend(self._one_pass.findall(text, done, start))
            out.extend(self.split(text[start:end]))
            done = end
        out.extend(self._one_pass.findall(text, done))
        return out

    def pieces(self, text: str) -> Counter[str | int]:
        """The pieces of ``text`` with their multiplicities (``ordered``'s pieces, counted)."""
        return Counter(self.ordered(text))


def _alternation(words: list[str]) -> str:
    """One pattern matching any of ``words``, longest first, as a trie (fast on thousands)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a word ends here: the longer ones are tried first
            return f"(?:{body})?"
        return body

    return build(trie)


def _overlapping(words: list[str]) -> bool:
    """Whether an end of one word can start another (then which one llama.cpp cuts out depends
    on its order of search, which we do not reproduce)."""
    starts = {w[:i] for w in words for i in range(1, len(w) + 1)}
    return any(w[i:] in starts for w in words for i in range(1, len(w)))


class BpeCounter:
    """Counts tokens as llama.cpp does for one byte-level BPE vocabulary (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pieces: dict[str, int] = {}  # piece -> tokens; pieces repeat across texts

    @classmethod
    def load(cls, path: Path) -> BpeCounter | None:
        """The counter for a GGUF's vocabulary, or None where llama.cpp must count. Only the
        tokenizer's names are read here; the vocabulary is read on first use, so after
        ``count_many`` has forked, every process reads its own at the same time."""
        try:
            head = read_vocabulary(path, ("tokenizer.ggml.model", "tokenizer.ggml.pre"))
        except ModelError:
            return None
        name = bytes(head.get("tokenizer.ggml.pre", b"")).decode("utf-8", "replace")
        if head.get("tokenizer.ggml.model") != b"gpt2" or (name not in PRE_TOKENIZERS and name != "deepseek-llm"):
            return None
        return cls(path)

    @cached_property
    def _vocab(self) -> tuple[Sequence[bytes], Sequence[bytes], _Gpt2Split | _DeepSeekSplit | None]:
        """Tokens, merges and the pre-tokenizer; None for the last where we do not reproduce
        llama.cpp (user-defined tokens with GPT-2's pattern, overlapping ones with DeepSeek's)."""
        try:
            vocab = read_vocabulary(self._path)
        except ModelError:
            return [], [], None
        name = bytes(vocab.get("tokenizer.ggml.pre", b"")).decode("utf-8", "replace")
        tokens, merges = vocab.get("tokenizer.ggml.tokens") or [], vocab.get("tokenizer.ggml.merges") or []
        types = vocab.get("tokenizer.ggml.token_type") or []
        user_defined = {
            tokens[i].decode("utf-8", "replace"): i for i, kind in enumerate(types) if kind == _TOKEN_TYPE_USER_DEFINED
        }
        if not tokens or not merges:
            return tokens, merges, None
        if name in PRE_TOKENIZERS and not user_defined:
            return tokens, merges, _Gpt2Split(PRE_TOKENIZERS[name])
        plain_tokens = not any("\r" in t or "\n" in t or not t for t in user_defined)
        if name == "deepseek-llm" and plain_tokens and not _overlapping(list(user_defined)):
            return tokens, merges, _DeepSeekSplit(user_defined)
        return tokens, merges, None

    @property
    def _pre(self) -> _Gpt2Split | _DeepSeekSplit:
        pre = self._vocab[2]
        if pre is None:
            raise ValueError(f"{self._path}: a vocabulary whose tokenization is left to llama.cpp")
        return pre

    @property
    def encodes_faster(self) -> bool:
        """Whether ``encode`` beats llama.cpp on long texts: for DeepSeek's pre-tokenizer, whose
        std::regex steps are slow in llama.cpp (300 KB of prose: 0.06 s here vs 0.58 s), not for
        GPT-2's, which llama.cpp splits by hand."""
        return isinstance(self._vocab[2], _DeepSeekSplit)

    @property
    def reproduced(self) -> bool:
        """Whether this vocabulary's tokenization is reproduced (reads it)."""
        return self._vocab[2] is not None

    # The lookup tables, too, are built on first use, by each process after a fork.

    @cached_property
    def _ids(self) -> dict[bytes, int]:
        """Token text -> id; where two ids share a text, llama.cpp's map keeps the last."""
        return {token: i for i, token in enumerate(self._vocab[0])}

    @cached_property
    def _ranks(self) -> dict[bytes, int]:
        """``b"left right"`` -> merge rank."""
        return {merge: rank for rank, merge in enumerate(self._vocab[1])}

    def _merge(self, piece: str) -> list[bytes]:
        """llama.cpp's BPE on one piece (llm_tokenizer_bpe_session): merge the adjacent pair of
        lowest merge rank, leftmost first, until no adjacent pair is a merge."""
        symbols = [_BYTE_SYMBOLS[b] for b in piece.encode("utf-8")]
        if len(symbols) > _LONG_PIECE:
            return self._merge_long(symbols)
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

    def _merge_long(self, symbols: list[bytes]) -> list[bytes]:
        """``_merge`` for a long piece (a word of 50,000 letters, a line of DNA), in O(n log n):
        the candidate pairs wait in a heap ordered by (rank, position), as llama.cpp keeps them
        in its priority queue; the symbols form a linked list. A pair popped after one of its
        symbols changed is skipped (its rank no longer matches) or gone (its left symbol merged
        away). Same result as the list scan above, which is faster on the short pieces of text
        but quadratic in the piece's length."""
        import heapq

        ranks = self._ranks
        n = len(symbols)
        live: list[bytes | None] = list(symbols)
        after = [*range(1, n), -1]  # index of the next live symbol, -1 at the end
        before = list(range(-1, n - 1))
        heap = [
            (rank, i) for i, (a, b) in enumerate(pairwise(symbols)) if (rank := ranks.get(a + b" " + b)) is not None
        ]
        heapq.heapify(heap)
        while heap:
            rank, i = heapq.heappop(heap)
            left, j = live[i], after[i]
            if left is None or j < 0:
                continue
            right = live[j]
            assert right is not None
            if ranks.get(left + b" " + right) != rank:
                continue  # stale: a neighbour was merged since this pair was queued
            merged = live[i] = left + right
            live[j] = None
            after[i] = after[j]
            if after[j] >= 0:
                before[after[j]] = i
            k = before[i]
            if k >= 0 and (r := ranks.get((live[k] or b"") + b" " + merged)) is not None:
                heapq.heappush(heap, (r, k))
            k = after[i]
            if k >= 0 and (r := ranks.get(merged + b" " + (live[k] or b""))) is not None:
                heapq.heappush(heap, (r, i))
        return [s for s in live if s is not None]

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
        return len(self._piece_ids(piece))

    def split(self, text: str) -> list[str | int]:
        """The pre-tokenizer's pieces of ``text`` in order (user-defined tokens as their ids), by
        the plain reading of llama.cpp's rules that ``encode`` uses."""
        return self._pre.split(text)

    def pieces(self, text: str) -> Counter[str | int]:
        """The same pieces with their multiplicities, by the faster route ``count`` takes."""
        return self._pre.pieces(text)

    def encode(self, text: str) -> list[int] | None:
        """Token ids of ``text``, as ``llama_tokenize(..., add_special=False, parse_special=False)``
        gives them; None where llama.cpp must tokenize (see ``count_pieces``)."""
        if not self.reproduced:
            return None
        pieces = self._pre.ordered(text)
        if not all(isinstance(p, int) or p.isascii() or _classifiable(p) for p in pieces):
            return None
        known = self._encoded
        out: list[int] = []
        for piece in pieces:
            if isinstance(piece, int):
                out.append(piece)
                continue
            ids = known.get(piece)
            if ids is None:
                ids = self._piece_ids(piece)
                if len(piece) <= _LONG_PIECE:  # pieces repeat; a long one seldom does
                    known[piece] = ids
            out.extend(ids)
        return out

    @cached_property
    def _encoded(self) -> dict[str, list[int]]:
        """piece -> its ids, as ``_pieces`` keeps counts: ``encode`` merges each distinct piece once."""
        return {}

    def count_pieces(self, pieces: Counter[str | int]) -> int | None:
        """Tokens in a text given its ``pieces`` (ids count one each); None if it holds a character
        we cannot classify exactly as llama.cpp does (unassigned here, or a lone surrogate)."""
        known = self._pieces
        total = 0
        for piece, times in pieces.items():
            if isinstance(piece, int):
                total += times
                continue
            n = known.get(piece)
            if n is None:
                if not piece.isascii() and not _classifiable(piece):
                    return None
                n = known[piece] = self._piece_tokens(piece)
            total += n * times
        return total

    def count(self, text: str) -> int | None:
        """Tokens in ``text``, or None: for text that is more than a fifth CJK, llama.cpp is the
        faster (its pieces are whole clauses, long for BPE in Python), and for what ``count_pieces``
        declines."""
        if not text:
            return 0
        if not self.reproduced or (not text.isascii() and len(text) - len(_CJK.sub("", text)) > len(text) // 5):
            return None
        return self.count_pieces(self._pre.pieces(text))

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


# Pieces of more bytes than this go through the heap (``BpeCounter._merge_long``): the list scan
# is faster on short pieces, quadratic on long ones (a 20,000-letter word took 12 s, now 0.1 s).
_LONG_PIECE = 256

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
# Kana, CJK ideographs (and extension A, compatibility) and Hangul syllables.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


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
