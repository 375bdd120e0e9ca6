"""Extracted PDF text, kept by content, so that the same PDF is not parsed again.

PDFium takes ~7.5 ms a page to give up a page's text (1.2 s of a 160-page 10-K, most of the load
of a 2,415-page manual), and every ``ask``, ``plan``, ``pack`` or ``summarize`` of the same file
paid it again. The cleaned page texts and the outline are kept in
``$DSV2_HOME/cache/pdf-text/<sha256 of the file's bytes>.json``, stamped with the reader's
version and pypdfium2's: a changed file is another entry, a changed reader a miss.

- A PDF opened with a password is never kept: its text would sit on disk unprotected.
- At most ``max_bytes`` are kept; the least recently used entries go first.
- Whatever is wrong with the cache (unreadable, damaged, a full disk) costs a re-read, never
  the run: a cache is an optimisation, and the file's own bytes are always there.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import write_atomic

DEFAULT_MAX_BYTES = 256 * 2**20

# (pages, outline rows (level, title, page index))
Extracted = tuple[list[str], list[tuple[int, str, int]]]


@functools.lru_cache(maxsize=1)
def _pdfium_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pypdfium2")
    except PackageNotFoundError:  # pragma: no cover - a dependency
        return "unknown"


@dataclass(frozen=True)
class PdfTextCache:
    directory: Path
    reader_version: int
    max_bytes: int = DEFAULT_MAX_BYTES

    def _stamp(self) -> str:
        return f"{self.reader_version}/{_pdfium_version()}"

    def _path(self, data: bytes) -> Path:
        return self.directory / f"{hashlib.sha256(data).hexdigest()}.json"

    def get(self, data: bytes) -> Extracted | None:
        """What was extracted from these bytes by this reader, or None."""
        path = self._path(data)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("stamp") != self._stamp():
                return None
            pages = [str(p) for p in entry["pages"]]
            outline = [(int(level), str(title), int(page)) for level, title, page in entry["outline"]]
            os.utime(path)  # recently used: pruned last
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return pages, outline

    def put(self, data: bytes, extracted: Extracted) -> None:
        pages, outline = extracted
        entry = {"stamp": self._stamp(), "pages": pages, "outline": [list(row) for row in outline]}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # ASCII escapes: a lone surrogate that PDFium let through stays what it was, where UTF-8
            # could not encode it.
            write_atomic(self._path(data), json.dumps(entry))
            self._prune()
        except (OSError, ValueError):
            pass  # not kept: the next run reads the PDF again

    def _entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, path) of every entry."""
        entries = []
        for path in self.directory.glob("*.json") if self.directory.is_dir() else []:
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        return entries

    def status(self) -> dict[str, object]:
        """``dsv2 cache status``: where, how many entries, how big."""
        entries = self._entries()
        return {
            "directory": str(self.directory),
            "entries": len(entries),
            "size_bytes": sum(size for _, size, _ in entries),
            "max_bytes": self.max_bytes,
        }

    def clear(self) -> int:
        """Delete every entry (``dsv2 cache clear``); how many there were."""
        entries = self._entries()
        for _, _, path in entries:
            path.unlink(missing_ok=True)
        return len(entries)

    def _prune(self) -> None:
        """Drop the least recently used entries until the rest fit ``max_bytes``."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
