"""The model's own tokenizer, used for exact counts and for the ids we send.

Document text is always tokenized with ``special=False``: a document that contains
``<|im_end|>`` or ``<｜end▁of▁sentence｜>`` gets the ordinary text tokens, never the control
token. Only the chat template's own scaffolding may produce special tokens (see chat.py).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError

if TYPE_CHECKING:
    from llama_cpp import Llama


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


class Tokenizer:
    """Wraps a loaded ``llama_cpp.Llama`` (full or vocab-only) for tokenization."""

    def __init__(self, llama: Llama) -> None:
        self._llama = llama

    @classmethod
    def load(cls, path: Path, *, verbose: bool = False) -> Tokenizer:
        """Load only the vocabulary of a GGUF (no weights): ~0.5 s for a small model."""
        from llama_cpp import Llama

        from .engines import llamalog

        llamalog.configure(verbose)
        try:
            llama = Llama(str(path), vocab_only=True, verbose=verbose)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"{path}: cannot load tokenizer ({exc})") from exc
        return cls(llama)

    @property
    def llama(self) -> Llama:
        return self._llama

    def encode(self, text: str) -> list[int]:
        """Tokens for ``text`` as plain data: no BOS, no special tokens."""
        if not text:
            return []
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count(self, text: str) -> int:
        return len(self.encode(text))

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
        return bool(self._model.add_bos_token())

    @property
    def _model(self) -> Any:
        return self._llama._model  # llama_cpp's LlamaModel: token attributes and texts

    def token_text(self, token: int) -> str:
        return str(self._model.token_get_text(token))

    @cached_property
    def special_tokens(self) -> dict[str, int]:
        """Text -> id of every control / user-defined token (what ``special=True`` would match)."""
        import llama_cpp

        mask = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        model = self._model
        found: dict[str, int] = {}
        for token in range(model.n_vocab()):
            if model.token_get_attr(token) & mask:
                text = model.token_get_text(token)
                if text:
                    found.setdefault(text, token)
        return found

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


class CountCache:
    """Token counts per (tokenizer, content hash), persisted in ``$DSV2_HOME/cache/token-counts.sqlite``.

    Short texts are counted directly (a lookup costs more than tokenizing them); long ones are
    looked up first, so re-planning a 300-page PDF does not re-tokenize it.
    """

    MIN_CHARS = 2048

    def __init__(self, tokenizer: Tokenizer, path: Path, tokenizer_key: str) -> None:
        import sqlite3

        self.tokenizer = tokenizer
        self.key = tokenizer_key
        self.hits = 0
        self.misses = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counts (tokenizer TEXT, sha256 TEXT, tokens INTEGER,"
            " PRIMARY KEY (tokenizer, sha256))"
        )
        self._pending: list[tuple[str, str, int]] = []

    def count(self, text: str) -> int:
        if len(text) < self.MIN_CHARS:
            return self.tokenizer.count(text)
        import hashlib

        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        row = self._db.execute(
            "SELECT tokens FROM counts WHERE tokenizer = ? AND sha256 = ?", (self.key, digest)
        ).fetchone()
        if row is not None:
            self.hits += 1
            return int(row[0])
        self.misses += 1
        tokens = self.tokenizer.count(text)
        self._pending.append((self.key, digest, tokens))
        if len(self._pending) >= 256:
            self.flush()
        return tokens

    def flush(self) -> None:
        if self._pending:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO counts VALUES (?, ?, ?)", self._pending)
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._db.close()


def tokenizer_key(model_path: Path) -> str:
    """Identity of a model file's tokenizer for caches: path, size and modification time."""
    st = model_path.stat()
    return f"{model_path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
