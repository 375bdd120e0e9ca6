from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dsv2cli.index import CorpusIndex, EmbeddedChroma, LlamaEmbedder, open_index, retrieve
from dsv2cli.index.vectors import VectorStoreError
from dsv2cli.sources import load_inputs

from ..conftest import dsv2_cmd

INDEXER = Path(__file__).with_name("indexer_process.py")


def approx_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def build(root: Path, home: Path, embedder: LlamaEmbedder):  # type: ignore[no-untyped-def]
    documents, _ = load_inputs([str(root)])
    return CorpusIndex(home, [root]).update(documents, embedder)


def vector_ids(index: CorpusIndex, embedder: LlamaEmbedder) -> set[str]:
    store = index.vectors.open(index.directory, embedder.fingerprint)
    return store.ids() if store is not None else set()


def assert_consistent(index: CorpusIndex, embedder: LlamaEmbedder) -> None:
    assert index.status().state == "ready"
    assert vector_ids(index, embedder) == {c.hash for c in index.chunks()}


PLANTED = '''

def oversize_parcel_surcharge(parcel):
    """Parcels over the size limit pay a flat surcharge on top of the shipping rate."""
    if parcel.girth_cm > 300:
        return Decimal("47.50")  # flat oversize surcharge, in euros
    return Decimal("0")
'''


def test_retrieval_over_a_repo_larger_than_the_window_selects_the_file_with_the_answer(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder
) -> None:
    root = make_repo(n_files=16)
    planted = root / "pkg" / "mod_11.py"
    planted.write_text(planted.read_text() + PLANTED)
    documents, _ = load_inputs([str(root)])
    assert sum(approx_tokens(d.text) for d in documents) > 4 * 1000

    result = retrieve(
        "How much is the surcharge for an oversized parcel?",
        documents,
        corpus=[str(root)],
        home=dsv2_home,
        budget=1000,
        count_tokens=approx_tokens,
        embedder=embedder,
    )
    assert result.method == "hybrid"
    assert result.context_tokens <= 1000
    hits = [s for s in result.sources if s.path.endswith("pkg/mod_11.py") and "47.50" in s.text]
    assert hits, [s.cite() for s in result.sources]
    listed = result.to_dict()["sources"]
    assert any(s["path"].endswith("mod_11.py") and s["line_start"] and s["line_end"] for s in listed)
    assert [s.location.line_start for s in result.sources if s.path == hits[0].path] == sorted(
        s.location.line_start for s in result.sources if s.path == hits[0].path
    )
    # a smaller budget is packed from the same ranking, without indexing or ranking again
    smaller = result.repack(400)
    assert 0 < smaller.context_tokens <= 400 < result.context_tokens
    assert smaller.update is result.update and smaller.method == result.method
    assert any("47.50" in s.text for s in smaller.sources)  # the best passage still goes first


def test_editing_one_file_re_embeds_only_its_changed_chunks(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder
) -> None:
    root = make_repo(n_files=6)
    first = build(root, dsv2_home, embedder)
    assert first.embedded == len(CorpusIndex(dsv2_home, [root]).chunks()) > 0

    edited = root / "pkg" / "mod_05.py"
    edited.write_text(edited.read_text().replace("return result", "return sorted(result)", 1))
    calls = embedder.calls
    report = build(root, dsv2_home, embedder)
    assert [Path(p).name for p in report.changed] == ["mod_05.py"]
    assert not report.added and not report.removed
    assert report.embedded == embedder.calls - calls == 1  # the module is one chunk
    assert_consistent(CorpusIndex(dsv2_home, [root]), embedder)

    calls = embedder.calls
    unchanged = build(root, dsv2_home, embedder)
    assert unchanged.embedded == 0 and embedder.calls == calls and not unchanged.changed


def test_a_deleted_file_leaves_the_index(make_repo, dsv2_home: Path, embedder: LlamaEmbedder) -> None:
    root = make_repo(n_files=6)
    build(root, dsv2_home, embedder)
    (root / "pkg" / "mod_03.py").unlink()
    report = build(root, dsv2_home, embedder)
    assert [Path(p).name for p in report.removed] == ["mod_03.py"]
    index = CorpusIndex(dsv2_home, [root])
    assert not any(c.path.endswith("mod_03.py") for c in index.chunks())
    assert_consistent(index, embedder)


def test_a_retrieve_parses_the_manifest_once_and_a_held_index_sees_another_writer(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dsv2cli.index import store

    root = make_repo(n_files=4)
    build(root, dsv2_home, embedder)
    parsed: list[Path] = []
    real = store.read_manifest
    monkeypatch.setattr(store, "read_manifest", lambda d: parsed.append(d) or real(d))
    found = ask_retrieve(root, dsv2_home, embedder, question="What does the module compute?", budget=500)
    assert found.method == "hybrid" and found.candidates == 4
    assert len(parsed) == 1  # update, chunks and dense_scores share one parse

    held = CorpusIndex(dsv2_home, [root])
    assert len(held.chunks()) == 4
    (root / "pkg" / "mod_03.py").unlink()
    build(root, dsv2_home, embedder)  # another CorpusIndex (as another process would) rewrites it
    assert not any(c.path.endswith("mod_03.py") for c in held.chunks())
    assert held.status().files == 3


def test_status_reports_the_index_and_drop_removes_it(make_repo, dsv2_home: Path, embedder: LlamaEmbedder) -> None:
    root = make_repo(n_files=4)
    index = open_index(dsv2_home, [str(root)])
    assert index.status().state == "missing"
    build(root, dsv2_home, embedder)
    status = index.status()
    assert (status.state, status.files, status.chunks) == ("ready", 4, 4)
    assert status.size_bytes > 0 and status.updated_at is not None and status.embedder == embedder.name
    assert status.directory == dsv2_home / "index" / index.corpus_id
    assert json.dumps(status.to_dict())
    assert index.drop() is True
    assert index.status().state == "missing" and not status.directory.exists()
    assert index.drop() is False
    documents, _ = load_inputs([str(root)])
    assert index.rebuild(documents, embedder).embedded == 4


def run_indexer(root: Path, model: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(INDEXER), str(root), str(model), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def stored_vectors(index: CorpusIndex, embedder: LlamaEmbedder) -> dict[str, list[float]]:
    store = index.vectors.open(index.directory, embedder.fingerprint)
    assert store is not None
    got = store.collection.get(include=["embeddings"])  # type: ignore[attr-defined]
    return {i: list(map(float, v)) for i, v in zip(got["ids"], got["embeddings"], strict=True)}


@pytest.mark.slow
def test_killed_mid_build_the_index_tells_the_truth_and_the_next_run_resumes_to_a_clean_build(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder, minilm_gguf: Path
) -> None:
    root = make_repo(n_files=24)
    index = CorpusIndex(dsv2_home, [root])
    building = run_indexer(root, minilm_gguf)  # 4 texts per embedder call
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and building.poll() is None:
        try:
            if json.loads(index.marker_path.read_text()).get("embedded", 0) >= 4:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    os.kill(building.pid, signal.SIGKILL)  # kill -9: no cleanup of any kind
    building.communicate(timeout=60)
    assert building.returncode == -signal.SIGKILL

    status = index.status()
    assert status.state == "interrupted" and not status.complete
    assert status.files == 24 and status.chunks == 24  # the manifest went first: BM25 covers every file
    assert status.embedded is not None and 4 <= status.embedded < 24 and status.to_embed == 24
    assert status.summary() == (
        f"interrupted at {status.embedded}/24 chunks; the next run resumes; BM25 covers all files"
    )
    assert len(index.chunks()) == 24
    documents, _ = load_inputs([str(root)])
    assert index.pending(documents, embedder.fingerprint).to_embed == 24 - status.embedded  # dsv2 plan's estimate
    kept = len(vector_ids(index, embedder))
    assert status.embedded <= kept <= status.embedded + 4  # a batch stored just before its marker line

    listed = subprocess.run([*dsv2_cmd(), "index", "list", "--json"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)["indexes"]
    assert (entry["state"], entry["complete"], entry["files"], entry["chunks"]) == ("interrupted", False, 24, 24)
    assert entry["roots"] == [str(root.resolve())] and entry["embedded_chunks"] == status.embedded
    shown = subprocess.run([*dsv2_cmd(), "index", "status", str(root)], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f"interrupted at {status.embedded}/24 chunks; the next run resumes; BM25 covers all files" in shown.stdout

    report = build(root, dsv2_home, embedder)
    assert report.recovered and report.embedded == 24 - kept  # only what was missing
    assert_consistent(index, embedder)
    assert index.status().summary() == f"complete: 24 files, 24 chunks, vectors from {embedder.name}"

    clean_home = dsv2_home / "clean"
    clean = CorpusIndex(clean_home, [root])
    build(root, clean_home, embedder)
    assert index.chunks() == clean.chunks()
    resumed, fresh = stored_vectors(index, embedder), stored_vectors(clean, embedder)
    assert resumed.keys() == fresh.keys()
    assert min(float(np.dot(resumed[h], fresh[h])) for h in fresh) >= 0.9999


def test_a_build_in_progress_in_another_process_is_shown_as_building(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder
) -> None:
    from filelock import FileLock

    root = make_repo(n_files=2)
    build(root, dsv2_home, embedder)
    index = CorpusIndex(dsv2_home, [root])
    index.marker_path.write_text(json.dumps({"pid": 1, "vectors": embedder.fingerprint, "embedded": 1}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); time.sleep(60)",
            str(index.directory / "lock"),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while index.status().state != "building" and time.monotonic() < deadline:
            time.sleep(0.05)
        status = index.status()
        assert status.state == "building" and not status.complete
        assert status.summary() == "being built by another dsv2 process, 1/2 chunks; BM25 covers all files"
    finally:
        holder.kill()
        holder.wait()
    with FileLock(str(index.directory / "lock")):
        pass
    assert index.status().state == "interrupted"  # the holder died without finishing


def test_index_list_shows_every_index_under_dsv2_home(make_repo, dsv2_home: Path, embedder: LlamaEmbedder) -> None:
    from dsv2cli.index import list_indexes

    assert list_indexes(dsv2_home) == []
    root = make_repo(n_files=3)
    build(root, dsv2_home, embedder)
    other = root.parent / "other"
    (other / "notes.md").parent.mkdir(parents=True)
    (other / "notes.md").write_text("# Notes\n\nThe ledger balance is reconciled monthly.\n")
    documents, _ = load_inputs([str(other)])
    CorpusIndex(dsv2_home, [other]).update(documents, None)  # BM25 only
    found = {tuple(s.roots): s for s in list_indexes(dsv2_home)}
    assert set(found) == {(str(root.resolve()),), (str(other.resolve()),)}
    mine = found[(str(root.resolve()),)]
    assert (mine.state, mine.complete, mine.files, mine.chunks, mine.embedder) == ("ready", True, 3, 3, embedder.name)
    assert mine.size_bytes > 0 and mine.updated_at is not None
    bm25 = found[(str(other.resolve()),)]
    assert bm25.complete and bm25.embedder is None and bm25.embedded is None

    shown = subprocess.run([*dsv2_cmd(), "index", "list"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["corpus", "files", "chunks", "size", "embedder", "updated", "state"]
    assert any(line.startswith(str(other.resolve())) and "none (BM25)" in line and "ready" in line for line in lines)


def test_two_concurrent_indexers_leave_one_consistent_index(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder, minilm_gguf: Path
) -> None:
    root = make_repo(n_files=6)
    first, second = run_indexer(root, minilm_gguf), run_indexer(root, minilm_gguf)
    outputs = [p.communicate(timeout=180) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    reports = [json.loads(out) for out, _ in outputs]
    assert sorted(r["embedded"] for r in reports) == [0, 6]  # the second waited, then found nothing to do
    index = CorpusIndex(dsv2_home, [root])
    assert len(index.chunks()) == 6
    assert_consistent(index, embedder)


# --- a failing or damaged vector store ----------------------------------------------------------

QUESTION = "How much is the surcharge for an oversized parcel?"


class FailingStore:
    """The real embedded store, with one operation failing as chromadb would (a VectorStoreError)."""

    def __init__(self, inner: Any, failing: str) -> None:
        self.inner, self.failing = inner, failing

    def __getattr__(self, name: str) -> Any:
        if name == self.failing:

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise VectorStoreError(f"vector store {self.inner.where}: forced failure in {name}")

            return fail
        return getattr(self.inner, name)


@dataclass(frozen=True)
class FailingChroma:
    failing: str
    inner: EmbeddedChroma = field(default_factory=EmbeddedChroma)

    def open(self, directory: Path, fingerprint: str) -> Any:
        store = self.inner.open(directory, fingerprint)
        return FailingStore(store, self.failing) if store is not None else None

    def create(self, directory: Path, fingerprint: str) -> Any:
        return FailingStore(self.inner.create(directory, fingerprint), self.failing)

    def drop(self, directory: Path) -> None:
        self.inner.drop(directory)


def ask_retrieve(  # type: ignore[no-untyped-def]
    root: Path, home: Path, embedder: LlamaEmbedder, vectors: Any = None, question: str = QUESTION, budget: int = 600
):
    documents, _ = load_inputs([str(root)])
    return retrieve(
        question,
        documents,
        corpus=[str(root)],
        home=home,
        budget=budget,
        count_tokens=approx_tokens,
        embedder=embedder,
        vectors=vectors,
    )


@pytest.mark.parametrize("failing", ["query", "add"])
def test_a_failing_vector_store_reports_bm25_and_a_notice_not_hybrid(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder, failing: str
) -> None:
    root = make_repo(n_files=6)
    planted = root / "pkg" / "mod_04.py"
    planted.write_text(planted.read_text() + PLANTED)
    if failing == "query":
        build(root, dsv2_home, embedder)  # vectors in place; reading them fails
    result = ask_retrieve(root, dsv2_home, embedder, FailingChroma(failing))
    assert result.method == "bm25" and result.to_dict()["retrieval"] == "bm25"
    assert any(f"forced failure in {failing}" in n and "BM25 alone" in n for n in result.notices), result.notices
    assert any("47.50" in s.text for s in result.sources)  # BM25 still answers from every file
    if failing == "add":  # the build stopped after the chunks: the next run finishes the vectors
        assert CorpusIndex(dsv2_home, [root]).status().state == "interrupted"
        again = ask_retrieve(root, dsv2_home, embedder)
        assert again.method == "hybrid" and again.update.recovered


def damage(chroma: Path) -> None:
    from dsv2cli.index.vectors import forget_chroma_clients

    (chroma / "chroma.sqlite3").write_bytes(b"this is not a database " * 400)
    forget_chroma_clients()  # what a new process would see


@pytest.mark.parametrize("edit", [False, True])
def test_a_damaged_chroma_database_is_moved_aside_and_rebuilt_from_the_sources(
    make_repo, dsv2_home: Path, embedder: LlamaEmbedder, edit: bool
) -> None:
    root = make_repo(n_files=5)
    planted = root / "pkg" / "mod_02.py"
    planted.write_text(planted.read_text() + PLANTED)
    build(root, dsv2_home, embedder)
    index = CorpusIndex(dsv2_home, [root])
    damage(index.directory / "chroma")
    if edit:  # the damage is met while updating (a changed file), not only while reading
        (root / "pkg" / "mod_00.py").write_text("def ledger_total(rows):\n    return sum(rows)\n")
    result = ask_retrieve(root, dsv2_home, embedder)
    assert result.method == "hybrid"
    (notice,) = [n for n in result.notices if "moved aside" in n]
    assert "file is not a database" in notice and "embedded again from the sources" in notice
    assert (index.directory / "chroma.damaged" / "chroma.sqlite3").read_bytes().startswith(b"this is not")
    assert_consistent(index, embedder)
    assert any("47.50" in s.text for s in result.sources)


def test_index_rebuild_from_the_command_line_takes_the_embedders_threads_and_offload(
    make_repo, dsv2_home: Path, minilm_gguf: Path
) -> None:
    root = make_repo(n_files=3)
    args = ["--embed-model", str(minilm_gguf), "--threads", "1", "--gpu-layers", "0"]
    built = subprocess.run(
        [*dsv2_cmd(), "index", "rebuild", "--repo", str(root), *args], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    assert "index rebuilt: 3 files, 3 chunks" in built.stderr
    shown = subprocess.run(
        [*dsv2_cmd(), "index", "status", "--repo", str(root), "--json"], capture_output=True, text=True, timeout=60
    )
    status = json.loads(shown.stdout)
    assert (status["state"], status["chunks"], status["embedder"]) == ("ready", 3, minilm_gguf.name)
    refused = subprocess.run(
        [*dsv2_cmd(), "index", "rebuild", "--repo", str(root), "--threads", "0"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "threads" in refused.stderr
