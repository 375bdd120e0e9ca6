"""The vector store protocol: chromadb (on disk) as dsv2 uses it, and a second implementation (numpy,
in memory) that the index runs on unchanged."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import pytest

from dsv2cli.index import CorpusIndex, LlamaEmbedder, rank
from dsv2cli.index.vectors import (
    ChromaVectorStore,
    EmbeddedChroma,
    VectorStore,
    VectorStoreError,
    VectorStoreFactory,
    collection_name,
    forget_chroma_clients,
)
from dsv2cli.sources import load_inputs


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


# hand-made unit vectors: seen from QUERY, a is nearest, then b, then c, then d (opposite)
VECTORS = {
    "a": unit(1, 0, 0, 0),
    "b": unit(1, 1, 0, 0),
    "c": unit(0, 1, 1, 0),
    "d": unit(-1, 0, 0, 0),
}
QUERY = unit(1, 0.2, 0, 0)


def cosine(x: Sequence[float], y: Sequence[float]) -> float:
    return float(np.dot(x, y))


@pytest.fixture()
def chroma(tmp_path: Path) -> ChromaVectorStore:
    store = EmbeddedChroma().create(tmp_path / "index", "fp-one")
    store.add(list(VECTORS), list(VECTORS.values()))
    return store


def test_every_call_of_the_embedded_store_fails_as_a_vector_store_error(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    factory = EmbeddedChroma()
    store = factory.create(directory, "fp-one")
    store.add(["a"], [VECTORS["a"]])
    factory._client(directory).delete_collection(collection_name("fp-one"))  # gone under the open store
    calls = [
        lambda: store.add(["b"], [VECTORS["b"]]),
        lambda: store.delete(["a"]),
        lambda: store.query(QUERY, 1),
        lambda: store.count(),
        lambda: store.ids(),
    ]
    for call in calls:
        with pytest.raises(VectorStoreError, match="^vector store " + re.escape(str(directory / "chroma")) + ": "):
            call()


def test_chroma_store_counts_lists_and_upserts_by_id(chroma: ChromaVectorStore) -> None:
    assert chroma.count() == 4
    assert chroma.ids() == {"a", "b", "c", "d"}
    chroma.add(["d", "e"], [unit(1, 0.1, 0, 0), unit(0, 0, 0, 1)])  # d replaced, e new
    assert chroma.count() == 5
    assert [i for i, _ in chroma.query(QUERY, 2)] == ["d", "a"]  # d now points near the query


def test_query_returns_the_nearest_first_with_cosine_similarity(chroma: ChromaVectorStore) -> None:
    result = chroma.query(QUERY, 10)
    assert [i for i, _ in result] == ["a", "b", "c", "d"]
    for i, score in result:
        assert score == pytest.approx(cosine(QUERY, VECTORS[i]), abs=1e-5)
    assert [i for i, _ in chroma.query(QUERY, 2)] == ["a", "b"]
    assert chroma.query(QUERY, 0) == []


def test_query_restricted_to_ids_ignores_the_others_and_unknown_ids(chroma: ChromaVectorStore) -> None:
    assert [i for i, _ in chroma.query(QUERY, 10, among={"c", "b", "unknown"})] == ["b", "c"]
    assert [i for i, _ in chroma.query(QUERY, 1, among=["d", "c"])] == ["c"]
    assert chroma.query(QUERY, 10, among={"unknown"}) == []
    assert chroma.query(QUERY, 10, among=set()) == []


def test_delete_removes_vectors_and_ignores_unknown_ids(chroma: ChromaVectorStore) -> None:
    chroma.delete(["a", "unknown"])
    chroma.delete([])
    assert chroma.ids() == {"b", "c", "d"}
    assert [i for i, _ in chroma.query(QUERY, 1)] == ["b"]


def test_writes_larger_than_chromadbs_batch_limit_are_split(tmp_path: Path) -> None:
    store = EmbeddedChroma().create(tmp_path / "index", "fp-many")
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(6000, 4))
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    ids = [f"v{i}" for i in range(6000)]
    store.add(ids, matrix.tolist())  # chromadb refuses more than 5461 records per call
    assert store.count() == 6000
    store.delete(ids[:5500])
    assert store.ids() == set(ids[5500:])


def test_vectors_persist_on_disk_for_a_new_client_in_another_process(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    store = EmbeddedChroma().create(directory, "fp-one")
    store.add(list(VECTORS), list(VECTORS.values()))
    forget_chroma_clients()
    reopened = EmbeddedChroma().open(directory, "fp-one")
    assert reopened is not None and reopened.ids() == set(VECTORS)
    code = (
        "import sys\nfrom pathlib import Path\nfrom dsv2cli.index.vectors import EmbeddedChroma\n"
        "store = EmbeddedChroma().open(Path(sys.argv[1]), 'fp-one')\n"
        f"print(store.count(), [i for i, _ in store.query({QUERY!r}, 10)])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert proc.stdout.strip() == "4 ['a', 'b', 'c', 'd']", proc.stderr


def test_open_creates_nothing_and_create_keeps_one_embedders_vectors(tmp_path: Path) -> None:
    directory = tmp_path / "index"
    chroma = EmbeddedChroma()
    assert chroma.open(directory, "fp-one") is None
    chroma.create(directory, "fp-one").add(["a"], [VECTORS["a"]])
    assert chroma.create(directory, "fp-one").ids() == {"a"}  # create opens an existing store
    chroma.create(directory, "fp-two").add(["b"], [VECTORS["b"]])
    assert chroma.open(directory, "fp-one") is None  # another embedder's vectors were discarded
    two = chroma.open(directory, "fp-two")
    assert two is not None and two.ids() == {"b"}
    chroma.drop(directory)
    assert not (directory / "chroma").exists()
    assert chroma.open(directory, "fp-two") is None


# -- a second implementation: the index needs nothing beyond the protocol --------------------------


class NumpyVectorStore:
    """Vectors in a dict, searched by brute force."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def add(self, ids: Sequence[str], embeddings: Sequence[Sequence[float]]) -> None:
        for i, vector in zip(ids, embeddings, strict=True):
            self.vectors[i] = np.asarray(vector, dtype=np.float64)

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.vectors.pop(i, None)

    def query(
        self, embedding: Sequence[float], n: int, *, among: Collection[str] | None = None
    ) -> list[tuple[str, float]]:
        ids = [i for i in self.vectors if among is None or i in among]
        if not ids or n <= 0:
            return []
        scores = np.stack([self.vectors[i] for i in ids]) @ np.asarray(embedding, dtype=np.float64)
        return [(ids[k], float(scores[k])) for k in np.argsort(-scores, kind="stable")[:n]]

    def count(self) -> int:
        return len(self.vectors)

    def ids(self) -> set[str]:
        return set(self.vectors)


class NumpyVectors:
    """In memory, one store per index directory and embedder."""

    def __init__(self) -> None:
        self.stores: dict[Path, dict[str, NumpyVectorStore]] = {}
        self.drops = 0

    def open(self, directory: Path, fingerprint: str) -> NumpyVectorStore | None:
        return self.stores.get(directory, {}).get(fingerprint)

    def create(self, directory: Path, fingerprint: str) -> NumpyVectorStore:
        store = self.open(directory, fingerprint)
        if store is None:
            store = NumpyVectorStore()
        self.stores[directory] = {fingerprint: store}
        return store

    def drop(self, directory: Path) -> None:
        self.drops += 1
        self.stores.pop(directory, None)


def test_numpy_store_answers_the_protocol_like_chroma(chroma: ChromaVectorStore) -> None:
    store: VectorStore = NumpyVectorStore()
    store.add(list(VECTORS), list(VECTORS.values()))
    for among in (None, {"b", "c", "unknown"}):
        expected = chroma.query(QUERY, 3, among=among)
        result = store.query(QUERY, 3, among=among)
        assert [i for i, _ in result] == [i for i, _ in expected]
        assert [s for _, s in result] == pytest.approx([s for _, s in expected], abs=1e-5)


PLANTED = '''

def oversize_parcel_surcharge(parcel):
    """Parcels over the size limit pay a flat surcharge on top of the shipping rate."""
    if parcel.girth_cm > 300:
        return Decimal("47.50")  # flat oversize surcharge, in euros
    return Decimal("0")
'''


def test_the_index_runs_on_a_second_vector_store_implementation(
    make_repo, dsv2_home: Path, tmp_path: Path, embedder: LlamaEmbedder
) -> None:
    root = make_repo(n_files=6)
    planted = root / "pkg" / "mod_04.py"
    planted.write_text(planted.read_text() + PLANTED)
    documents, _ = load_inputs([str(root)])
    numpy_vectors = NumpyVectors()
    factory: VectorStoreFactory = numpy_vectors
    index = CorpusIndex(dsv2_home, [root], vectors=factory)

    report = index.update(documents, embedder)
    chunks = index.chunks()
    assert report.embedded == len({c.hash for c in chunks}) > 0
    assert not (index.directory / "chroma").exists()  # chromadb was not used
    store = numpy_vectors.open(index.directory, embedder.fingerprint)
    assert store is not None and store.ids() == {c.hash for c in chunks}

    question = "How much is the surcharge for an oversized parcel?"
    dense = index.dense_scores(question, embedder)
    assert len(dense) == len(chunks)
    best = rank(chunks, question, dense=dense, method="dense")[0].chunk
    assert best.path.endswith("mod_04.py") and "47.50" in best.text

    # the same vectors in chromadb give the same scores
    on_chroma = CorpusIndex(tmp_path / "other-home", [root])
    on_chroma.update(documents, embedder)
    chroma_dense = on_chroma.dense_scores(question, embedder)
    assert chroma_dense.keys() == dense.keys()
    assert [chroma_dense[h] for h in dense] == pytest.approx(list(dense.values()), abs=1e-4)

    # incremental: one edited file is one chunk embedded, its old vector deleted
    old_hashes = {c.hash for c in chunks if c.path.endswith("mod_02.py")}
    edited = root / "pkg" / "mod_02.py"
    edited.write_text(edited.read_text().replace("return result", "return sorted(result)", 1))
    report = CorpusIndex(dsv2_home, [root], vectors=factory).update(load_inputs([str(root)])[0], embedder)
    assert report.embedded == 1 and [Path(p).name for p in report.changed] == ["mod_02.py"]
    assert store.ids() == {c.hash for c in index.chunks()} and not old_hashes & store.ids()

    # an interrupted build is reconciled through ids(): stray vectors deleted, missing ones embedded
    stray, lost = "f" * 32, next(iter(store.ids()))
    store.add([stray], [store.vectors[lost].tolist()])
    store.delete([lost])
    index.marker_path.write_text("1")
    report = index.update(load_inputs([str(root)])[0], embedder)
    assert report.recovered and report.embedded == 1
    assert store.ids() == {c.hash for c in index.chunks()}

    # without an embedder the vectors go; dropping the index drops them too
    index.update(load_inputs([str(root)])[0], None)
    assert numpy_vectors.open(index.directory, embedder.fingerprint) is None
    drops = numpy_vectors.drops
    assert index.drop() is True and numpy_vectors.drops == drops + 1
