"""Memory planner arithmetic, with synthetic DeepSeek-V2 headers, against the KV cache per token that
llama.cpp allocates at f16: MLA format 31 KB (V2-Lite) / 69 KB (V2); converted before the MLA format
~276 KB / ~4.9 MB (llama.cpp PRs #12801, #19067; issue #7118)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsv2cli.errors import UsageError
from dsv2cli.ggufmeta import GGUFInfo
from dsv2cli.kvcache import CACHE_TYPES
from dsv2cli.memory import (
    GIB,
    Request,
    Resources,
    check_cache_types,
    choose_context,
    estimate,
    kv_layout,
    plan_context,
)

WEIGHTS = {"lite": int(10.4e9), "v2": int(132e9)}


def deepseek_v2(kind: str, *, mla: bool = True) -> GGUFInfo:
    """Header metadata as the converter writes it for DeepSeek-V2(-Lite) (HF configs)."""
    lite = kind == "lite"
    n_head = 16 if lite else 128
    meta: dict[str, object] = {
        "general.architecture": "deepseek2",
        "deepseek2.block_count": 27 if lite else 60,
        "deepseek2.embedding_length": 2048 if lite else 5120,
        "deepseek2.feed_forward_length": 10944 if lite else 12288,
        "deepseek2.attention.head_count": n_head,
        "deepseek2.attention.kv_lora_rank": 512,
        "deepseek2.rope.dimension_count": 64,
        "deepseek2.context_length": 163840,
        "deepseek2.vocab_size": 102400,
    }
    if not lite:
        meta["deepseek2.attention.q_lora_rank"] = 1536
    if mla:
        meta |= {
            "deepseek2.attention.head_count_kv": 1,
            "deepseek2.attention.key_length": 576,
            "deepseek2.attention.value_length": 512,
            "deepseek2.attention.key_length_mla": 192,
            "deepseek2.attention.value_length_mla": 128,
        }
    else:
        meta |= {
            "deepseek2.attention.head_count_kv": n_head,
            "deepseek2.attention.key_length": 192,
            "deepseek2.attention.value_length": 128,
        }
    return GGUFInfo(Path(f"DeepSeek-V2-{kind}.gguf"), 3, meta)


@pytest.mark.parametrize(
    ("kind", "mla", "per_token", "facts"),
    [
        ("lite", True, 31_104, "31 KB"),
        ("v2", True, 69_120, "69 KB"),
        ("lite", False, 276_480, "~276 KB"),
        ("v2", False, 4_915_200, "~4.9 MB"),
    ],
)
def test_kv_bytes_per_token_match_facts(kind: str, mla: bool, per_token: int, facts: str) -> None:
    layout = kv_layout(deepseek_v2(kind, mla=mla))
    assert layout is not None
    assert layout.format == ("mla" if mla else "legacy-deepseek2")
    assert layout.bytes_per_token() == per_token, facts


def test_v2_mla_at_128k_needs_about_8_4_gib_of_kv_cache() -> None:
    est = estimate(deepseek_v2("v2"), 131072, Request(), weights_bytes=WEIGHTS["v2"])
    assert est.kv_bytes / GIB == pytest.approx(8.44, abs=0.01)


def test_quantized_cache_types_shrink_the_kv_cache() -> None:
    layout = kv_layout(deepseek_v2("v2"))
    assert layout is not None
    assert layout.bytes_per_token("q8_0", "q8_0") == 60 * 576 // 32 * 34  # MLA: V is a view of K
    assert layout.bytes_per_token("q4_0") == 60 * 576 // 32 * 18


def test_cache_type_block_sizes_match_gguf() -> None:
    import gguf

    for name, block in CACHE_TYPES.items():
        assert block == gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name.upper()]], name


def test_old_format_v2_at_128k_is_refused_with_what_to_do() -> None:
    info = deepseek_v2("v2", mla=False)
    roomy = Resources(ram_available=512 * GIB, vram_free=None)
    choice = choose_context(info, 131072, 131072, Request(), roomy, weights_bytes=WEIGHTS["v2"])
    assert choice.estimate.kv_bytes / GIB == pytest.approx(600, abs=1)
    assert choice.fits is False
    assert choice.problem is not None
    assert re.search(r"600\.0 GiB of KV cache.*reconvert it.*lower --ctx", choice.problem)


def test_default_context_shrinks_to_the_largest_that_fits() -> None:
    info = deepseek_v2("lite", mla=False)  # 276 KB/token: 32k needs 8.4 GiB
    small = Resources(ram_available=16 * GIB, vram_free=None)
    choice = choose_context(info, None, 32768, Request(), small, weights_bytes=WEIGHTS["lite"])
    assert choice.fits is True and choice.notice
    assert 2048 <= choice.n_ctx < 32768 and choice.n_ctx % 256 == 0
    assert choice.estimate.ram_bytes <= small.ram_available
    bigger = estimate(info, choice.n_ctx + 256, Request(), weights_bytes=WEIGHTS["lite"])
    assert bigger.ram_bytes > small.ram_available  # the largest
    assert f"{choice.n_ctx:,}-token window" in choice.notice


def test_explicit_ctx_is_kept_or_refused_never_shrunk() -> None:
    info = deepseek_v2("lite", mla=False)
    small = Resources(ram_available=16 * GIB, vram_free=None)
    choice = choose_context(info, 32768, 32768, Request(), small, weights_bytes=WEIGHTS["lite"])
    assert choice.fits is False and choice.n_ctx == 32768


def test_unknown_free_memory_never_refuses() -> None:
    choice = choose_context(deepseek_v2("v2", mla=False), None, 131072, Request(), Resources(None, None), 1)
    assert choice.fits is None and choice.n_ctx == 131072


def test_offloaded_layers_count_against_vram() -> None:
    info = deepseek_v2("lite")
    est = estimate(info, 32768, Request(gpu_layers=-1), weights_bytes=WEIGHTS["lite"])
    assert est.vram_bytes >= WEIGHTS["lite"] + est.kv_bytes and est.ram_bytes == 0
    half = estimate(info, 32768, Request(gpu_layers=13), weights_bytes=WEIGHTS["lite"])
    assert 0 < half.ram_bytes < WEIGHTS["lite"] and 0 < half.vram_bytes < est.vram_bytes
    gpu = Resources(ram_available=64 * GIB, vram_free=8 * GIB)
    assert choose_context(info, 32768, 32768, Request(gpu_layers=-1), gpu, WEIGHTS["lite"]).fits is False


def test_flash_attention_off_adds_the_attention_scores_to_compute() -> None:
    info = deepseek_v2("v2")
    on = estimate(info, 131072, Request(flash_attn=True), weights_bytes=1)
    off = estimate(info, 131072, Request(flash_attn=False), weights_bytes=1)
    assert off.compute_bytes > 16 * GIB > on.compute_bytes


@pytest.mark.parametrize(
    ("type_k", "type_v", "flash", "message"),
    [
        ("f16", "q8_0", False, "needs flash attention"),
        ("q5_k", "f16", True, "must be one of"),
    ],
)
def test_bad_cache_types_are_usage_errors(type_k: str, type_v: str, flash: bool, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_cache_types(kv_layout(deepseek_v2("lite")), type_k, type_v, flash)


def test_cache_type_blocks_must_divide_the_head_size() -> None:
    info = deepseek_v2("lite")
    check_cache_types(kv_layout(info), "q4_0", "q8_0", True)  # MLA K head 576 = 18 x 32
    odd = GGUFInfo(Path("odd.gguf"), 3, {**info.metadata, "deepseek2.attention.key_length": 560})
    with pytest.raises(UsageError, match="do not divide this model's head size 560"):
        check_cache_types(kv_layout(odd), "q8_0", "f16", True)


def test_settings_memory_and_the_engine_apply_one_cache_rule(dsv2_home: Path, smollm2: Path) -> None:
    """kvcache.cache_type_problem is the rule; settings names the setting and its origin, memory and
    the llama.cpp engine the flag."""
    from dsv2cli.errors import ConfigError
    from dsv2cli.kvcache import cache_type_problem
    from dsv2cli.settings import resolve

    setting, problem = cache_type_problem("f16", "q4_0", False) or ("", "")
    assert setting == "cache_type_v" and "needs flash attention" in problem
    assert cache_type_problem("q4_0", "q4_0", None) is None  # auto is on
    with pytest.raises(ConfigError) as from_settings:
        resolve({"cache_type_v": "q4_0", "flash_attn": False}, {"DSV2_HOME": str(dsv2_home)})
    assert str(from_settings.value) == f"cache_type_v (flag): {problem}"
    with pytest.raises(UsageError) as from_memory:
        check_cache_types(None, "f16", "q4_0", False)
    assert str(from_memory.value) == f"--cache-type-v: {problem}"
    from dsv2cli.engines.llamacpp import LlamaCppBackend, LlamaCppOptions

    engine = LlamaCppBackend(LlamaCppOptions(smollm2, 512, flash_attn=False, type_v="q4_0"), "smollm2")
    with pytest.raises(UsageError) as from_engine:  # before llama.cpp is handed the context parameters
        engine.load()
    assert str(from_engine.value) == f"--cache-type-v: {problem}"


@dataclass(frozen=True)
class Choices:
    """What plan_context reads, without dsv2's Settings: memory takes the values, not the object."""

    ctx: int | None = None
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    flash_attn: bool | None = None
    gpu_layers: int | None = None


def test_plan_context_reads_only_the_memory_choices(smollm2: Path) -> None:
    from dsv2cli.ggufmeta import read_gguf

    info = read_gguf(smollm2)
    roomy = Resources(ram_available=64 * GIB, vram_free=None)
    chosen = plan_context(info, Choices(), 8192, False, roomy)
    assert chosen == choose_context(info, None, 8192, Request(), roomy)
    explicit = plan_context(info, Choices(ctx=4096, cache_type_k="q8_0", gpu_layers=0), 8192, True, roomy)
    assert explicit.n_ctx == 4096 and explicit.fits
    with pytest.raises(UsageError, match="needs flash attention"):
        plan_context(info, Choices(cache_type_v="q8_0", flash_attn=False), 8192, False, roomy)
