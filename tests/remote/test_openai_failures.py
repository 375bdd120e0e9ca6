"""OpenAIBackend against a scripted local HTTP server: retries, backoff, timeouts, auth, JSON-mode fallback."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dsv2cli.chat import ChatPrompt, Message
from dsv2cli.engines import GenerationParams, Usage
from dsv2cli.engines.openai import OpenAIBackend, RemoteAuthError, RemoteConfig, retry_after_s
from dsv2cli.errors import ConfigError, ExitCode, RemoteError

from .conftest import free_port

KEY = "sk-test-secret-1234567890"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
PROMPT = ChatPrompt(
    ids=list(range(17)),
    text="(rendered by the server)",
    template="test",
    messages=(
        Message("system", "You are terse.\nAnswer in one line."),
        Message("user", 'Summarize: «naïve» café <|im_end|>\n"quoted" \\ back\tslash'),
    ),
)
PARAMS = GenerationParams(max_tokens=32, temperature=0.25, seed=7)
LLAMA_CPP_REJECTION = {
    "error": {
        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}",
        "type": "internal_server_error",
    }
}


def sse(*pieces: str, finish: str | None = "stop", usage: dict[str, int] | None = None, done: bool = True) -> bytes:
    """A chat-completions event stream as servers send it (a keepalive comment included)."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": choices, **extra}) + "\r\n\r\n"

    out = [": keepalive\r\n\r\n", event([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])]
    out += [event([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in pieces]
    if finish is not None:
        out.append(event([{"index": 0, "delta": {}, "finish_reason": finish}]))
    if usage is not None:
        out.append(event([], usage=usage))
    if done:
        out.append("data: [DONE]\r\n\r\n")
    return "".join(out).encode()


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] = field(default_factory=lambda: sse("Hello", ",", " world", "."))
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # after the body, keep the connection open and send nothing more


def error(status: int, message: str = "", **headers: str) -> Reply:
    return Reply(status, {"error": {"message": message or f"status {status}", "type": "test"}}, headers)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class ScriptedServer:
    """Answers POSTs with the scripted replies in turn (the last one repeats) and records each request."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        self.release = threading.Event()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                scripted.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
                reply = scripted.replies[min(len(scripted.seen), len(scripted.replies)) - 1]
                if isinstance(reply.body, dict):
                    data, kind = json.dumps(reply.body).encode(), "application/json"
                else:
                    data, kind = reply.body, "text/event-stream"
                self.send_response(reply.status)
                self.send_header("Content-Type", kind)
                if kind == "application/json":
                    self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                if reply.hang:
                    scripted.release.wait(10)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def script(self, *replies: Reply) -> ScriptedServer:
        self.replies = list(replies)
        return self

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


@dataclass
class Harness:
    backend: OpenAIBackend
    sleeps: list[float]
    retries: list[str]

    def run(self, params: GenerationParams = PARAMS) -> tuple[str, Usage]:
        usage = Usage()
        return "".join(self.backend.generate(PROMPT, params, usage)), usage


@pytest.fixture
def make() -> Iterator[Callable[..., Harness]]:
    made: list[OpenAIBackend] = []

    def build(url: str, count: Callable[[str], int] | None = None, **overrides: Any) -> Harness:
        sleeps: list[float] = []
        retries: list[str] = []
        config = replace(RemoteConfig(url, "deepseek-chat", None, 32768), **overrides)
        backend = OpenAIBackend(config, count=count, sleep=sleeps.append, on_retry=retries.append)
        made.append(backend)
        return Harness(backend, sleeps, retries)

    yield build
    for backend in made:
        backend.close()


def test_request_carries_the_messages_and_parameters(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    text, usage = make(server.script(Reply()).url).run()
    assert text == "Hello, world."
    (seen,) = server.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.body == {
        "model": "deepseek-chat",
        "messages": [{"role": m.role, "content": m.content} for m in PROMPT.messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 32,
        "temperature": 0.25,
        "seed": 7,
    }
    assert usage.finish_reason == "stop"


def test_authorization_header_is_sent_only_with_a_key(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    server.script(Reply())
    make(server.url).run()
    make(server.url, api_key=KEY).run()
    assert "authorization" not in server.seen[0].headers
    assert server.seen[1].headers["authorization"] == f"Bearer {KEY}"


def test_server_reported_usage_is_used_as_is(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    reply = Reply(body=sse("a", "b", finish="length", usage={"prompt_tokens": 40, "completion_tokens": 2}))
    text, usage = make(server.script(reply).url, count=lambda s: 999).run()
    assert (text, usage.prompt_tokens, usage.output_tokens, usage.finish_reason) == ("ab", 40, 2, "length")
    assert "usage_estimated" not in usage.extra


def test_without_server_usage_counts_are_estimated(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    _, counted = make(server.script(Reply()).url, count=len).run()
    assert (counted.prompt_tokens, counted.output_tokens) == (len(PROMPT.ids), len("Hello, world."))
    assert counted.extra["usage_estimated"] == 1.0
    _, pieces = make(server.url).run()
    assert pieces.output_tokens == 4  # no counter: one token per streamed piece


def test_429_with_retry_after_waits_that_long(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    harness = make(server.script(error(429, "slow down", **{"Retry-After": "2"}), error(429), Reply()).url)
    text, usage = harness.run()
    assert text == "Hello, world."
    waited, backoff = harness.sleeps
    assert 2.0 <= waited <= 2.2  # Retry-After plus up to 10 % jitter (at most 1 s)
    assert 2.0 <= backoff <= 2.2  # no Retry-After on the second 429: the backoff for a second failure
    assert re.fullmatch(
        rf"429 Too Many Requests from {re.escape(server.url)}/chat/completions, retrying in 2\.[0-2] s "
        r"\(attempt 2 of 5\)",
        harness.retries[0],
    )
    assert len(server.seen) == 3 and usage.extra["attempts"] == 3.0
    assert usage.extra["retry_wait_s"] == pytest.approx(waited + backoff, abs=0.01)


def test_a_retry_after_holds_the_other_calls_of_the_backend(
    server: ScriptedServer, make: Callable[..., Harness]
) -> None:
    """While one call waits out a 429's Retry-After, a new call does not hit the server either."""
    harness = make(server.script(error(429, "slow down", **{"Retry-After": "30"}), Reply()).url)
    harness.run()
    assert 30.0 <= harness.sleeps[0] <= 31.0
    _, second = harness.run()  # the fake sleep did not pass the time: the hold is still on
    assert len(harness.sleeps) == 2 and 29.0 <= harness.sleeps[1] <= 31.0
    assert second.extra["attempts"] == 1.0 and second.extra["retry_wait_s"] == pytest.approx(
        harness.sleeps[1], abs=0.001
    )


def test_retry_after_as_seconds_or_http_date_is_capped() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_s("2", now) == 2.0
    assert retry_after_s("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_s("86400", now) == 120.0
    assert retry_after_s("soon", now) is None
    assert retry_after_s(None, now) is None


def test_5xx_backs_off_exponentially_then_succeeds(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    harness = make(server.script(error(500), error(502), Reply()).url)
    assert harness.run()[0] == "Hello, world."
    assert len(server.seen) == 3
    first, second = harness.sleeps
    assert 1.0 <= first <= 1.1 and 2.0 <= second <= 2.2


def test_persistent_503_gives_up_naming_the_status(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    harness = make(server.script(error(503, "overloaded")).url, max_retries=2)
    with pytest.raises(RemoteError) as caught:
        harness.run()
    assert len(server.seen) == 3 and len(harness.sleeps) == 2
    message = str(caught.value)
    assert message.startswith(f"{server.url}/chat/completions: gave up after 3 attempts: 503 Service Unavailable")
    assert "overloaded" in message
    assert caught.value.exit_code == ExitCode.REMOTE


def test_401_fails_at_once_and_never_shows_the_key(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    harness = make(server.script(error(401, f"Incorrect API key provided: {KEY}")).url, api_key=KEY)
    with pytest.raises(RemoteAuthError) as caught:
        harness.run()
    assert len(server.seen) == 1 and harness.sleeps == []
    message = str(caught.value)
    assert "rejected the API key (401 Unauthorized)" in message and "DSV2_API_KEY" in message
    assert KEY not in message and KEY not in repr(harness.backend.config)
    assert caught.value.exit_code == ExitCode.REMOTE


def test_403_without_a_key_says_none_is_set(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    with pytest.raises(RemoteAuthError, match="wants an API key and none is set"):
        make(server.script(error(403)).url).run()
    assert len(server.seen) == 1


def test_other_4xx_quotes_the_server_message_shortened(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    with pytest.raises(RemoteError) as caught:
        make(server.script(error(400, "This model's maximum context length is 32768 tokens. " + "x" * 600)).url).run()
    message = str(caught.value)
    assert "400 Bad Request: This model's maximum context length is 32768 tokens." in message
    assert len(message) < 420 and message.endswith("…")
    assert len(server.seen) == 1


def test_a_connection_that_never_answers_times_out(make: Callable[..., Harness]) -> None:
    with socket.socket() as silent:  # listens, never accepts: the kernel completes the handshake
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        harness = make(f"http://127.0.0.1:{silent.getsockname()[1]}/v1", timeout_s=0.5, max_retries=1)
        started = time.monotonic()
        with pytest.raises(RemoteError, match=r"gave up after 2 attempts: read timeout \(no data for 0.5 s\)"):
            harness.run()
    assert time.monotonic() - started < 5
    assert len(harness.sleeps) == 1 and "read timeout" in harness.retries[0]


def test_nothing_listening_is_a_connection_error(make: Callable[..., Harness]) -> None:
    harness = make(f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(RemoteError, match="gave up after 2 attempts: cannot connect"):
        harness.run()


def test_a_stall_after_content_is_not_retried(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    harness = make(server.script(Reply(body=sse("partial", finish=None, done=False), hang=True)).url, timeout_s=0.5)
    pieces: list[str] = []
    stalled = r"broke off after 7 characters: read timeout \(no data for 0.5 s\) \(not retried\)"
    with pytest.raises(RemoteError, match=stalled):
        pieces.extend(harness.backend.generate(PROMPT, PARAMS, Usage()))
    assert pieces == ["partial"]
    assert len(server.seen) == 1 and harness.sleeps == []


def test_a_stream_cut_short_by_another_request(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    # llama-cpp-python's server (interrupt_requests, its default) ends a stream with [DONE] and no finish_reason.
    harness = make(server.script(Reply(body=sse(finish=None)), Reply()).url)
    assert harness.run()[0] == "Hello, world."  # cut before any content: asked again
    assert len(server.seen) == 2
    with pytest.raises(RemoteError, match=r"broke off after 6 characters.*--interrupt_requests False"):
        make(server.script(Reply(body=sse("Hello,", finish=None))).url).run()


def test_a_stream_closed_without_an_answer(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    # llama-cpp-python's server answers 200 and closes the stream when the prompt overflows its window.
    with pytest.raises(RemoteError, match="closed the stream without an answer"):
        make(server.script(Reply(body=b"")).url).run()
    assert len(server.seen) == 1


def test_an_error_event_mid_stream(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    body = sse("Hi", finish=None, done=False) + b'data: {"error": {"message": "upstream overloaded"}}\n\n'
    with pytest.raises(RemoteError, match="error mid-stream: upstream overloaded"):
        make(server.script(Reply(body=body)).url).run()


def test_auto_json_falls_back_on_a_400_and_remembers(server: ScriptedServer, make: Callable[..., Harness]) -> None:
    harness = make(server.script(error(400, "response_format type json_schema is unsupported"), Reply()).url)
    params = replace(PARAMS, json_schema=SCHEMA)
    harness.run(params)
    harness.run(params)
    formats = [seen.body["response_format"] for seen in server.seen]
    assert formats[0] == {
        "type": "json_schema",
        "json_schema": {"name": "dsv2_output", "schema": SCHEMA, "strict": True},
    }
    assert formats[1:] == [{"type": "json_object", "schema": SCHEMA}] * 2  # the second call does not probe
    assert harness.backend.json_mode_used == "json_object" and harness.sleeps == []


def test_auto_json_falls_back_to_none_after_llama_cpp_style_500s(
    server: ScriptedServer, make: Callable[..., Harness]
) -> None:
    harness = make(server.script(Reply(500, LLAMA_CPP_REJECTION), Reply(500, LLAMA_CPP_REJECTION), Reply()).url)
    harness.run(replace(PARAMS, json_schema=SCHEMA))
    assert [seen.body.get("response_format", {}).get("type") for seen in server.seen] == [
        "json_schema",
        "json_object",
        None,
    ]
    assert harness.backend.json_mode_used == "none" and harness.sleeps == []


def test_a_fixed_json_mode_is_sent_as_is_and_not_abandoned(
    server: ScriptedServer, make: Callable[..., Harness]
) -> None:
    params = replace(PARAMS, json_schema=SCHEMA)
    make(server.script(Reply()).url, json_mode="none").run(params)
    assert "response_format" not in server.seen[-1].body
    with pytest.raises(RemoteError, match=r'400 Bad Request: no json_schema here.*json_mode "auto"'):
        make(server.script(error(400, "no json_schema here")).url, json_mode="json_schema").run(params)
    assert len(server.seen) == 2


def test_a_bad_json_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="json_mode 'grammar'"):
        RemoteConfig("http://x/v1", "m", None, 1024, json_mode="grammar")
