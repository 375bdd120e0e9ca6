"""The retrieval index on a real Chroma server (``chroma run``, the chromadb package's own command) on
loopback: built, queried, updated and dropped through dsv2 with the same results as the embedded
store; a server that goes away is one clear error and the next run resumes; a secret never reaches it."""

from __future__ import annotations

import http.server
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.errors import ExitCode
from dsv2cli.index import CorpusIndex, EmbeddedChroma, LlamaEmbedder, chunk_document, retrieve
from dsv2cli.index.server import ChromaServer, IndexServerError
from dsv2cli.settings import resolve
from dsv2cli.sources import load_inputs

from .conftest import write_module

runner = CliRunner()
CHROMA = Path(sys.executable).with_name("chroma")

FARES = '''

def resident_fare(standard_fare):
    """Island residents never pay more than the regional fare cap of 4.50 euros a crossing."""
    return min(standard_fare, RESIDENT_FARE_CAP_EUR)
'''


class Server:
    """``chroma run --path DIR`` on a free loopback port; kill() and start() again on the same path and port."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                assert self.proc.poll() is None, "chroma run exited"
                time.sleep(0.1)
        raise AssertionError(f"chroma run did not answer on {self.url}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def collections(self) -> dict[str, set[str]]:
        """Every collection on the server and its ids, read with chromadb's own client."""
        return {c.name: set(c.get(include=[])["ids"]) for c in self.client().list_collections()}

    def client(self) -> Any:
        """chromadb's own client of this server."""
        import chromadb
        from chromadb.config import Settings

        return chromadb.HttpClient(host=self.url, settings=Settings(anonymized_telemetry=False))


@pytest.fixture(scope="session")
def cli_embedder(minilm_gguf: Path) -> LlamaEmbedder:
    """The embedder `dsv2 ask --embed-model PATH --threads 1` uses (its fingerprint names the vectors)."""
    return LlamaEmbedder(minilm_gguf, threads=1)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("chroma") / "db")
    server.start()
    yield server
    server.kill()


def make_corpus(root: Path, files: int = 5, seed: int = 4) -> Path:
    """Small modules of one function each: one short chunk per file (embedding is what costs)."""
    rng = random.Random(seed)
    for i in range(files):
        write_module(root / f"pkg/mod_{i}.py", rng, functions=1)
    return root


def ask(home: Path, root: Path, minilm: Path, *extra: str, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    args = ["ask", "--repo", str(root), "What does a resident pay for a crossing?", "--strategy", "retrieve"]
    args += ["--ctx", "1024", "--max-tokens", "16", "--threads", "1", "--embed-model", str(minilm)]
    result = runner.invoke(app, [*args, *extra, "--dry-run", "--json"], env={"DSV2_HOME": str(home), **(env or {})})
    assert result.exit_code == 0, result.output
    payload: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    return payload


def ranking(payload: dict) -> list[tuple[str, int, float]]:  # type: ignore[type-arg]
    return [(Path(s["path"]).name, s["line_start"], round(s["score"], 4)) for s in payload["sources"]]


def test_chroma_server_has_no_search_of_its_own_so_bm25_stays_local(chroma_server: Server) -> None:
    """The reason the README gives for keeping BM25 beside the manifest: chromadb 1.5.9's server
    refuses Collection.search (sparse/BM25 ranking). When this fails, chromadb added it: revisit."""
    import chromadb
    from chromadb import Knn, Search
    from chromadb.config import Settings
    from chromadb.errors import ChromaError

    client = chromadb.HttpClient(host=chroma_server.url, settings=Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("probe-search", embedding_function=None)
    collection.upsert(ids=["a"], embeddings=[[1.0, 0.0]])
    with pytest.raises(ChromaError, match="not implemented"):
        collection.search(Search().rank(Knn(query=[1.0, 0.0])).limit(1))
    client.delete_collection("probe-search")


def test_build_query_update_and_drop_through_a_server_match_the_embedded_store(
    tmp_path: Path, chroma_server: Server, minilm_gguf: Path, cli_embedder: LlamaEmbedder
) -> None:
    embedder = cli_embedder
    root = make_corpus(tmp_path / "corpus", files=6)
    fares = root / "pkg" / "mod_2.py"
    fares.write_text(fares.read_text() + FARES)
    local_home, server_home = tmp_path / "local", tmp_path / "server"
    url = chroma_server.url

    # build and query: the same passages, in the same order, with the same scores
    embedded = ask(local_home, root, minilm_gguf)
    served = ask(server_home, root, minilm_gguf, "--index-url", url)
    assert embedded["retrieval"] == served["retrieval"] == "hybrid"
    assert ranking(served) == ranking(embedded)
    assert max(ranking(served), key=lambda r: r[2])[0] == "mod_2.py"  # the passage with the answer
    status = runner.invoke(
        app,
        ["index", "status", "--repo", str(root), "--json"],
        env={"DSV2_HOME": str(server_home), "DSV2_INDEX_URL": url},
    )
    info = json.loads(status.stdout)
    assert info["state"] == "ready" and info["store"] == url
    collection = f"dsv2-{info['corpus_id']}-{embedder.fingerprint}"
    index = CorpusIndex(server_home, [root], vectors=ChromaServer(url))
    assert chroma_server.collections()[collection] == {c.hash for c in index.chunks()}
    # the whole dense ranking, not only what was packed, is the embedded store's
    question = "What does a resident pay for a crossing?"
    local = CorpusIndex(local_home, [root], vectors=EmbeddedChroma()).dense_scores(question, embedder)
    remote = index.dense_scores(question, embedder)
    assert len(local) == len(index.chunks()) >= 6
    assert sorted(remote, key=remote.__getitem__) == sorted(local, key=local.__getitem__)
    assert all(abs(remote[h] - local[h]) < 1e-5 for h in local)

    # update: a changed file is re-chunked, its old vectors leave the server, the new ones arrive
    fares.write_text(fares.read_text().replace("4.50 euros", "3.80 euros"))
    before = {c.hash for c in index.chunks()}
    assert ranking(ask(server_home, root, minilm_gguf, "--index-url", url)) == ranking(
        ask(local_home, root, minilm_gguf)
    )
    after = {c.hash for c in index.chunks()}
    assert after != before and chroma_server.collections()[collection] == after

    # drop: the server's collection goes with the local manifest
    env = {"DSV2_HOME": str(server_home), "DSV2_INDEX_URL": url}
    dropped = runner.invoke(app, ["index", "drop", "--repo", str(root)], env=env)
    assert dropped.exit_code == 0 and "dropped" in dropped.stderr
    assert collection not in chroma_server.collections()
    assert not index.directory.exists()


AWS_KEY_ID = "AKIAQ7XJ3KZL5MWN2RTV"
AWS_SECRET = "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"


def test_a_planted_secret_never_reaches_the_server(
    tmp_path: Path, chroma_server: Server, minilm_gguf: Path, cli_embedder: LlamaEmbedder
) -> None:
    embedder = cli_embedder
    root = make_corpus(tmp_path / "corpus", files=2, seed=5)
    (root / "deploy.py").write_text(
        '"""Deployment of the fare service."""\n\n'
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"\naws_secret_access_key = "{AWS_SECRET}"\n\n'
        "def deploy(region):\n    return connect(region)\n"
    )
    home = tmp_path / "home"
    ask(home, root, minilm_gguf, "--index-url", chroma_server.url)

    index = CorpusIndex(home, [root], vectors=ChromaServer(chroma_server.url))
    (chunk,) = [c for c in index.chunks() if "[REDACTED" in c.text]
    assert AWS_SECRET not in chunk.text and AWS_KEY_ID not in chunk.text
    store = ChromaServer(chroma_server.url).open(index.directory, embedder.fingerprint)
    assert store is not None
    stored = store.collection.get(ids=[chunk.hash], include=["embeddings", "documents", "metadatas"])
    # no text and no metadata on the server, only the id and the vector ...
    assert stored["documents"] == [None] and stored["metadatas"] == [None]
    # ... and the vector is the redacted text's, not the original's: redaction came first
    vector = np.asarray(stored["embeddings"][0])  # type: ignore[index]
    secrets = iter([AWS_KEY_ID, AWS_SECRET])
    unredacted = re.sub(r"\[REDACTED:[\w-]+\]", lambda _m: next(secrets), chunk.index_text)
    assert AWS_SECRET in unredacted
    redacted, original = embedder.embed([chunk.index_text, unredacted])
    assert np.allclose(vector, redacted, atol=1e-5)
    assert not np.allclose(vector, original, atol=1e-3)
    # nothing the server wrote holds the secret
    for path in chroma_server.path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert AWS_SECRET.encode() not in data and AWS_KEY_ID.encode() not in data, path


def test_a_server_that_goes_away_mid_build_is_one_error_and_the_next_run_resumes(
    tmp_path: Path, minilm_gguf: Path, embedder: LlamaEmbedder
) -> None:
    server = Server(tmp_path / "db")
    server.start()
    try:
        root = make_corpus(tmp_path / "corpus", files=6, seed=13)
        home = tmp_path / "home"
        documents, _ = load_inputs([str(root)])
        index = CorpusIndex(home, [root], embed_batch=2, vectors=ChromaServer(server.url))

        def kill_after_two_batches(done: int, total: int) -> None:
            if done == 4:
                server.kill()

        with pytest.raises(IndexServerError, match=re.escape(server.url)):
            index.update(documents, embedder, progress=kill_after_two_batches)
        assert index.status().state == "interrupted"
        total = len({c.hash for d in documents for c in chunk_document(d)})
        assert total > 4

        # through the CLI while it is down: one line, exit 6, no traceback, no silent BM25 answer
        result = runner.invoke(
            app,
            ["ask", "--repo", str(root), "fares?", "--strategy", "retrieve", "--threads", "1", "--dry-run"],
            env={"DSV2_HOME": str(home), "DSV2_INDEX_URL": server.url, "DSV2_EMBED_MODEL": str(minilm_gguf)},
        )
        assert result.exit_code == ExitCode.REMOTE, result.output
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert errors == [
            f"dsv2: error: cannot reach the index server at {server.url} (connection refused): start it "
            "(chroma run --path DIR --port N) or drop --index-url / DSV2_INDEX_URL"
        ]
        assert "Traceback" not in result.output

        server.start()  # the same path and port
        report = CorpusIndex(home, [root], embed_batch=2, vectors=ChromaServer(server.url)).update(documents, embedder)
        assert report.recovered and report.embedded == total - 4  # what reached the server was kept
        assert index.status().state == "ready"
        (ids,) = server.collections().values()
        assert ids == {c.hash for c in index.chunks()}
    finally:
        server.kill()


class Refusing(http.server.BaseHTTPRequestHandler):
    """A server that wants another token: records the headers it was sent, answers 401."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        Refusing.seen.append(dict(self.headers))
        body = b'{"error":"Unauthorized"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_args: object) -> None:
        pass


def test_the_token_comes_from_the_environment_and_a_refusal_is_one_line(tmp_path: Path, minilm_gguf: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    root = make_corpus(tmp_path / "corpus", files=1)
    env = {"DSV2_HOME": str(tmp_path / "home"), "DSV2_INDEX_TOKEN": "tok-7f3a9c", "DSV2_EMBED_MODEL": str(minilm_gguf)}
    try:
        args = ["ask", "--repo", str(root), "what?", "--strategy", "retrieve", "--threads", "1", "--dry-run"]
        result = runner.invoke(app, [*args, "--index-url", url], env=env)
    finally:
        server.shutdown()
    assert result.exit_code == ExitCode.REMOTE, result.output
    assert f"dsv2: error: the index server at {url} refused the token in DSV2_INDEX_TOKEN: HTTP 401" in result.stderr
    assert "tok-7f3a9c" not in result.output
    assert Refusing.seen and Refusing.seen[0]["Authorization"] == "Bearer tok-7f3a9c"
    assert Refusing.seen[0]["X-Chroma-Token"] == "tok-7f3a9c"


def test_index_url_follows_the_settings_precedence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('index_url = "http://config:8000"\n')
    env = {"DSV2_HOME": str(home)}
    assert resolve({}, env).index_url == "http://config:8000"
    assert resolve({}, {**env, "DSV2_INDEX_URL": "http://env:8000"}).index_url == "http://env:8000"
    flagged = resolve({"index_url": "https://flag:9000"}, {**env, "DSV2_INDEX_URL": "http://env:8000"})
    assert flagged.index_url == "https://flag:9000" and flagged.origin("index_url") == "flag"
    result = runner.invoke(app, ["ask", "--repo", str(tmp_path), "q?", "--index-url", "localhost:8000"], env=env)
    assert (
        result.exit_code == ExitCode.USAGE and "index_url (flag): must be the http:// or https:// URL" in result.stderr
    )


def test_no_server_configured_keeps_the_embedded_default(tmp_path: Path) -> None:
    assert isinstance(CorpusIndex(tmp_path, [tmp_path]).vectors, EmbeddedChroma)


def test_an_index_moved_between_embedded_and_server_is_never_read_from_the_wrong_place(
    tmp_path: Path, chroma_server: Server, embedder: LlamaEmbedder
) -> None:
    root = make_corpus(tmp_path / "corpus", files=2, seed=11)
    documents, _ = load_inputs([str(root)])
    home, question = tmp_path / "home", "customer invoice"
    server = ChromaServer(chroma_server.url)
    CorpusIndex(home, [root], vectors=server).update(documents, embedder)
    # the manifest says the vectors are on the server: an embedded reading finds none there and
    # rebuilds them locally rather than answering from an empty store
    local = CorpusIndex(home, [root], vectors=EmbeddedChroma())
    assert local.dense_scores(question, embedder) == {}
    assert local.pending(documents, embedder.fingerprint).to_embed == 2
    assert local.update(documents, embedder).embedded == 2 and local.status().store == "embedded"
    embedded = local.dense_scores(question, embedder)
    assert len(embedded) == 2
    # and back: the server still has them, nothing is embedded again
    back = CorpusIndex(home, [root], vectors=server)
    assert back.update(documents, embedder).embedded == 0 and back.status().store == chroma_server.url
    served = back.dense_scores(question, embedder)
    assert served.keys() == embedded.keys() and all(abs(served[h] - embedded[h]) < 1e-5 for h in served)
    assert local.dense_scores(question, embedder) == {}  # the embedded copy is no longer the index's
    # `index drop` without --index-url follows the manifest to the server: no vectors left behind
    assert [n for n in chroma_server.collections() if n.startswith(f"dsv2-{back.corpus_id}-")]
    dropped = runner.invoke(app, ["index", "drop", str(root)], env={"DSV2_HOME": str(home)})
    assert dropped.exit_code == 0, dropped.output
    assert not [n for n in chroma_server.collections() if n.startswith(f"dsv2-{back.corpus_id}-")]


def test_vectors_someone_else_removed_are_reported_and_a_rebuild_restores_them(
    tmp_path: Path, chroma_server: Server, embedder: LlamaEmbedder
) -> None:
    root = make_corpus(tmp_path / "corpus", files=2, seed=13)
    documents, _ = load_inputs([str(root)])
    home = tmp_path / "home"
    server = ChromaServer(chroma_server.url)

    def ask_once() -> tuple[str, list[str]]:
        found = retrieve(
            "customer invoice", documents, corpus=[root], home=home, budget=400,
            count_tokens=lambda t: len(t) // 4, embedder=embedder, vectors=server,
        )  # fmt: skip
        return found.method, found.notices

    assert ask_once() == ("hybrid", [])
    index = CorpusIndex(home, [root], vectors=server)
    name = server.collection(index.directory, embedder.fingerprint)
    assert name in chroma_server.collections()
    chroma_server.client().delete_collection(name)  # a colleague's drop
    method, notices = ask_once()
    assert method == "bm25" and any("ranked with BM25 alone" in n for n in notices)
    index.rebuild(documents, embedder)
    assert ask_once() == ("hybrid", [])
    index.drop()
