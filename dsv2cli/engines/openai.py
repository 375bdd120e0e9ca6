"""Remote engine: any OpenAI-compatible chat-completions endpoint (DeepSeek API, vLLM, llama.cpp
server, OpenRouter), streamed over httpx.

The server applies its own chat template to ``ChatPrompt.messages``; ``ChatPrompt.ids`` is only
our count of the prompt. Server-sent events are parsed here (one ``data:`` line per event, which
is what every OpenAI-compatible server sends), so no SDK is needed.

The API key is sent as a bearer token and nowhere else: not in reprs, messages or exceptions
(a server that echoes it back has it replaced by ``***``).

Rate limits: a 429 (or 5xx, or a dropped connection) is retried up to ``max_retries`` times after
its ``Retry-After`` (capped at ``RETRY_AFTER_CAP_S``) or an exponential backoff, both with jitter
so that many requests in flight do not come back at the same instant; while one call waits out a
``Retry-After``, the other calls of the same backend hold their next request too. Each call's
attempts and the seconds it waited are in ``Usage.extra`` (``attempts``, ``retry_wait_s``), and
the provider's prompt-cache hits (DeepSeek's ``prompt_cache_hit_tokens``, OpenAI's
``prompt_tokens_details.cached_tokens``) in ``cache_hit_tokens``.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

import httpx

from ..chat import ChatPrompt
from ..errors import ConfigError, RemoteError
from ..settings import JSON_MODES
from ..tokens import Tokenizer
from .base import Capabilities, GenerationParams, PromptProgress, Usage

CONNECT_TIMEOUT_S = 10.0
BACKOFF_BASE_S, BACKOFF_FACTOR, BACKOFF_CAP_S = 1.0, 2.0, 30.0
RETRY_AFTER_CAP_S = 120.0
SERVER_MESSAGE_CHARS = 300  # of the server's error message quoted in ours
# auto: the next response_format to try when the server rejects one.
_FALLBACK = {"json_schema": "json_object", "json_object": "none"}
# 4xx answers that are about something other than response_format: never a reason to fall back.
_NOT_FORMAT = frozenset({401, 403, 404, 405, 408, 413, 429})


@dataclass(frozen=True)
class RemoteConfig:
    base_url: str  # e.g. "https://api.deepseek.com/v1"; /chat/completions is appended
    api_model: str  # the "model" field sent
    api_key: str | None = field(repr=False)  # sent as "Authorization: Bearer ..." when set
    window: int  # context window in tokens (from the profile)
    timeout_s: float = 120.0  # longest wait for the next byte of a response
    max_retries: int = 4  # after the first attempt, on 429, 5xx and connection failures
    json_mode: str = "auto"  # json_schema | json_object | none | auto (json_schema, then fall back)
    name: str = ""  # profile name for display

    def __post_init__(self) -> None:
        if self.json_mode not in JSON_MODES:
            raise ConfigError(f"json_mode {self.json_mode!r}: must be one of {', '.join(JSON_MODES)}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries {self.max_retries}: must be 0 or more")
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s {self.timeout_s}: must be more than 0")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


class RemoteAuthError(RemoteError):
    """The server refused the request for its credentials (401 or 403)."""


class _Transient(Exception):
    """A failure worth another attempt: 429, 408, 5xx, or no connection / no response."""

    def __init__(self, what: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what = what  # "503 Service Unavailable", "read timeout (no data for 120 s)"
        self.detail = detail  # the server's message, if any
        self.retry_after = retry_after


class _FormatRejected(Exception):
    """The server refused the request's response_format."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def endpoint(
    api_key: str | None,
    timeout_s: float,
    *,
    connect_s: float = CONNECT_TIMEOUT_S,
    client: httpx.Client | None = None,
) -> tuple[httpx.Client, dict[str, str]]:
    """The HTTP client and headers for requests to an OpenAI-compatible endpoint, the chat calls'
    and the window discovery's (``remote.discover_window``) alike: ``client`` when given, else a
    new one that waits ``connect_s`` to connect and ``timeout_s`` for each next byte; the API key
    as a bearer token when there is one (the only place it is sent)."""
    http = client if client is not None else httpx.Client(timeout=httpx.Timeout(timeout_s, connect=connect_s))
    return http, ({"Authorization": f"Bearer {api_key}"} if api_key else {})


def response_format(mode: str, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` request field for a JSON mode (None: send none)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "dsv2_output", "schema": schema, "strict": True}}
    if mode == "json_object":  # llama-cpp-python's server constrains to the schema given here; others ignore it
        return {"type": "json_object", "schema": schema}
    return None


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def with_jitter(retry_after: float) -> float:
    """A server's Retry-After plus up to 10 % (at most 1 s) more, so that waiting requests spread out."""
    return retry_after + random.uniform(0.0, min(retry_after * 0.1, 1.0))


def backoff_s(failures: int) -> float:
    """Delay before attempt ``failures + 1``: 1, 2, 4, ... s capped at 30 s, plus up to 10% jitter."""
    delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * BACKOFF_FACTOR ** (failures - 1))
    return delay + random.uniform(0.0, delay * 0.1)


def cache_hit_tokens(reported: Mapping[str, Any]) -> int | None:
    """Prompt tokens the provider served from its cache, from a usage block: DeepSeek's
    ``prompt_cache_hit_tokens`` (with ``prompt_cache_miss_tokens``), or OpenAI's
    ``prompt_tokens_details.cached_tokens``; None when the server does not say."""
    hit = reported.get("prompt_cache_hit_tokens")
    if isinstance(hit, int) and not isinstance(hit, bool):
        return max(hit, 0)
    details = reported.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if isinstance(cached, int) and not isinstance(cached, bool):
        return max(cached, 0)
    return None


def _status_text(response: httpx.Response) -> str:
    reason = response.reason_phrase
    if not reason:
        try:
            reason = HTTPStatus(response.status_code).phrase
        except ValueError:
            reason = ""
    return f"{response.status_code} {reason}".strip()


def _shorten(text: str, limit: int = SERVER_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OpenAIBackend:
    """Implements :class:`dsv2cli.engines.Backend` over an OpenAI-compatible ``/chat/completions``.

    ``generate`` may be called from several threads at once: per-call state lives in the call,
    and the one shared thing learned (which JSON mode the server takes) is set under a lock.
    """

    def __init__(
        self,
        config: RemoteConfig,
        *,
        count: Callable[[str], int] | None = None,
        tokenizer: Tokenizer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.url = config.url
        self._tokenizer = tokenizer
        self._count = count if count is not None or tokenizer is None else tokenizer.count
        self._sleep = sleep
        self._on_retry = on_retry
        self._owns_client = client is None
        self._client, auth = endpoint(config.api_key, config.timeout_s, client=client)
        self._headers = {"Accept": "text/event-stream", **auth}
        self._lock = threading.Lock()
        self._hold_until = 0.0  # time.monotonic() before which no new request starts (a Retry-After)
        # The response_format mode the server last accepted (None until a JSON call succeeds).
        self.json_mode_used: str | None = None
        # Same surface as LlamaCppBackend for the CLI: nothing to load; one line per notice.
        self.load_s = 0.0
        self.notices: list[str] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name=self.config.api_model, context_window=self.config.window, streaming=True, gpu_offload=False
        )

    @property
    def tokenizer(self) -> Tokenizer:
        """The counting tokenizer prompts are built with (the server tokenizes them itself)."""
        if self._tokenizer is None:
            raise RuntimeError("this OpenAIBackend was built without a counting tokenizer")
        return self._tokenizer

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- one call -----------------------------------------------------------------------

    def generate(
        self,
        prompt: ChatPrompt,
        params: GenerationParams,
        usage: Usage,
        on_prompt_progress: PromptProgress | None = None,
    ) -> Iterator[str]:
        if not prompt.messages:
            raise ValueError("a remote backend sends ChatPrompt.messages, and this prompt has none")
        mode = self._first_mode(params)
        failures = 0
        attempts = 0
        waited = 0.0
        just_waited = False
        while True:
            body = self._body(prompt, params, mode)
            if not just_waited:
                waited += self._hold()
            just_waited = False
            attempts += 1
            usage.extra["attempts"] = float(attempts)
            usage.extra["retry_wait_s"] = round(waited, 3)
            try:
                yield from self._attempt(body, prompt, usage, on_prompt_progress)
            except _FormatRejected as exc:
                fallback = _FALLBACK.get(mode) if self.config.json_mode == "auto" else None
                if fallback is None:
                    raise RemoteError(exc.message) from exc
                mode = fallback
                continue
            except _Transient as exc:
                failures += 1
                if failures > self.config.max_retries:
                    detail = f" ({exc.detail})" if exc.detail else ""
                    raise RemoteError(f"{self.url}: gave up after {failures} attempts: {exc.what}{detail}") from exc
                if exc.retry_after is not None:
                    delay = with_jitter(exc.retry_after)
                    with self._lock:  # the other calls of this backend hold off as long
                        self._hold_until = max(self._hold_until, time.monotonic() + delay)
                else:
                    delay = backoff_s(failures)
                if self._on_retry is not None:
                    self._on_retry(
                        f"{exc.what} from {self.url}, retrying in {delay:.1f} s "
                        f"(attempt {failures + 1} of {self.config.max_retries + 1})"
                    )
                self._sleep(delay)
                waited += delay
                just_waited = True
                continue
            if params.json_schema is not None:
                self._remember(mode)
            return

    def _hold(self) -> float:
        """Wait out another call's Retry-After before a new request; the seconds waited."""
        with self._lock:
            wait = self._hold_until - time.monotonic()
        if wait <= 0:
            return 0.0
        self._sleep(wait)
        return wait

    def _first_mode(self, params: GenerationParams) -> str:
        if params.json_schema is None:
            return "none"
        if self.config.json_mode != "auto":
            return self.config.json_mode
        with self._lock:
            return self.json_mode_used or "json_schema"

    def _remember(self, mode: str) -> None:
        with self._lock:
            if self.config.json_mode == "auto" and mode != "json_schema" and self.json_mode_used != mode:
                self.notices.append(
                    f"{self.url} does not take response_format json_schema; using "
                    + ("json_object" if mode == "json_object" else "no response_format")
                    + " (the output is validated either way)"
                )
            self.json_mode_used = mode

    def _body(self, prompt: ChatPrompt, params: GenerationParams, mode: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.api_model,
            "messages": [{"role": m.role, "content": m.content} for m in prompt.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "seed": params.seed,
        }
        if params.json_schema is not None:
            fmt = response_format(mode, params.json_schema)
            if fmt is not None:
                body["response_format"] = fmt
        return body

    def _attempt(
        self,
        body: dict[str, Any],
        prompt: ChatPrompt,
        usage: Usage,
        on_prompt_progress: PromptProgress | None,
    ) -> Iterator[str]:
        """One request. Raises _Transient (retry), _FormatRejected (try another mode) or RemoteError."""
        started = time.perf_counter()
        parts: list[str] = []
        try:
            with self._client.stream("POST", self.url, json=body, headers=self._headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._failure(response, "response_format" in body)
                yield from self._stream(response, prompt, usage, on_prompt_progress, started, parts)
        except httpx.TransportError as exc:
            what = self._describe(exc)
            if parts:  # a retry would repeat what the caller already has
                raise RemoteError(
                    f"{self.url}: the answer broke off after {sum(map(len, parts))} characters: {what} (not retried)"
                ) from exc
            if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)):
                raise RemoteError(f"{self.url}: {what}") from exc
            raise _Transient(what) from exc

    def _stream(
        self,
        response: httpx.Response,
        prompt: ChatPrompt,
        usage: Usage,
        on_prompt_progress: PromptProgress | None,
        started: float,
        parts: list[str],
    ) -> Iterator[str]:
        first: float | None = None
        finish: str | None = None
        reported: dict[str, Any] = {}
        done = False
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, ": keepalive" comments, event:/id: fields
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                chunk = self._chunk(data)
                if isinstance(chunk.get("usage"), dict):
                    reported = chunk["usage"]
                choices = chunk.get("choices")
                choice = choices[0] if isinstance(choices, list) and choices else None
                if not isinstance(choice, dict):
                    continue  # e.g. the usage-only chunk at the end
                delta = choice.get("delta")
                content = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(content, str) and content:
                    if first is None:
                        first = time.perf_counter()
                        usage.prompt_eval_s = first - started
                        if on_prompt_progress is not None:  # the server has read the whole prompt
                            on_prompt_progress(len(prompt.ids), len(prompt.ids))
                    parts.append(content)
                    yield content
                if isinstance(choice.get("finish_reason"), str):
                    finish = choice["finish_reason"]
        finally:
            usage.generation_s = time.perf_counter() - first if first is not None else 0.0
        if finish is None:  # every OpenAI-compatible server ends an answer with a finish_reason
            if parts:
                ending = "[DONE]" if done else "the connection closing"
                raise RemoteError(
                    f"{self.url}: the answer broke off after {sum(map(len, parts))} characters ({ending} without "
                    "a finish_reason; llama-cpp-python's server does this to a stream when another request "
                    "arrives: start it with --interrupt_requests False)"
                )
            if done:  # cut short before it began (that same interruption): safe to ask again
                raise _Transient(
                    "stream ended before the answer began",
                    "llama-cpp-python's server cuts streams short when requests overlap: "
                    "start it with --interrupt_requests False",
                )
            raise RemoteError(
                f"{self.url}: the server closed the stream without an answer; its log says why "
                "(llama-cpp-python's server does this when the prompt does not fit its context window)"
            )
        usage.finish_reason = finish
        text = "".join(parts)
        prompt_tokens, output_tokens = reported.get("prompt_tokens"), reported.get("completion_tokens")
        if isinstance(prompt_tokens, int) and isinstance(output_tokens, int):
            usage.prompt_tokens, usage.output_tokens = prompt_tokens, output_tokens
            cached = cache_hit_tokens(reported)
            if cached is not None:
                usage.extra["cache_hit_tokens"] = float(cached)
        else:  # our tokenizer's count of the prompt; the output by ``count``, else one token per piece
            usage.prompt_tokens = len(prompt.ids)
            usage.output_tokens = self._count(text) if self._count is not None else len(parts)
            usage.extra["usage_estimated"] = 1.0

    # -- errors -------------------------------------------------------------------------

    def _chunk(self, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if not isinstance(chunk, dict):
            raise RemoteError(f"{self.url}: the server sent a stream event that is not a JSON object: {_shorten(data)}")
        if chunk.get("error"):
            raise RemoteError(f"{self.url}: the server reported an error mid-stream: {self._message(chunk)}")
        return chunk

    def _redact(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text

    def _message(self, payload: Any) -> str:
        """The error message in an OpenAI-style error body ({"error": {"message": ...}} and variants)."""
        if isinstance(payload, dict):
            error = payload.get("error", payload)
            if isinstance(error, dict):
                error = error.get("message") or error.get("detail") or json.dumps(error)
            if not isinstance(error, str):
                error = json.dumps(error)
            payload = error
        return self._redact(_shorten(str(payload)))

    def _response_message(self, response: httpx.Response) -> str:
        try:
            return self._message(response.json())
        except ValueError:
            return self._redact(_shorten(response.text))

    def _failure(self, response: httpx.Response, sent_format: bool) -> Exception:
        """The exception for an error status: RemoteError, _Transient or _FormatRejected."""
        status = response.status_code
        what = _status_text(response)
        message = self._response_message(response)
        said = f": {message}" if message else ""
        if status in (401, 403):
            if self.config.api_key:
                hint = "the server rejected the API key"
            else:
                hint = "the server wants an API key and none is set"
            return RemoteAuthError(f"{self.url}: {hint} ({what}); set DSV2_API_KEY or the profile's api_key_env{said}")
        lowered = response.text.lower()
        about_format = any(word in lowered for word in ("response_format", "json_schema", "json_object"))
        if sent_format and status != 429 and (about_format or (400 <= status < 500 and status not in _NOT_FORMAT)):
            hint = "" if self.config.json_mode == "auto" else ' (json_mode "auto" falls back to what the server takes)'
            return _FormatRejected(f"{self.url}: {what}{said}{hint}")
        if status in (408, 429) or status >= 500:
            return _Transient(what, message, retry_after_s(response.headers.get("Retry-After")))
        if status == 404:
            return RemoteError(f"{self.url}: {what}; check base_url (it usually ends in /v1){said}")
        return RemoteError(f"{self.url}: {what}{said}")

    def _describe(self, exc: httpx.TransportError) -> str:
        if isinstance(exc, httpx.ConnectTimeout):
            return f"connect timeout (no connection within {CONNECT_TIMEOUT_S:g} s)"
        if isinstance(exc, httpx.ReadTimeout):
            return f"read timeout (no data for {self.config.timeout_s:g} s)"
        if isinstance(exc, httpx.TimeoutException):
            return f"timeout ({type(exc).__name__})"
        if isinstance(exc, httpx.ConnectError):
            return f"cannot connect ({self._redact(str(exc)) or 'connection failed'})"
        return f"{type(exc).__name__} ({self._redact(str(exc)) or 'no detail'})"
