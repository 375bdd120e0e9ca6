"""DeepSeek-V2 end to end on tiny random-weight deepseek2 GGUFs (tests/deepseek2.py): architecture,
tokenizer, chat template, budgeting, memory planning and cache options are the real paths."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsv2cli.ggufmeta import read_gguf
from dsv2cli.memory import kv_layout

from .conftest import dsv2_cmd
from .deepseek2 import SHAPES, build_all

LOAD = r"""
import json, sys
from pathlib import Path
from dsv2cli.engines.llamacpp import LlamaCppBackend, LlamaCppOptions
path, type_k, type_v = sys.argv[1:4]
backend = LlamaCppBackend(LlamaCppOptions(Path(path), n_ctx=1024, threads=1, n_batch=64, verbose=True,
                                          type_k=type_k, type_v=type_v), "tiny")
tok = backend.tokenizer
print(json.dumps({"ids": tok.encode("Hello 世界"), "bos": tok.bos_id, "eos": tok.eos_id}))
"""


def _load(path: Path, type_k: str = "f16", type_v: str = "f16") -> tuple[dict[str, object], str]:
    """Load in a subprocess: a file llama.cpp dislikes can abort the whole process (SIGABRT)."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, str(path), type_k, type_v], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_fixture_builds_in_seconds(deepseek_vocab: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    paths = build_all(tmp_path, deepseek_vocab)
    assert time.perf_counter() - started < 20  # ~1-4 s; generous for a shared 2-core machine
    for name, path in paths.items():
        info = read_gguf(path)
        assert info.architecture == "deepseek2" and info.vocab_size == 102400
        assert info.arch_value("rope.scaling.type") == "yarn"
        assert info.arch_value("leading_dense_block_count") == 1
        assert (info.arch_value("attention.key_length_mla") is not None) == SHAPES[name].mla


@pytest.mark.parametrize("shape", ["lite", "v2", "old"])
def test_each_shape_loads_and_llama_cpp_allocates_the_kv_cache_we_predict(
    deepseek2_models: dict[str, Path], shape: str
) -> None:
    path = deepseek2_models[shape]
    tokens, log = _load(path)
    assert tokens == {"ids": [17464, 207, 4997], "bos": 100000, "eos": 100001}
    match = re.search(r"llama_kv_cache: size =\s+([\d.]+) MiB \(\s*(\d+) cells", log)
    assert match, log[-2000:]
    reported = float(match.group(1)) * 2**20 / int(match.group(2))
    layout = kv_layout(read_gguf(path))
    assert layout is not None and layout.format == ("legacy-deepseek2" if shape == "old" else "mla")
    assert layout.bytes_per_token() == SHAPES[shape].kv_bytes_per_token_f16
    assert reported == pytest.approx(layout.bytes_per_token(), rel=0.01)  # MiB printed with 2 decimals


def test_quantized_cache_types_reach_llama_cpp(deepseek2_models: dict[str, Path]) -> None:
    path = deepseek2_models["old"]
    _, log = _load(path, "q8_0", "q8_0")
    assert "K (q8_0)" in log and "V (q8_0)" in log
    match = re.search(r"llama_kv_cache: size =\s+([\d.]+) MiB \(\s*(\d+) cells", log)
    assert match
    layout = kv_layout(read_gguf(path))
    assert layout is not None
    reported = float(match.group(1)) * 2**20 / int(match.group(2))
    assert reported == pytest.approx(layout.bytes_per_token("q8_0", "q8_0"), rel=0.01)


def _run(args: list[str], timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text("The harbour authority reviewed the ferry timetable and published its findings in spring.\n" * 6)
    return path


@pytest.mark.parametrize("shape", ["lite", "old"])
def test_summarize_end_to_end(deepseek2_models: dict[str, Path], doc: Path, shape: str) -> None:
    proc = _run(
        [
            "summarize",
            str(doc),
            "--model",
            str(deepseek2_models[shape]),
            "--ctx",
            "512",
            "--max-tokens",
            "8",
            "--threads",
            "1",
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == f"tiny-deepseek2-{shape}" and out["window"] == 512 and out["strategy"] == "whole"
    assert 0 < out["output_tokens"] <= 8 and out["input_tokens"] > 100


def test_ask_end_to_end_on_the_v2_shape(deepseek2_models: dict[str, Path], doc: Path) -> None:
    model = str(deepseek2_models["v2"])
    dry = _run(
        ["ask", "Who published findings?", str(doc), "--model", model, "--ctx", "512", "--max-tokens", "8", "--dry-run"]
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("<｜begin▁of▁sentence｜>") and dry.stdout.rstrip().endswith("Assistant:")
    proc = _run(
        [
            "ask",
            "Who published findings?",
            str(doc),
            "--model",
            model,
            "--ctx",
            "512",
            "--max-tokens",
            "8",
            "--threads",
            "1",
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[0])
    assert out["window"] == 512 and out["output_tokens"] > 0


@pytest.mark.parametrize(("shape", "window"), [("lite", 32768), ("v2", 131072), ("old", 32768)])
def test_default_window_is_the_rated_context(deepseek2_models: dict[str, Path], shape: str, window: int) -> None:
    proc = _run(["models", "--model", str(deepseek2_models[shape]), "--json"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["trained_context"] == 163840 and info["default_context"] == window
    assert info["kv_bytes_per_token"] == SHAPES[shape].kv_bytes_per_token_f16
    assert info["memory"]["n_ctx"] == window and info["memory"]["kv_cache_bytes"] == window * info["kv_bytes_per_token"]


def test_a_context_that_cannot_fit_is_refused_before_loading(deepseek2_models: dict[str, Path], doc: Path) -> None:
    # old format: 2,304 bytes/token; 2^27 tokens need ~288 GiB of KV cache
    proc = _run(["summarize", str(doc), "--model", str(deepseek2_models["old"]), "--ctx", str(2**27)])
    assert proc.returncode == 4, proc.stderr
    assert "KV cache" in proc.stderr and "reconvert" in proc.stderr
    assert "llama" not in proc.stderr.split("error:")[0]  # nothing from llama.cpp: it never loaded


def test_quantized_v_cache_without_flash_attention_is_a_usage_error(
    deepseek2_models: dict[str, Path], doc: Path
) -> None:
    proc = _run(
        [
            "summarize",
            str(doc),
            "--model",
            str(deepseek2_models["lite"]),
            "--ctx",
            "512",
            "--cache-type-v",
            "q8_0",
            "--no-flash-attn",
        ],
        timeout=60,
    )
    assert proc.returncode == 2
    assert "flash attention" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_tokenizer_deepseek_v2_plans_without_weights(doc: Path) -> None:
    from dsv2cli.packing import render_context
    from dsv2cli.sources import load_inputs
    from dsv2cli.tokens import Tokenizer, named_tokenizer_path

    plan = _run(["plan", str(doc), "--tokenizer", "deepseek-v2", "--json"], timeout=60)
    assert plan.returncode == 0, plan.stderr
    out = json.loads(plan.stdout)
    assert out["window"] == 131072 and out["tokenizer"] == "deepseek-v2" and out["fits"] is True
    assert out["speed_measured_now"] is False
    pack = _run(["pack", str(doc), "--tokenizer", "deepseek-v2", "--json"], timeout=60)
    assert pack.returncode == 0, pack.stderr
    packed = json.loads(pack.stdout)
    assert packed["context_tokens"] == out["context_tokens"]
    tok = Tokenizer.load(named_tokenizer_path("deepseek-v2"))
    docs, _ = load_inputs([str(doc)], io.BytesIO())
    assert packed["context_tokens"] == tok.count(render_context(docs))  # the exact DeepSeek count
    dry = _run(["summarize", str(doc), "--tokenizer", "deepseek-v2", "--dry-run", "--json"], timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["window"] == 131072
    real = _run(["summarize", str(doc), "--tokenizer", "deepseek-v2"], timeout=60)
    assert real.returncode == 2 and "--dry-run" in real.stderr
