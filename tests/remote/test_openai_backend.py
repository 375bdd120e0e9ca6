"""OpenAIBackend against a real OpenAI-compatible server: llama-cpp-python's, serving SmolLM2 on loopback."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from dsv2cli.chat import ChatPrompt, Message, format_chat
from dsv2cli.engines import GenerationParams, Usage
from dsv2cli.engines.openai import OpenAIBackend, RemoteConfig
from dsv2cli.ggufmeta import read_gguf
from dsv2cli.tokens import Tokenizer

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture(scope="module")
def chat_template(smollm2: Path) -> str | None:
    return read_gguf(smollm2).chat_template


def prompt_for(tok: Tokenizer, template: str | None, question: str) -> ChatPrompt:
    messages = [Message("system", "You are a helpful assistant."), Message("user", question)]
    return format_chat(tok, messages, template, "llama")


def config(base_url: str, **overrides: Any) -> RemoteConfig:
    return replace(RemoteConfig(base_url, "smollm2", None, 4096), **overrides)


def run(backend: OpenAIBackend, prompt: ChatPrompt, params: GenerationParams) -> tuple[list[str], Usage]:
    usage = Usage()
    return list(backend.generate(prompt, params, usage)), usage


def test_streams_pieces_and_fills_estimated_usage(
    llama_server: str, smollm2_tokenizer: Tokenizer, chat_template: str | None
) -> None:
    tok = smollm2_tokenizer
    prompt = prompt_for(tok, chat_template, "Name three colors.")
    progress: list[tuple[int, int]] = []
    backend = OpenAIBackend(config(llama_server, name="local"), count=tok.count)
    try:
        usage = Usage()
        pieces = list(
            backend.generate(prompt, GenerationParams(24, 0.0, 1), usage, lambda d, t: progress.append((d, t)))
        )
    finally:
        backend.close()
    text = "".join(pieces)
    assert len(pieces) >= 3 and text.strip()
    # llama-cpp-python's server sends no usage in streams: ours is an estimate, and says so.
    assert usage.extra["usage_estimated"] == 1.0
    assert usage.prompt_tokens == len(prompt.ids)
    assert usage.output_tokens == tok.count(text) > 0
    assert usage.finish_reason in ("stop", "length")
    assert usage.prompt_eval_s > 0 and usage.generation_s > 0
    assert progress == [(len(prompt.ids), len(prompt.ids))]
    caps = backend.capabilities
    assert (caps.name, caps.context_window, caps.streaming, caps.gpu_offload) == ("smollm2", 4096, True, False)


def test_tiny_max_tokens_finishes_with_length(
    llama_server: str, smollm2_tokenizer: Tokenizer, chat_template: str | None
) -> None:
    prompt = prompt_for(smollm2_tokenizer, chat_template, "Write a long story about a dragon and a knight.")
    backend = OpenAIBackend(config(llama_server))
    try:
        pieces, usage = run(backend, prompt, GenerationParams(4, 0.0, 1))
    finally:
        backend.close()
    assert usage.finish_reason == "length"
    assert usage.output_tokens == len(pieces) <= 4  # no count given: one token per streamed piece


def test_auto_json_falls_back_to_json_object_and_remembers_it(
    llama_server: str, smollm2_tokenizer: Tokenizer, chat_template: str | None
) -> None:
    sent: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    client = httpx.Client(timeout=60.0, event_hooks={"request": [record]})
    backend = OpenAIBackend(config(llama_server), client=client)
    params = GenerationParams(48, 0.0, 1, json_schema=PERSON)
    prompt = prompt_for(smollm2_tokenizer, chat_template, "Ann is 31 years old. Give her name and age as JSON.")
    try:
        first, _ = run(backend, prompt, params)
        assert [body["response_format"]["type"] for body in sent] == ["json_schema", "json_object"]
        assert backend.json_mode_used == "json_object"
        assert len(backend.notices) == 1 and "json_object" in backend.notices[0]
        second, _ = run(backend, prompt, params)
    finally:
        client.close()
    assert [body["response_format"]["type"] for body in sent[2:]] == ["json_object"]
    for pieces in (first, second):
        jsonschema.validate(json.loads("".join(pieces)), PERSON)


def test_concurrent_calls_each_get_their_own_answer_and_usage(
    llama_server: str, smollm2_tokenizer: Tokenizer, chat_template: str | None
) -> None:
    questions = ["What is 2+2?", "Name a fruit that is yellow and long.", "Say hello to the whole wide world, please."]
    prompts = [prompt_for(smollm2_tokenizer, chat_template, q) for q in questions]
    assert len({len(p.ids) for p in prompts}) == 3
    backend = OpenAIBackend(config(llama_server))
    try:
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda p: run(backend, p, GenerationParams(8, 0.0, 1)), prompts))
    finally:
        backend.close()
    for prompt, (pieces, usage) in zip(prompts, results, strict=True):
        assert "".join(pieces).strip()
        assert usage.prompt_tokens == len(prompt.ids)
        assert usage.finish_reason in ("stop", "length")
