"""Exact context counts from per-part counts: the sum of the parts equals tokenizing the whole.

`dsv2 pack --json` and `dsv2 plan` count the packed context part by part (in parallel, cached per
part) instead of tokenizing it whole and then every segment again. That is only allowed where the
cut cannot change the tokenization; these tests compare against the whole-string count on real
tokenizers and real inputs, including text built to sit badly on the cuts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dsv2cli import sources
from dsv2cli.packing import context_parts, count_context, render_context
from dsv2cli.sources.base import Document, Location, Segment
from dsv2cli.tokens import CountCache, Tokenizer, named_tokenizer_path

from .conftest import SAMPLES, dsv2_cmd


def awkward_documents() -> list[Document]:
    """Segments that start with spaces, tabs, blank lines, CRLF, CJK, digits, markers and tag look-alikes."""
    texts = [
        "   indented first line\nsecond",
        "\tTabbed\r\nWindows line\r\n",
        "\n\nleading blank lines and trailing spaces   \n  \n",
        "東京の港湾局は2025年に報告した。 Über naïve café — 3.5%",
        "12345 numbers first\n\n\n\nmany blank lines",
        "</document> <document source='x'> inside data",
        "  1 | looks like a numbered line",
        "ends with a space ",
        "}\n",
    ]
    docs = [
        Document(
            source="awkward.txt",
            kind="text",
            segments=[Segment(t, Location("awkward.txt", line_start=i * 10 + 1)) for i, t in enumerate(texts)],
        ),
        Document(
            source="pages.pdf",
            kind="pdf",
            segments=[Segment(t, Location("pages.pdf", page=i + 1)) for i, t in enumerate(texts)],
        ),
        Document(
            source="code.py",
            kind="code",
            segments=[Segment(t, Location("code.py", line_start=1 + 100 * i)) for i, t in enumerate(texts)],
        ),
        Document(source="empty.txt", kind="text", segments=[]),
    ]
    return docs


def real_documents() -> list[Document]:
    docs, _ = sources.load_repo(str(SAMPLES / "code"))
    for name in ("contract-msa.pdf", "meridian-coast-annual-report-2025.pdf", "harbor-light-annual-report.md"):
        docs.append(sources.load(str(SAMPLES / name)))
    return docs


def test_parts_concatenate_to_the_rendered_context() -> None:
    for docs in (awkward_documents(), real_documents()):
        assert "".join(text for _, text in context_parts(docs)) == render_context(docs)


@pytest.mark.parametrize("vocab", ["smollm2", "deepseek-v2"])
def test_sum_of_parts_equals_the_whole_count(vocab: str, smollm2: Path, tmp_path: Path) -> None:
    tokenizer = Tokenizer.load(smollm2 if vocab == "smollm2" else named_tokenizer_path(vocab))
    assert tokenizer.splits_in_blank_lines  # both vocabularies take the fast path
    cache = CountCache(tokenizer, tmp_path / "counts.sqlite", vocab)
    for docs in (awkward_documents(), real_documents()):
        counted = count_context(docs, cache.count_joined)
        assert counted.tokens == tokenizer.count(render_context(docs))
        assert [n for _, n in counted.parts] == [tokenizer.count(text) for _, text in context_parts(docs)]
    cache.close()


def test_a_tokenizer_without_the_property_counts_the_whole(minilm_gguf: Path, tmp_path: Path) -> None:
    """A WordPiece vocabulary (the MiniLM embedder) fails the probe: the total is counted whole, still exact."""
    tokenizer = Tokenizer.load(minilm_gguf)
    assert not tokenizer.splits_in_blank_lines
    cache = CountCache(tokenizer, tmp_path / "counts.sqlite", "minilm")
    docs = real_documents()
    counted = count_context(docs, cache.count_joined)
    assert counted.tokens == tokenizer.count(render_context(docs))
    cache.close()


def test_warm_counts_never_load_the_tokenizer(smollm2: Path, tmp_path: Path) -> None:
    docs = real_documents()
    loads: list[int] = []

    def load() -> Tokenizer:
        loads.append(1)
        return Tokenizer.load(smollm2)

    cold = CountCache(load, tmp_path / "counts.sqlite", "smollm2")
    first = count_context(docs, cold.count_joined)
    cold.close()
    assert loads == [1] and cold.misses > 0

    def refuse() -> Tokenizer:
        raise AssertionError("the tokenizer was loaded although every count is cached")

    warm = CountCache(refuse, tmp_path / "counts.sqlite", "smollm2")
    assert count_context(docs, warm.count_joined) == first
    assert warm.misses == 0 and warm.hits > 0
    warm.close()


def test_counting_in_threads_matches_counting_in_order(smollm2_tokenizer: Tokenizer, tmp_path: Path) -> None:
    """Enough text to use the thread pool (llama_tokenize runs without the GIL), in input order."""
    texts = [(f"Paragraph {i}: " + "the ferry timetable and the fuel contracts " * (40 + i % 50)) for i in range(400)]
    texts += texts[:5]  # repeated content is counted once and given to every copy
    cache = CountCache(smollm2_tokenizer, tmp_path / "counts.sqlite", "smollm2")
    assert cache.count_many(texts) == [smollm2_tokenizer.count(t) for t in texts]
    assert cache.misses == 400
    cache.close()


def test_pack_json_segments_add_up_in_a_real_process(dsv2_home: Path) -> None:
    """The CLI end to end on the sample package: segments sum to the exact context count, twice (cold, warm)."""
    import os

    env = {**os.environ, "DSV2_HOME": str(dsv2_home)}
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [*dsv2_cmd(), "pack", "--repo", str(SAMPLES / "code"), "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    assert runs[0] == runs[1]
    payload = runs[0]
    assert payload["context_tokens"] == sum(s["tokens"] for d in payload["documents"] for s in d["segments"])


def test_a_directory_read_as_one_document_renders_file_by_file_with_line_numbers() -> None:
    """`extract DIR` reads a directory as one document: its files must stay citable as path:line."""
    doc = sources.load(str(SAMPLES / "code"))
    rendered = render_context([doc])
    files = {seg.location.source for seg in doc.segments}
    assert doc.kind == "repo" and rendered.count("<document ") == len(files) > 1
    predict = next(s for s in doc.segments if s.location.source.endswith("predict.py"))
    first_line = predict.text.split("\n")[0]
    assert f'<document source="{predict.location.source}">\n' in rendered
    assert f"1 | {first_line}" in rendered
