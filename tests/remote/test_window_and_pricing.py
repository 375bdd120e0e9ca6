"""Served models that state their window, cache-aware pricing and rate limits, against real HTTP
servers on loopback answering as vLLM, SGLang, llama-server and Ollama do."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dsv2cli import remote
from dsv2cli.cli import app
from dsv2cli.errors import UsageError
from dsv2cli.settings import resolve

from .servers import serve

runner = CliRunner()

VLLM = {("GET", "/v1/models"): (200, {"object": "list", "data": [
    {"id": "other", "object": "model", "max_model_len": 1024},
    {"id": "smol", "object": "model", "owned_by": "vllm", "root": "HuggingFaceTB/SmolLM2", "max_model_len": 6144},
]})}  # fmt: skip
LLAMA_SERVER = {
    ("GET", "/v1/models"): (200, {"object": "list", "data": [{"id": "x.gguf", "meta": {"n_ctx_train": 8192}}]}),
    ("GET", "/props"): (200, {"default_generation_settings": {"n_ctx": 2048}, "total_slots": 2}),
}
SGLANG = {
    ("GET", "/v1/models"): (200, {"object": "list", "data": [{"id": "smol", "object": "model"}]}),
    ("GET", "/get_model_info"): (200, {"model_path": "smol", "tokenizer_path": "smol", "is_generation": True}),
    ("GET", "/get_server_info"): (200, {"context_length": 5120, "max_total_num_tokens": 400_000, "tp_size": 2}),
}
SGLANG_POOL_ONLY = {
    **SGLANG,
    ("GET", "/get_server_info"): (200, {"context_length": None, "max_total_num_tokens": 3000}),
}
OLLAMA = {
    ("GET", "/v1/models"): (200, {"object": "list", "data": [{"id": "smol", "object": "model"}]}),
    ("POST", "/api/show"): (
        200,
        {"parameters": 'stop "<|im_end|>"\nnum_ctx 3072', "model_info": {"llama.context_length": 8192}},
    ),
}
OLLAMA_DEFAULT = {**OLLAMA, ("POST", "/api/show"): (200, {"model_info": {"llama.context_length": 8192}})}
TRAINED_ONLY = {("GET", "/v1/models"): LLAMA_SERVER[("GET", "/v1/models")]}


def target_of(url: str, **flags: Any) -> remote.RemoteTarget:
    settings = resolve({"backend": "openai", "base_url": url, "api_model": "smol", **flags}, {})
    return remote.target(settings, {})[0]


@pytest.mark.parametrize(
    ("routes", "window", "source"),
    [
        (VLLM, 6144, "GET {url}/models: max_model_len"),
        (LLAMA_SERVER, 2048, "GET {root}/props: n_ctx"),
        (SGLANG, 5120, "GET {root}/get_server_info: context_length"),
        (SGLANG_POOL_ONLY, 3000, "GET {root}/get_server_info: max_total_num_tokens"),
        (OLLAMA, 3072, "POST {root}/api/show: parameters num_ctx"),
        (OLLAMA_DEFAULT, 4096, "POST {root}/api/show: model_info llama.context_length 8,192, capped at Ollama's"),
        (TRAINED_ONLY, 8192, "GET {url}/models: meta.n_ctx_train (the trained context)"),
    ],
    ids=["vllm", "llama-server", "sglang", "sglang-pool", "ollama", "ollama-default", "n_ctx_train"],
)
def test_the_window_is_read_from_the_server(dsv2_home: Path, routes: dict[Any, Any], window: int, source: str) -> None:
    with serve(routes=routes) as server:
        found = target_of(server.url)
    assert found.window == window
    assert found.window_source.startswith(source.format(url=server.url, root=server.root))
    assert found.budget_window == window - int(window * 0.1)  # not a DeepSeek model: estimated counts, 10 % kept free
    assert server.chats() == []  # metadata only: nothing of a document was sent


def test_the_window_is_asked_for_with_the_api_key_as_the_chat_calls_send_it(dsv2_home: Path) -> None:
    """Discovery goes through the engine's client and headers: a key is sent as a bearer token, no key
    sends no Authorization header."""
    with serve(routes=LLAMA_SERVER) as server:
        settings = resolve({"backend": "openai", "base_url": server.url, "api_model": "smol"}, {})
        keyed = remote.target(settings, {"DSV2_API_KEY": "sk-test-1"})[0]
        asked_with_key = [r.authorization for r in server.requests]
        del server.requests[:]
        plain = remote.target(settings, {})[0]
        asked_without = [r.authorization for r in server.requests]
    assert keyed.window == plain.window == 2048 and keyed.key_env == "DSV2_API_KEY"
    assert asked_with_key == ["Bearer sk-test-1"] * 2  # /v1/models, then /props
    assert asked_without == [None, None]


def test_ctx_wins_and_the_server_is_not_asked(dsv2_home: Path) -> None:
    with serve(routes=VLLM) as server:
        found = target_of(server.url, ctx=1000)
    assert (found.window, found.window_source) == (1000, "--ctx")
    assert server.requests == []


def test_a_server_that_does_not_say_is_refused_with_what_was_asked(dsv2_home: Path) -> None:
    with serve(routes={}) as server, pytest.raises(UsageError) as caught:
        target_of(server.url)
    message = str(caught.value)
    assert "context window of 'smol' is unknown and the server does not say" in message
    assert "/props" in message and "/api/show" in message and "--ctx N" in message
    assert server.hits("/v1/models") == 1 and server.hits("/api/show") == 1


def test_a_deepseek_model_the_server_says_nothing_about_gets_its_rated_window(dsv2_home: Path) -> None:
    with serve(routes={}) as server:
        settings = resolve({"backend": "openai", "base_url": server.url, "api_model": "DeepSeek-V2-Lite-Chat"}, {})
        found = remote.target(settings, {})[0]
    assert found.window == 32_768 and found.window_source.startswith("rated context of DeepSeek-V2-Lite")


def write_doc(tmp_path: Path) -> Path:
    doc = tmp_path / "memo.md"
    doc.write_text("# Memo\n\nThe Kittiwake ferry is serviced in January; crossings move to the Tern.\n")
    return doc


def invoke(args: list[str], **env: str) -> Any:
    return runner.invoke(app, args, env={"NO_COLOR": "1", **env})


def test_the_discovered_window_is_reported_and_ctx_still_wins(dsv2_home: Path, tmp_path: Path) -> None:
    doc = write_doc(tmp_path)
    with serve(routes=LLAMA_SERVER) as server:
        remote_flags = ["--backend", "openai", "--base-url", server.url, "--api-model", "smol"]
        asked = invoke(["summarize", str(doc), *remote_flags, "--dry-run", "--json"])
        told = invoke(["summarize", str(doc), *remote_flags, "--ctx", "3000", "--dry-run", "--json"])
        planned = invoke(["plan", str(doc), *remote_flags, "--json"])
    assert asked.exit_code == 0, asked.output
    backend = json.loads(asked.stdout)["backend"]
    assert backend["window"] == 2048 and backend["window_source"] == f"GET {server.root}/props: n_ctx"
    assert json.loads(asked.stdout)["window"] == 2048 - 204
    assert f"window of 'smol': 2,048 tokens, from GET {server.root}/props: n_ctx (--ctx N overrides)" in asked.stderr
    assert told.exit_code == 0, told.output
    assert json.loads(told.stdout)["backend"]["window"] == 3000
    assert json.loads(told.stdout)["backend"]["window_source"] == "--ctx"
    assert "window of" not in told.stderr
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["backend"]["window_source"] == f"GET {server.root}/props: n_ctx"
    assert server.chats() == []


DEEPSEEK_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "total_tokens": 1100,
    "prompt_cache_hit_tokens": 800,
    "prompt_cache_miss_tokens": 200,
}
PRICES = {"DSV2_PRICE_INPUT": "0.27", "DSV2_PRICE_OUTPUT": "1.10", "DSV2_PRICE_CACHE_HIT": "0.07"}


def test_cache_hit_tokens_are_billed_at_the_hit_price(dsv2_home: Path, tmp_path: Path) -> None:
    doc = write_doc(tmp_path)
    with serve(usage=lambda body: DEEPSEEK_USAGE) as server:
        flags = ["--backend", "openai", "--base-url", server.url, "--api-model", "deepseek-chat", "--ctx", "8192"]
        summary = invoke(["summarize", str(doc), *flags, "--json"], **PRICES)
        answer = invoke(["ask", "When is the ferry serviced?", str(doc), *flags, "--json"], **PRICES)
        unpriced = invoke(["summarize", str(doc), *flags, "--json"], DSV2_PRICE_INPUT="0.27", DSV2_PRICE_OUTPUT="1.10")
    # 200 missed input tokens at 0.27, 800 cached at 0.07, 100 output at 1.10 (USD per 1M)
    expected = round((200 * 0.27 + 800 * 0.07 + 100 * 1.10) / 1e6, 6)
    for run in (summary, answer):
        assert run.exit_code == 0, run.output
        out = json.loads(run.stdout.splitlines()[-1])
        assert out["cache_hit_tokens"] == 800 and out["input_tokens"] == 1000
        assert out["cost_usd"] == expected == 0.00022
        assert out["backend"]["price_cache_hit_per_1m"] == 0.07
    # without a cache-hit price every input token is billed at the input price
    assert json.loads(unpriced.stdout)["cost_usd"] == round((1000 * 0.27 + 100 * 1.10) / 1e6, 6)


def test_the_deepseek_profile_carries_a_cache_hit_price(dsv2_home: Path) -> None:
    settings = resolve({"backend": "deepseek"}, {})
    assert settings.price_cache_hit is not None and settings.price_input is not None
    assert settings.price_cache_hit < settings.price_input
    target = remote.target(settings, {})[0]
    assert target.cost(1_000_000, 0, cache_hit_tokens=1_000_000) == settings.price_cache_hit


def test_a_429_is_waited_out_and_the_attempts_are_counted(dsv2_home: Path, tmp_path: Path) -> None:
    doc = write_doc(tmp_path)
    with serve(failures=[(429, {"Retry-After": "1"}), (503, {})]) as server:
        flags = ["--backend", "openai", "--base-url", server.url, "--api-model", "smol", "--ctx", "4096"]
        run = invoke(["summarize", str(doc), *flags, "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert out["summary"] == "A short summary." and out["attempts"] == 3
    assert len(server.chats()) == 3
    assert re.search(r"429 Too Many Requests from \S+, retrying in 1\.[01] s \(attempt 2 of 5\)", run.stderr)
    assert re.search(r"503 Service Unavailable from \S+, retrying in 2\.\d s \(attempt 3 of 5\)", run.stderr)
