"""A persistent cache of evaluated prompt prefixes (llama.cpp state files) under DSV2_HOME.

Prompts put the system prompt and the documents first and the question last, so the document
prefix is identical across questions. After evaluating it, the engine saves llama.cpp's state
for exactly that prefix; the next run over the same input loads it and evaluates only the rest.

Keyed by the model file's identity, n_ctx and every option that changes the KV cache, plus the
prefix token ids. Bounded in size, least recently used first out. A file that fails to load or
holds other tokens is deleted and reported, never trusted.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import temp_beside

SUFFIX = ".state"
MIN_PREFIX_TOKENS = 256  # below this, evaluating is cheaper than a disk round trip


@dataclass(frozen=True)
class CacheStatus:
    directory: Path
    entries: int
    size_bytes: int
    max_bytes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "entries": self.entries,
            "size_bytes": self.size_bytes,
            "max_bytes": self.max_bytes,
        }


class PrefixCache:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    @staticmethod
    def key(model_identity: str, settings: str, prefix_ids: list[int]) -> str:
        digest = hashlib.sha256()
        digest.update(model_identity.encode())
        digest.update(b"\0" + settings.encode() + b"\0")
        digest.update(struct.pack(f"<{len(prefix_ids)}i", *prefix_ids))
        return digest.hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def lookup(self, key: str) -> Path | None:
        path = self.path(key)
        if not path.is_file():
            return None
        os.utime(path)  # least recently *used*: a hit counts as a use
        return path

    def reserve(self, key: str) -> Path:
        """A temporary path to write a new entry to (llama.cpp writes it); :meth:`commit` moves it into
        place in one rename, as ``fsutil.replacing`` does."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return temp_beside(self.path(key))

    def commit(self, key: str, tmp: Path) -> None:
        tmp.replace(self.path(key))  # atomic: readers see a whole file or none
        self.evict()

    def discard(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def _entries(self) -> list[tuple[float, int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append((st.st_mtime, st.st_size, path))
        return sorted(found)

    def evict(self) -> int:
        """Delete least recently used entries until the cache fits ``max_bytes``; return how many."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    def status(self) -> CacheStatus:
        entries = self._entries()
        return CacheStatus(self.directory, len(entries), sum(s for _, s, _ in entries), self.max_bytes)

    def clear(self) -> int:
        entries = self._entries()
        for _, _, path in entries:
            path.unlink(missing_ok=True)
        for tmp in self.directory.glob(".*.tmp") if self.directory.is_dir() else []:
            tmp.unlink(missing_ok=True)
        return len(entries)
