"""Fixtures for the index tests: the real MiniLM GGUF (converted once per session) and temp repos."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dsv2cli.index import LlamaEmbedder

# Short truncation keeps the suite fast on 2 cores; the benchmark measures the real settings.
TEST_MAX_TOKENS = 128

_WORD_TEXT = """account invoice ledger balance payment refund customer order cart basket product catalog price
discount coupon tax region country currency rate exchange report chart metric dashboard widget session token cookie
login password profile avatar email notify message queue worker retry backoff cache entry expire evict storage bucket
upload download archive compress thumbnail image resize"""
WORDS = _WORD_TEXT.split()


@pytest.fixture(scope="session")
def embedder(minilm_gguf: Path) -> LlamaEmbedder:
    return LlamaEmbedder(minilm_gguf, max_tokens=TEST_MAX_TOKENS, threads=2)


def write_module(path: Path, rng: random.Random, functions: int = 3) -> None:
    """A plausible Python module of a few functions built from business words."""
    lines = [f'"""Helpers for {rng.choice(WORDS)} {rng.choice(WORDS)} handling."""', "", "import math", ""]
    for _ in range(functions):
        a, b, c = rng.sample(WORDS, 3)
        lines += [
            "",
            f"def {a}_{b}_{c}(items, limit=10):",
            f'    """Return the {a} {b} for each {c}, at most ``limit``."""',
            "    result = []",
            "    for item in items[:limit]:",
            f"        value = item.get('{a}', 0) * {rng.randint(2, 99)} + item.get('{b}', 1)",
            f"        if value > {rng.randint(100, 999)}:",
            f"            result.append(('{c}', math.floor(value)))",
            "    return result",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def make_repo(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(n_files: int = 12, seed: int = 0) -> Path:
        rng = random.Random(seed)
        root = tmp_path / "repo"
        for i in range(n_files):
            write_module(root / f"pkg/mod_{i:02d}.py", rng)
        return root

    return make
