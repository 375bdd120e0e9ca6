"""A shared index server: the vectors of an index in a Chroma server (``chroma run``) instead of
the embedded chromadb, so several people and machines share the vectors of one large corpus.

``--index-url http://host:8000`` (``DSV2_INDEX_URL``, ``index_url`` in config.toml) selects it;
the token, if the server wants one, comes from ``DSV2_INDEX_TOKEN`` and is sent as
``Authorization: Bearer`` and ``X-Chroma-Token`` (chromadb's token auth reads either, as its
server is configured; a reverse proxy in front of the server reads the first).

What the server receives: chunk ids (the first 128 bits of the SHA-256 of a chunk's text) and
vectors, nothing else: no text, no file names, no metadata. The text stays in the local
manifest beside the index, and so does BM25, which is computed from that text. The text embedded
is the Document's, which the source layer redacted as it read the file (sources/secrets.py), so
no vector is ever made from a secret.

Why BM25 stays local: chromadb 1.5.9's single-node server answers ``Collection.search`` (its
sparse / BM25 ranking) with "Search operation is not implemented for local executor" (Chroma
Cloud only), and ``where_document`` full-text is a filter, not a ranking. Server-side full text
would also mean sending the text. tests/index/test_server.py checks that ``search`` is still
refused, so a chromadb that adds it is noticed.

Collections: ``dsv2-<corpus id>-<embedder fingerprint>``, one per corpus and embedder, so two
corpora on one server never delete each other's vectors. The manifest records the server
(``"store"``), so an index built on a server is never read as an embedded one, or the reverse.

A server that cannot be reached, refuses the token or fails a call: :class:`IndexServerError`
(exit 6, like any remote that cannot be reached), never a silent fall back to BM25 alone. A build
it interrupts leaves ``BUILDING`` behind, and the next run resumes (store.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import ConfigError, RemoteError, one_line
from .vectors import ChromaVectorStore, VectorStoreFactory

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

TOKEN_ENV = "DSV2_INDEX_TOKEN"
EMBEDDED = "embedded"  # the location of vectors kept by the embedded chromadb
CONNECT_TIMEOUT_S = 10.0
LIST_PAGE = 100


class IndexServerError(RemoteError):
    """The index server cannot be reached, refuses the token, or fails a call (exit 6)."""


def check_url(url: str) -> str:
    """``url`` normalized (no trailing slash), or ConfigError saying what is wrong with it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"index_url: {url!r} is not an http:// or https:// URL of a Chroma server")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"index_url: {url!r}: give scheme, host, port and path only; the token goes in {TOKEN_ENV}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ConfigError(f"index_url: {url!r}: the port is not a number from 1 to 65535") from exc
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class ChromaServer:
    """A ``VectorStoreFactory`` whose vectors live in a Chroma server reached over HTTP."""

    url: str
    token: str | None = None

    @property
    def location(self) -> str:
        """Where the vectors are, as the manifest records it (never the token)."""
        return self.url

    def collection(self, directory: Path, fingerprint: str) -> str:
        return f"dsv2-{directory.name}-{fingerprint}"

    def open(self, directory: Path, fingerprint: str) -> ServerVectorStore | None:
        client = self._client()
        name = self.collection(directory, fingerprint)
        if name not in self._names(client, directory):
            return None
        return ServerVectorStore(self._call(lambda: client.get_collection(name, embedding_function=None)), self)

    def create(self, directory: Path, fingerprint: str) -> ServerVectorStore:
        client = self._client()
        name = self.collection(directory, fingerprint)
        for other in self._names(client, directory):
            if other != name:  # this corpus's vectors of an embedder no longer in use
                self._call(lambda other=other: client.delete_collection(other))
        return ServerVectorStore(
            self._call(lambda: client.get_or_create_collection(name, embedding_function=None)), self
        )

    def drop(self, directory: Path) -> None:
        client = self._client()
        for name in self._names(client, directory):
            self._call(lambda name=name: client.delete_collection(name))

    # -- helpers --------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Chroma-Token": self.token} if self.token else {}

    def _names(self, client: ClientAPI, directory: Path) -> list[str]:
        prefix = f"dsv2-{directory.name}-"
        names: list[str] = []
        while True:  # in pages: a shared server may hold many corpora
            start = len(names)
            page = self._call(lambda start=start: client.list_collections(limit=LIST_PAGE, offset=start))
            names += [c if isinstance(c, str) else c.name for c in page]
            if len(page) < LIST_PAGE:
                return [n for n in names if n.startswith(prefix)]

    def _client(self) -> ClientAPI:
        """A chromadb HttpClient, after one request of our own that names what is wrong (no
        server there, a refused token) in words chromadb's client does not give."""
        import chromadb
        import httpx
        from chromadb.config import Settings as ChromaSettings

        try:
            reply = httpx.get(f"{self.url}/api/v2/auth/identity", headers=self.headers(), timeout=CONNECT_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise IndexServerError(
                f"cannot reach the index server at {self.url} ({_reason(exc)}): start it "
                "(chroma run --path DIR --port N) or drop --index-url / DSV2_INDEX_URL"
            ) from exc
        if reply.status_code in (401, 403):
            given = f"the token in {TOKEN_ENV}" if self.token else f"no token ({TOKEN_ENV} is not set)"
            raise IndexServerError(f"the index server at {self.url} refused {given}: HTTP {reply.status_code}")
        if reply.status_code != 200:
            raise IndexServerError(
                f"{self.url} does not answer as a Chroma server (HTTP {reply.status_code} from /api/v2/auth/identity)"
            )
        client: ClientAPI = self._call(
            lambda: chromadb.HttpClient(
                host=self.url, headers=self.headers(), settings=ChromaSettings(anonymized_telemetry=False)
            )
        )
        return client

    def _call(self, call: Any) -> Any:
        """``call()``, its failures as one IndexServerError."""
        with self.errors():
            return call()

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """A failed call to the server within the block as one IndexServerError."""
        import httpx
        from chromadb.errors import ChromaError

        try:
            yield
        except (httpx.HTTPError, ChromaError, ValueError) as exc:  # ValueError: chromadb's client on a bad reply
            raise IndexServerError(f"index server {self.url}: {_reason(exc)}") from exc


class ServerVectorStore(ChromaVectorStore):
    """``ChromaVectorStore`` over a server's collection; a failed call is an IndexServerError."""

    def __init__(self, collection: Any, server: ChromaServer) -> None:
        super().__init__(collection)
        self.server = server

    def _errors(self) -> AbstractContextManager[None]:
        return self.server.errors()


def _reason(exc: BaseException) -> str:
    text = one_line(str(exc).strip()) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused"
    return text[:200]


# -- which vector store an index uses ----------------------------------------------------------


def vectors_location(factory: VectorStoreFactory) -> str:
    """Where ``factory`` keeps vectors: its ``location`` (a server's URL), else "embedded"."""
    return str(getattr(factory, "location", EMBEDDED))


def server_from(index_url: str | None, environ: Mapping[str, str]) -> ChromaServer | None:
    """The index server named by the ``index_url`` setting, with the token from the environment."""
    if not index_url:
        return None
    return ChromaServer(check_url(index_url), environ.get(TOKEN_ENV) or None)


def recorded_server(store: str | None, environ: Mapping[str, str]) -> ChromaServer | None:
    """The index server a manifest's ``store`` names (None: embedded, or no index), so that
    ``dsv2 index drop`` without --index-url still deletes the vectors where they are."""
    if not store or store == EMBEDDED:
        return None
    return server_from(store, environ)
