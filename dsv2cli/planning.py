"""``dsv2 plan``: how an input would run, from token counts alone (weights loaded only to measure speed once)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engines.llamacpp import LlamaCppBackend, LlamaCppOptions
from .fsutil import write_atomic
from .packing import ContextCount
from .sources.base import Location
from .tokens import tokenizer_key


@dataclass(frozen=True)
class Sized:
    location: Location
    tokens: int


def part_sizes(counted: ContextCount) -> list[Sized]:
    """Tokens of every segment (a page, a file, a section) as packed, in input order."""
    return [Sized(seg.location, n) for seg, n in counted.parts if seg is not None]


def largest(sizes: Sequence[Sized], n: int = 10) -> list[Sized]:
    return sorted(sizes, key=lambda s: -s.tokens)[:n]


# --- prompt-evaluation speed, measured once per model and settings --------------------------------

SPEED_PROBE_TOKENS = 1536
SPEED_PROBE_TEXT = (
    "The harbour authority reviewed the ferry timetable, the fuel contracts and the crew rotation, "
    "and published its findings for the regional council in the spring. "
)


def speed_key(model_path: Path, threads: int, gpu_layers: int | None, flash_attn: bool | None) -> str:
    return json.dumps([tokenizer_key(model_path), threads, gpu_layers, flash_attn])


class SpeedCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.notices: list[str] = []  # a speed that could not be saved (full disk): the caller says so

    def get(self, key: str) -> float | None:
        entry = self.entry(key)
        return float(entry["tokens_per_s"]) if entry is not None and "tokens_per_s" in entry else None

    def entry(self, key: str) -> dict[str, Any] | None:
        """The whole record under ``key`` (None when absent or unreadable)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        entry = data.get(key) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, tokens_per_s: float, output_tokens_per_s: float | None = None) -> None:
        """The prompt speed (and, when measured with it, the generation speed) of one model and settings."""
        record: dict[str, Any] = {"tokens_per_s": tokens_per_s, "probe_tokens": SPEED_PROBE_TOKENS}
        if output_tokens_per_s is not None:
            record["output_tokens_per_s"] = output_tokens_per_s
            record["output_probe_tokens"] = OUTPUT_PROBE_TOKENS
        self.put_entry(key, record)

    def put_entry(self, key: str, record: dict[str, Any]) -> None:
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[key] = {**record, "measured_at": time.time()}
        try:  # a cache is optional: a full disk costs the next run a measurement, not this run its answer
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(data, indent=1))  # a concurrent reader sees the old or the new file
        except OSError as exc:
            self.notices.append(f"speed cache {self.path}: {exc.strerror or exc}; the speed measured is not saved")


def measure_prompt_speed(backend: LlamaCppBackend, tokens: int = SPEED_PROBE_TOKENS) -> float:
    """Evaluate a fixed prompt of ``tokens`` (~1.5k by default) on the loaded model; return tokens/s."""
    llm = backend.load()
    ids = llm.tokenize((SPEED_PROBE_TEXT * (tokens // 20 + 10)).encode(), add_bos=False, special=False)
    ids = ids[: min(tokens, llm.n_ctx() - 8)]
    llm.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves reset() unannotated
    started = time.perf_counter()
    llm.eval(ids)
    return len(ids) / (time.perf_counter() - started)


def measure_output_speed(backend: LlamaCppBackend, tokens: int = 0) -> float:
    """Greedy decoding of ``tokens`` (default :data:`OUTPUT_PROBE_TOKENS`) after a short prompt on
    the loaded model, one token per llama.cpp decode as in generation; return tokens/s."""
    from . import llama

    tokens = tokens or OUTPUT_PROBE_TOKENS
    llm = backend.load()
    prompt = llm.tokenize(SPEED_PROBE_TEXT.encode(), add_bos=False, special=False)[:32]
    tokens = max(1, min(tokens, llm.n_ctx() - len(prompt) - 8))
    llm.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves reset() unannotated
    llm.eval(prompt)
    started = time.perf_counter()
    for _ in range(tokens):
        llm.eval([llama.greedy_token(llm)])
    return tokens / (time.perf_counter() - started)


# --- which thread count: measured per model and settings ----------------------------------------

# `dsv2 plan --measure` compares thread counts with a shorter probe than the one behind the
# estimate, so that comparing three settings costs about as much as measuring one.
THREAD_PROBE_TOKENS = 512
OUTPUT_PROBE_TOKENS = 32


@dataclass(frozen=True)
class ThreadSpeed:
    threads: int
    prompt_tokens_per_s: float
    output_tokens_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads,
            "prompt_tokens_per_s": round(self.prompt_tokens_per_s, 1),
            "output_tokens_per_s": round(self.output_tokens_per_s, 1),
        }


def threads_key(model_path: Path, gpu_layers: int | None, flash_attn: bool | None) -> str:
    return json.dumps(["threads", tokenizer_key(model_path), gpu_layers, flash_attn])


def measure_threads(
    options: LlamaCppOptions,
    candidates: Sequence[int],
    *,
    prompt_tokens: int = THREAD_PROBE_TOKENS,
    output_tokens: int = OUTPUT_PROBE_TOKENS,
    rounds: int = 1,
) -> list[ThreadSpeed]:
    """Prompt and generation speed of the model in ``options`` at each thread count. With several
    rounds the counts take turns, each round starting with another one, and the medians are
    returned, so a burst of load elsewhere does not fall on one count alone. One model is in
    memory at a time (a GPU offload would otherwise hold one copy per count); loading is not timed."""
    import statistics
    from dataclasses import replace

    n_ctx = min(options.n_ctx, max(prompt_tokens, SPEED_PROBE_TOKENS) + output_tokens + 64)
    order = list(dict.fromkeys(candidates))
    prompt: dict[int, list[float]] = {n: [] for n in order}
    output: dict[int, list[float]] = {n: [] for n in order}
    for round_ in range(max(1, rounds)):
        shift = round_ % len(order)
        for n in order[shift:] + order[:shift]:
            backend = LlamaCppBackend(replace(options, threads=n, n_ctx=n_ctx, prefix_cache=None), f"probe-{n}")
            try:
                backend.load()
                prompt[n].append(measure_prompt_speed(backend, prompt_tokens))
                output[n].append(measure_output_speed(backend, output_tokens))
            finally:
                backend.close()
    return [ThreadSpeed(n, statistics.median(prompt[n]), statistics.median(output[n])) for n in order]


def cached_threads(cache: SpeedCache, key: str) -> list[ThreadSpeed] | None:
    entry = cache.entry(key)
    rows = entry.get("rows") if entry is not None else None
    if not isinstance(rows, list):
        return None
    try:
        return [
            ThreadSpeed(int(r["threads"]), float(r["prompt_tokens_per_s"]), float(r["output_tokens_per_s"]))
            for r in rows
        ]
    except (KeyError, TypeError, ValueError):
        return None


def store_threads(cache: SpeedCache, key: str, rows: Sequence[ThreadSpeed]) -> None:
    cache.put_entry(
        key,
        {
            "rows": [r.to_dict() for r in rows],
            "probe_tokens": THREAD_PROBE_TOKENS,
            "output_probe_tokens": OUTPUT_PROBE_TOKENS,
        },
    )


# --- defaults, for what was not measured on this machine ----------------------------------------

# The embedded SmolLM2-135M at the default thread count on the project's idle 2-core machine
# (bench/threads.py, 2026-11-30: 197 and 89 tok/s; 115 and 54 with one busy process alongside).
EMBEDDED_PROMPT_TOKENS_PER_S = 190.0
EMBEDDED_OUTPUT_TOKENS_PER_S = 85.0
# The default embedder (all-MiniLM-L6-v2 Q8_0 run by llama.cpp) on the same machine: 16.4 chunks/s
# on samples/code at the default threads, idle (bench/threads.py); an index build also writes to
# chromadb. With other work running it drops to 5-8.
DEFAULT_EMBED_CHUNKS_PER_S = 16.0
EMBED_PROBE_CHUNKS = 32


def speed_cache_path(home: Path) -> Path:
    return home / "cache" / "prompt-speed.json"


@dataclass(frozen=True)
class IndexEstimate:
    """What the first ``dsv2 ask`` on a corpus too big for the window would spend on its index."""

    state: str  # the index now: "missing", "interrupted" or "ready"
    chunks: int
    to_embed: int
    embedder: str | None  # None: no embedding model, BM25 alone
    chunks_per_s: float | None
    source: str | None  # "measured" or "default"; None when nothing is to be embedded
    measured_now: bool = False

    @property
    def seconds(self) -> float | None:
        if self.to_embed == 0:
            return 0.0
        return self.to_embed / self.chunks_per_s if self.chunks_per_s else None


def planned_embedder(
    home: Path, embed_model: str | Path | None, threads: int | None, gpu_layers: int | None = None
) -> tuple[Any, str | None]:
    """(the embedder ask would use, or None, its name) without converting or loading anything:
    the default MiniLM not yet converted is returned as (None, its name)."""
    from .index.embedder import DEFAULT_FILE, DEFAULT_MAX_TOKENS, LlamaEmbedder, default_weights_dir

    if embed_model:
        path = Path(embed_model).expanduser()
        if not path.is_file():
            return None, path.name
        return LlamaEmbedder(path, threads=threads, gpu_layers=gpu_layers), path.name
    converted = home / "models" / DEFAULT_FILE
    if converted.is_file():
        embedder = LlamaEmbedder(converted, max_tokens=DEFAULT_MAX_TOKENS, threads=threads, gpu_layers=gpu_layers)
        return embedder, converted.name
    return None, (DEFAULT_FILE if default_weights_dir() is not None else None)  # converted on first use


def measure_embed_speed(embedder: Any, texts: Sequence[str]) -> float:
    """Chunks/s of ``embedder`` on ``texts`` (the model is loaded first, outside the timing)."""
    probe = [t for t in texts if t.strip()]
    if not probe:
        return 0.0
    embedder.embed(probe[:1])  # loads the model
    started = time.perf_counter()
    embedder.embed(probe)
    return len(probe) / (time.perf_counter() - started)


def estimate_index(
    home: Path,
    corpus: Sequence[str | Path],
    documents: Sequence[Any],
    *,
    embed_model: str | Path | None,
    threads: int,
    measure: bool | None,
    gpu_layers: int | None = None,
    vectors: Any = None,
) -> IndexEstimate:
    """The corpus's index as ``ask`` would find it: chunks to embed, counted exactly with the
    index's own chunker (no model is loaded), and the time at a measured rate if one was recorded
    (an earlier index build, an earlier plan), else the default. ``measure``: True measures the
    rate now, None measures it only when there is work and no recorded rate, False never does.
    ``gpu_layers``: the embedder's offload as ask would run it (None: the default), part of the
    recorded rate's key. ``vectors``: where the index keeps its vectors (see ``index.open_index``)."""
    from .index.embedder import record_rate, recorded_rate, resolve_embedder
    from .index.retrieve import open_index

    index = open_index(home, corpus, vectors)
    embedder, name = planned_embedder(home, embed_model, threads, gpu_layers)
    if name is None:  # BM25 alone: chunking only
        work = index.pending(documents, None)
        return IndexEstimate(work.state, work.chunks, 0, None, None, None)
    work = index.pending(documents, embedder.fingerprint if embedder is not None else None)
    rate = recorded_rate(home, embedder.fingerprint, threads, gpu_layers) if embedder is not None else None
    if work.to_embed and (measure or (measure is None and rate is None)):
        if embedder is None:  # converts MiniLM once
            embedder = resolve_embedder(home, embed_model, threads=threads, gpu_layers=gpu_layers).embedder
        if embedder is not None:
            texts = _probe_texts(documents)
            measured = measure_embed_speed(embedder, texts)
            if measured > 0:
                seconds = len(texts) / measured
                record_rate(home, embedder.fingerprint, threads, gpu_layers, len(texts), seconds, "dsv2 plan")
                return IndexEstimate(work.state, work.chunks, work.to_embed, name, measured, "measured", True)
    if not work.to_embed:
        return IndexEstimate(work.state, work.chunks, 0, name, rate, "measured" if rate else None)
    if rate is not None:
        return IndexEstimate(work.state, work.chunks, work.to_embed, name, rate, "measured")
    return IndexEstimate(work.state, work.chunks, work.to_embed, name, DEFAULT_EMBED_CHUNKS_PER_S, "default")


def _probe_texts(documents: Sequence[Any]) -> list[str]:
    """The first :data:`EMBED_PROBE_CHUNKS` chunks of the corpus, as the index would embed them."""
    from .index.chunking import chunk_document

    texts: list[str] = []
    for document in documents:
        texts += [c.index_text for c in chunk_document(document)]
        if len(texts) >= EMBED_PROBE_CHUNKS:
            break
    return texts[:EMBED_PROBE_CHUNKS]
