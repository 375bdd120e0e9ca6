"""The persistent per-corpus index: chunk records in a manifest, vectors in a ``VectorStore``.

Layout under ``$DSV2_HOME/index/<corpus-id>/``::

    manifest.json   files (stat, content hash, chunks with text and location); written last, atomically
    chroma/         the default vector store (vectors.py): chromadb PersistentClient, one collection
                    per embedder fingerprint, ids = chunk hashes
    lock            filelock: one writer at a time, across processes
    BUILDING        present while vectors are being changed; left behind by an interrupted build.
                    JSON: pid, roots, embedder, and progress (chunks with a vector / chunks),
                    rewritten after every embedded batch, so ``status`` can say how far it got

Consistency: the manifest is the truth about chunks. It is written before the vectors (with the
marker present), so BM25 covers every file as soon as chunking is done, and an interrupted
build's chunks are known; the vectors then fill in. A vector is named by its chunk's content hash,
so a vector either belongs to some chunk or is garbage, never stale. An update that finds
``BUILDING`` (an earlier run died mid-build) reconciles the vector store against the manifest:
missing vectors are embedded, stray ones deleted. A file whose Document (text and locations)
hashes as before is never re-chunked or re-embedded, and a no-change update does not open the
vector store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Dsv2Error
from ..fsutil import write_atomic
from ..sources.base import Document, Location
from .chunking import CHUNKER_VERSION, Chunk, chunk_document
from .embedder import Embedder
from .server import EMBEDDED, vectors_location
from .vectors import DamagedStoreError, EmbeddedChroma, VectorStoreFactory

MANIFEST_VERSION = 1
MANIFEST = "manifest.json"
MARKER = "BUILDING"
EMBED_BATCH = 32
LOCK_TIMEOUT_S = 600.0


class IndexBusyError(Dsv2Error):
    """Another dsv2 process held the index lock for too long."""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the index keeps it (what ranking and packing work on)."""

    hash: str
    text: str
    location: Location
    ordinal: int
    symbol: str | None = None
    context: str | None = None  # see Chunk.context

    @property
    def path(self) -> str:
        return self.location.source

    @property
    def index_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True)
class UpdateReport:
    files: int
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    embedded: int = 0  # chunks sent to the embedder
    recovered: bool = False  # an interrupted earlier build was detected and repaired
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)  # one line each, for the user (a store rebuilt)


@dataclass(frozen=True)
class PendingWork:
    """What the next update of an index would have to do (``CorpusIndex.pending``)."""

    state: str  # the index now: "missing", "interrupted" or "ready"
    files: int  # in the corpus
    chunks: int  # in the corpus, as the index would hold them
    stale_files: int  # added, changed or removed since the last update: chunked again
    to_embed: int  # distinct chunks without a vector of the given embedder


@dataclass(frozen=True)
class IndexStatus:
    corpus_id: str
    directory: Path
    exists: bool
    state: str  # "ready", "interrupted", "building" (another process holds the lock) or "missing"
    files: int = 0  # files whose chunks the manifest holds: BM25 covers them
    chunks: int = 0
    size_bytes: int = 0
    updated_at: float | None = None  # POSIX time of the last manifest write
    embedder: str | None = None
    roots: list[str] = field(default_factory=list)
    store: str | None = None  # where its vectors are: "embedded" or an index server's URL
    embedded: int | None = None  # distinct chunks with a vector (None: no embedder, or unknown)
    to_embed: int | None = None  # distinct chunks that should have one

    @property
    def complete(self) -> bool:
        return self.state == "ready"

    def summary(self) -> str:
        """One line on what the index holds, e.g. "interrupted at 384/4,297 chunks; the next run
        resumes; BM25 covers all files"."""
        if self.state == "missing":
            return "no index yet: the first `dsv2 ask` on this corpus builds it"
        if self.state == "ready":
            vectors = f"vectors from {self.embedder}" if self.embedder else "no vectors (BM25 only)"
            return f"complete: {self.files:,} files, {self.chunks:,} chunks, {vectors}"
        progress = (
            f" at {self.embedded:,}/{self.to_embed:,} chunks"
            if self.embedded is not None and self.to_embed is not None
            else ""
        )
        bm25 = "BM25 covers all files" if self.files else "BM25 covers no file yet"
        if self.state == "building":
            return f"being built by another dsv2 process{progress.replace(' at', ',')}; {bm25}"
        return f"interrupted{progress}; the next run resumes; {bm25}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "corpus_id": self.corpus_id,
            "directory": str(self.directory),
            "state": self.state,
            "complete": self.complete,
            "summary": self.summary(),
            "files": self.files,
            "chunks": self.chunks,
            "embedded_chunks": self.embedded,
            "chunks_to_embed": self.to_embed,
            "size_bytes": self.size_bytes,
            "updated_at": self.updated_at,
            "embedder": self.embedder,
            "roots": self.roots,
            "store": self.store,
        }


def corpus_id(roots: Iterable[Path]) -> str:
    """Stable id of a corpus: a hash of its resolved root paths."""
    resolved = sorted(str(Path(r).expanduser().resolve()) for r in roots)
    return hashlib.sha256("\0".join(resolved).encode()).hexdigest()[:16]


def document_hash(document: Document) -> str:
    """Changes when any text or location of the document changes."""
    digest = hashlib.sha256(document.kind.encode())
    for segment in document.segments:
        loc = segment.location
        digest.update(f"\0{loc.page}\0{loc.line_start}\0{loc.line_end}\0{loc.section}\0".encode())
        digest.update(segment.text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def _chunk_record(chunk: Chunk) -> dict[str, Any]:
    loc = chunk.location
    return {
        "h": chunk.hash,
        "t": chunk.text,
        "o": chunk.ordinal,
        "s": chunk.symbol,
        "p": loc.page,
        "a": loc.line_start,
        "b": loc.line_end,
        "c": loc.section,
        "x": chunk.context,
    }


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of the index in ``directory``; None when absent, unreadable or of another version."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        return None
    return data


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The BUILDING marker's JSON (None when absent); {} for an unreadable or older one."""
    try:
        text = (directory / MARKER).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def locked_by_other(directory: Path) -> bool:
    """Whether another process holds the lock of the index in ``directory`` now (a build in progress)."""
    from filelock import FileLock, Timeout

    if not (directory / "lock").exists():
        return False
    try:
        with FileLock(str(directory / "lock"), timeout=0):
            return False
    except Timeout:
        return True
    except OSError:
        return False


class CorpusIndex:
    """The index of one corpus (a set of root paths) under ``home``; its vectors are kept by
    ``vectors`` (default: an embedded chromadb in the index directory, or the index server in
    use: server.py)."""

    def __init__(
        self,
        home: Path,
        roots: Sequence[Path],
        *,
        embed_batch: int = EMBED_BATCH,
        vectors: VectorStoreFactory | None = None,
    ) -> None:
        self.home = Path(home)
        self.embed_batch = embed_batch  # texts per embedder call (and per vector store write)
        self.vectors: VectorStoreFactory = vectors if vectors is not None else EmbeddedChroma()
        self.location = vectors_location(self.vectors)  # recorded in the manifest as "store"
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.corpus_id = corpus_id(self.roots)
        self.directory = self.home / "index" / self.corpus_id
        self.manifest_path = self.directory / MANIFEST
        self.marker_path = self.directory / MARKER
        self._manifest: tuple[tuple[int, int, int], dict[str, Any]] | None = None  # (file key, parsed)

    # -- locking and manifest -------------------------------------------------------------

    def _lock(self) -> Any:
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.directory / "lock"), timeout=LOCK_TIMEOUT_S)

    def _read_manifest(self) -> dict[str, Any] | None:
        """The manifest, parsed again only when the file changed (its inode, size or mtime), so
        that one ``retrieve`` (update, chunks, dense_scores) parses it once while another
        process's update is still seen. Shared: callers never change it."""
        key = self._manifest_key()
        if key is not None and self._manifest is not None and self._manifest[0] == key:
            return self._manifest[1]
        manifest = read_manifest(self.directory)
        # stat before reading: a file replaced in between is parsed again next time, never stale
        self._manifest = (key, manifest) if key is not None and manifest is not None else None
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        write_atomic(self.manifest_path, json.dumps(manifest, ensure_ascii=False, separators=(",", ":")), durable=True)
        key = self._manifest_key()  # written under the lock: the file is ours until it is released
        self._manifest = (key, manifest) if key is not None else None

    def _manifest_key(self) -> tuple[int, int, int] | None:
        try:
            stat = self.manifest_path.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def _read_marker(self) -> dict[str, Any] | None:
        return read_marker(self.directory)

    # -- update -------------------------------------------------------------------------

    def update(
        self,
        documents: Sequence[Document],
        embedder: Embedder | None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> UpdateReport:
        """Bring the index in line with ``documents`` (the whole corpus, from the source layer);
        returns what changed. Holds the lock throughout."""
        from filelock import Timeout

        started = time.perf_counter()
        try:
            with self._lock():
                report = self._update_locked(documents, embedder, progress)
        except Timeout as exc:
            raise IndexBusyError(f"index {self.directory} is locked by another dsv2 process") from exc
        return UpdateReport(**{**report.__dict__, "seconds": time.perf_counter() - started})

    def _update_locked(
        self,
        documents: Sequence[Document],
        embedder: Embedder | None,
        progress: Callable[[int, int], None] | None,
    ) -> UpdateReport:
        old = self._read_manifest()
        recovered = self.marker_path.exists()
        fingerprint = embedder.fingerprint if embedder is not None else None
        if old is not None and old.get("chunker") != CHUNKER_VERSION:
            old = None
        old_files: dict[str, Any] = old["files"] if old else {}
        new_files: dict[str, Any] = {}
        added: list[str] = []
        changed: list[str] = []
        for document in documents:
            entry = old_files.get(document.source)
            digest = document_hash(document)
            if entry and entry["hash"] == digest:
                new_files[document.source] = entry
                continue
            chunks = [_chunk_record(c) for c in chunk_document(document)]
            new_files[document.source] = {"hash": digest, "kind": document.kind, "chunks": chunks}
            (changed if entry else added).append(document.source)
        removed = [name for name in old_files if name not in new_files]

        vectors_ok = old is not None and old.get("vectors") == fingerprint and not recovered
        vectors_ok = vectors_ok and old is not None and old.get("store", EMBEDDED) == self.location
        if old is not None and not (added or changed or removed) and vectors_ok:
            return UpdateReport(files=len(new_files))

        manifest = {
            "version": MANIFEST_VERSION,
            "chunker": CHUNKER_VERSION,
            "corpus_id": self.corpus_id,
            "roots": [str(r) for r in self.roots],
            "vectors": fingerprint,
            "store": self.location,  # where the vectors are: "embedded" or an index server's URL
            "embedder": embedder.name if embedder is not None else None,
            "updated_at": time.time(),
            "files": new_files,
        }
        marker = {
            "pid": os.getpid(),
            "roots": manifest["roots"],
            "embedder": manifest["embedder"],
            "vectors": fingerprint,
        }
        write_atomic(self.marker_path, json.dumps(marker))
        # The chunks first, so BM25 covers every file even if embedding is cut short; the marker
        # says the vectors are not complete yet.
        self._write_manifest(manifest)
        embedded = 0
        notices: list[str] = []
        if embedder is not None and fingerprint is not None:
            wanted: dict[str, str] = {}
            for record in new_files.values():
                for chunk in record["chunks"]:
                    wanted.setdefault(chunk["h"], f"{chunk['x']}\n{chunk['t']}" if chunk["x"] else chunk["t"])
            try:
                embedded = self._embed(
                    wanted, old_files if vectors_ok else None, embedder, fingerprint, marker, progress
                )
            except DamagedStoreError as exc:
                notices.append(self.set_aside_damaged(exc))
                embedded = self._embed(wanted, None, embedder, fingerprint, marker, progress)
        else:
            self.vectors.drop(self.directory)

        self._write_manifest({**manifest, "updated_at": time.time()})
        self.marker_path.unlink(missing_ok=True)
        return UpdateReport(
            files=len(new_files),
            added=added,
            changed=changed,
            removed=removed,
            embedded=embedded,
            recovered=recovered,
            notices=notices,
        )

    def set_aside_damaged(self, damage: DamagedStoreError) -> str:
        """Move a damaged vector store aside and leave the BUILDING marker, so the next update
        embeds every chunk again from the manifest's text; the notice for the user. A store that
        cannot be set aside here (an index server) re-raises ``damage``."""
        set_aside = getattr(self.vectors, "set_aside", None)
        if set_aside is None:
            raise damage
        moved = set_aside(self.directory)
        if not self.marker_path.exists():
            write_atomic(self.marker_path, json.dumps({"pid": os.getpid(), "embedded": 0, "damaged": True}))
        return f"{damage}; moved aside to {moved}, the vectors are embedded again from the sources"

    def _embed(
        self,
        wanted: dict[str, str],
        old_files: dict[str, Any] | None,
        embedder: Embedder,
        fingerprint: str,
        marker: dict[str, Any],
        progress: Callable[[int, int], None] | None,
    ) -> int:
        """Give every chunk of ``wanted`` (hash -> text) a vector and drop stray ones; how many
        were embedded. ``old_files``: the previous manifest's files when its vectors are known
        complete (the store is then not listed)."""
        store = self.vectors.create(self.directory, fingerprint)
        known = old_files is not None
        present = {c["h"] for r in (old_files or {}).values() for c in r["chunks"]} if known else store.ids()
        store.delete(sorted(present - wanted.keys()))
        missing = [h for h in wanted if h not in present]
        have = len(wanted) - len(missing)
        embedded = 0
        if progress is not None and missing:
            progress(0, len(missing))
        for start in range(0, len(missing), self.embed_batch):
            batch = missing[start : start + self.embed_batch]
            vectors = embedder.embed([wanted[h] for h in batch])
            store.add(batch, vectors)
            embedded += len(batch)
            write_atomic(self.marker_path, json.dumps({**marker, "embedded": have + embedded, "of": len(wanted)}))
            if progress is not None:
                progress(embedded, len(missing))
        return embedded

    def pending(self, documents: Sequence[Document], fingerprint: str | None) -> PendingWork:
        """What :meth:`update` would do for ``documents``, without writing, embedding or opening
        the vector store (for ``dsv2 plan``): files whose Document is unchanged keep their manifest chunks,
        the others are chunked here with the index's own chunker, so the counts are exact.
        ``fingerprint`` is the embedder's (None: no vectors of it exist yet, every chunk counts).
        After an interrupted build the vectors are not known without the store: every chunk counts."""
        old = self._read_manifest()
        if old is not None and old.get("chunker") != CHUNKER_VERSION:
            old = None
        old_files: dict[str, Any] = old["files"] if old else {}
        wanted: set[str] = set()
        chunks = 0
        stale = 0
        for document in documents:
            entry = old_files.get(document.source)
            if entry and entry["hash"] == document_hash(document):
                hashes = [c["h"] for c in entry["chunks"]]
            else:
                hashes = [c.hash for c in chunk_document(document)]
                stale += 1
            chunks += len(hashes)
            wanted.update(hashes)
        names = {d.source for d in documents}
        stale += sum(1 for name in old_files if name not in names)
        marker = self._read_marker()
        recovered = marker is not None
        vectors_ok = old is not None and fingerprint is not None and old.get("vectors") == fingerprint
        vectors_ok = vectors_ok and old is not None and old.get("store", EMBEDDED) == self.location
        present = {c["h"] for r in old_files.values() for c in r["chunks"]} if vectors_ok and not recovered else set()
        to_embed = len(wanted - present)
        if recovered and vectors_ok and marker and marker.get("vectors") == fingerprint and stale == 0:
            # an interrupted build of this same corpus: its marker says how many vectors it kept
            to_embed = max(0, len(wanted) - int(marker.get("embedded", 0)))
        state = "missing" if old is None else ("interrupted" if recovered else "ready")
        return PendingWork(state, len(documents), chunks, stale, to_embed)

    # -- reading ------------------------------------------------------------------------

    def chunks(self) -> list[StoredChunk]:
        """Every chunk of the last completed update, in corpus order."""
        manifest = self._read_manifest()
        if manifest is None:
            return []
        result: list[StoredChunk] = []
        for display, record in manifest["files"].items():
            for c in record["chunks"]:
                location = Location(display, page=c["p"], line_start=c["a"], line_end=c["b"], section=c["c"])
                result.append(StoredChunk(c["h"], c["t"], location, c["o"], c["s"], c["x"]))
        return result

    def dense_scores(self, query: str, embedder: Embedder, limit: int = 400) -> dict[str, float]:
        """Cosine similarity by chunk hash for the ``limit`` nearest chunks ({} when no vectors)."""
        if not query.strip():
            return {}
        manifest = self._read_manifest()
        if manifest is None or manifest.get("vectors") != embedder.fingerprint:
            return {}
        if manifest.get("store", EMBEDDED) != self.location:
            return {}
        store = self.vectors.open(self.directory, embedder.fingerprint)
        if store is None:
            return {}
        count = store.count()
        if count == 0:
            return {}
        vector = embedder.embed([query])[0]
        return dict(store.query(vector, min(limit, count)))

    # -- status / drop --------------------------------------------------------------------

    def status(self) -> IndexStatus:
        return status_of(self.directory)

    def rebuild(
        self,
        documents: Sequence[Document],
        embedder: Embedder | None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> UpdateReport:
        """Drop the index and build it again from scratch (``dsv2 index rebuild``)."""
        self.drop()
        return self.update(documents, embedder, progress=progress)

    def drop(self) -> bool:
        """Delete the index; False when there was none."""
        from filelock import Timeout

        if not self.directory.exists():
            return False
        try:
            with self._lock():
                self.vectors.drop(self.directory)
                for child in self.directory.iterdir():
                    if child.name == "lock":
                        continue
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        except Timeout as exc:
            raise IndexBusyError(f"index {self.directory} is locked by another dsv2 process") from exc
        shutil.rmtree(self.directory, ignore_errors=True)
        return True


def status_of(directory: Path) -> IndexStatus:
    """What the index in ``directory`` holds, read from its manifest and BUILDING marker (the
    vector store is not opened, and no roots are needed)."""
    corpus = directory.name
    if not directory.is_dir():
        return IndexStatus(corpus, directory, False, "missing")
    size = 0
    for path in directory.rglob("*"):
        with contextlib.suppress(OSError):  # a file removed while we walk
            if path.is_file():
                size += path.stat().st_size
    manifest = read_manifest(directory)
    marker = read_marker(directory)
    if marker is not None:
        state = "building" if locked_by_other(directory) else "interrupted"
    else:
        state = "ready" if manifest else "missing"
    embedded: int | None = None
    to_embed: int | None = None
    if manifest is None:
        roots = [str(r) for r in marker.get("roots", [])] if marker else []
        return IndexStatus(corpus, directory, True, state, size_bytes=size, roots=roots)
    files = manifest["files"]
    chunks = sum(len(r["chunks"]) for r in files.values())
    if manifest.get("vectors"):
        distinct = len({c["h"] for r in files.values() for c in r["chunks"]})
        to_embed = distinct
        if marker is None:
            embedded = distinct
        elif marker.get("vectors") == manifest.get("vectors") and isinstance(marker.get("embedded"), int):
            embedded = int(marker["embedded"])
        elif marker.get("vectors") == manifest.get("vectors"):
            embedded = 0  # died before its first batch was stored (or an older marker: unknown)
    return IndexStatus(
        corpus,
        directory,
        True,
        state,
        files=len(files),
        chunks=chunks,
        size_bytes=size,
        updated_at=manifest.get("updated_at"),
        embedder=manifest.get("embedder"),
        roots=list(manifest.get("roots", [])),
        store=manifest.get("store", EMBEDDED),
        embedded=embedded,
        to_embed=to_embed,
    )


def list_indexes(home: Path) -> list[IndexStatus]:
    """Every index under ``home/index``, most recently updated first."""
    root = Path(home) / "index"
    try:
        directories = [d for d in root.iterdir() if d.is_dir()]
    except OSError:
        return []
    found = [status_of(d) for d in directories]
    return sorted(found, key=lambda s: (-(s.updated_at or 0.0), s.corpus_id))
