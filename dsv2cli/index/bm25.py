"""BM25 over chunks, with a tokenizer that understands identifiers, paths and clause numbers.

``parse_config_file`` and ``parseConfigFile`` both index as the whole identifier plus its words
(``parse``, ``config``, ``file``); ``src/app/main.py`` as its path parts; ``8.2`` stays ``8.2``.
Field weighting (BM25F-style): a chunk's path and definition names count extra, so a question that
names a file or a function finds it.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\d+(?:\.\d+)+[a-z]?|[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

_STOPWORD_TEXT = """a an and are as at be been but by can could do does did for from had has have how i if in into is it
    its may me my no not of on or our should so such than that the their them then there these they this
    those to under up was we were what when where which while who whom why will with would you your
    about after any all also each get gets got only other out over same some very via"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

PATH_WEIGHT = 2.0
SYMBOL_WEIGHT = 2.0


def _stem(word: str) -> str:
    """A deliberately light stemmer (plurals, -ing, -ed, final e), so 'parsing' meets 'parse'."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 5:
        word = word[:-2]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Index terms of a text: lowercased identifiers, their parts, numbers and clause numbers."""
    terms: list[str] = []
    for raw in _TOKEN.findall(text):
        terms.extend(_terms(raw))
    return terms


@functools.lru_cache(maxsize=1 << 16)
def _terms(raw: str) -> tuple[str, ...]:
    """The index terms of one word as the text spells it. Cached: words repeat (a corpus of a few
    hundred chunks has ~50 occurrences per distinct word), and splitting and stemming each
    occurrence again was two thirds of building the index (3M's 10-K, 366 chunks: 0.20 s -> 0.07 s)."""
    if raw[0].isdigit():
        return (raw.lower(),)
    whole = raw.lower().strip("_")
    if not whole:
        return ()
    parts = [p.lower() for piece in raw.split("_") if piece for p in _CAMEL.findall(piece)]
    if len(parts) > 1:
        return (whole, *(_stem(p) for p in parts if p not in STOPWORDS and len(p) > 1))
    if whole not in STOPWORDS and len(whole) > 1:
        return (_stem(whole),)
    return ()


@dataclass(frozen=True)
class BM25Doc:
    text: str
    path: str = ""
    symbol: str | None = None


class BM25:
    """Okapi BM25 (k1=1.2, b=0.75) with weighted path and symbol fields."""

    def __init__(self, docs: Sequence[BM25Doc], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._postings: dict[str, list[tuple[int, float]]] = {}
        self._lengths: list[int] = []
        path_cache: dict[str, Counter[str]] = {}
        for index, doc in enumerate(docs):
            counts: Counter[str] = Counter(tokenize(doc.text))
            self._lengths.append(sum(counts.values()))
            weighted: dict[str, float] = dict(counts)
            if doc.path:
                if doc.path not in path_cache:
                    path_cache[doc.path] = Counter(tokenize(doc.path.replace("/", " ").replace(".", " ")))
                for term, n in path_cache[doc.path].items():
                    weighted[term] = weighted.get(term, 0.0) + PATH_WEIGHT * n
            if doc.symbol:
                for term, n in Counter(tokenize(doc.symbol)).items():
                    weighted[term] = weighted.get(term, 0.0) + SYMBOL_WEIGHT * n
            for term, tf in weighted.items():
                self._postings.setdefault(term, []).append((index, tf))
        self._n = len(docs)
        self._avg = (sum(self._lengths) / self._n) if self._n else 1.0

    def __len__(self) -> int:
        return self._n

    def scores(self, query: str) -> dict[int, float]:
        """Positive scores by document index; documents sharing no term are absent."""
        result: dict[int, float] = {}
        for term, q_count in Counter(tokenize(query)).items():
            postings = self._postings.get(term)
            if not postings:
                continue
            df = len(postings)
            idf = math.log(1.0 + (self._n - df + 0.5) / (df + 0.5))
            for index, tf in postings:
                norm = self.k1 * (1.0 - self.b + self.b * self._lengths[index] / self._avg)
                result[index] = result.get(index, 0.0) + q_count * idf * tf * (self.k1 + 1.0) / (tf + norm)
        return result
