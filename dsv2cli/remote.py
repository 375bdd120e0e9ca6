"""Remote backends around the OpenAI-compatible engine: counting, window, cost, privacy, escalation.

Nothing here prints; the cli package shows what these functions return.

- Counting: DeepSeek models are counted with the shipped DeepSeek vocabulary and the DeepSeek-V2
  chat format (exact up to the server's own template: ``TEMPLATE_SLACK`` tokens are kept free);
  other models with tiktoken's cl100k_base as an estimate, keeping ``ESTIMATE_MARGIN`` of the
  window free.
- Window: --ctx (or a profile's window) wins; else the server is asked (:func:`discover_window`:
  vLLM and SGLang ``/v1/models`` ``max_model_len``, llama-server ``/props`` ``n_ctx``, SGLang
  ``/get_model_info`` / ``/get_server_info``, Ollama ``/api/show``); else a DeepSeek model's rated
  context. Where the window came from is ``RemoteTarget.window_source``.
- Cost: prices per 1M input / output tokens from the profile or DSV2_PRICE_INPUT/_OUTPUT;
  cache-hit input tokens (DeepSeek's ``prompt_cache_hit_tokens``) at ``price_cache_hit``.
- Privacy: before text leaves the machine, content matching a secret pattern is refused unless
  --allow-secrets, and a one-line account of what is sent is shown.
- Escalation (--escalate-to): which requests go to the second backend, and why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import RefusedError, UsageError
from .settings import Settings
from .sources.base import Document
from .sources.secrets import find_secrets
from .tokens import ESTIMATE_MARGIN, TEMPLATE_SLACK, EstimateTokenizer, Tokenizer, named_tokenizer_path


@dataclass(frozen=True)
class RemoteTarget:
    """Everything about one remote endpoint that is known before a request is made."""

    profile: str  # "openai" for ad-hoc --base-url, else the profile name
    base_url: str
    api_model: str
    window: int  # the endpoint's context window
    budget_window: int  # what the planners may use: the window less the counting margin
    counting: str  # "deepseek-v2" (exact vocabulary) or "estimate" (tiktoken cl100k_base)
    key_env: str | None  # the variable the key was read from (never the key)
    price_input: float | None  # USD per 1M tokens
    price_output: float | None
    price_cache_hit: float | None = None  # USD per 1M input tokens the server had cached (else price_input)
    window_source: str = ""  # where ``window`` came from: "--ctx", "profile deepseek", "GET .../props: n_ctx", ...

    @property
    def leaves_machine(self) -> bool:
        return not is_loopback(self.base_url)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "profile": self.profile,
            "base_url": self.base_url,
            "api_model": self.api_model,
            "window": self.window,
            "counting": self.counting,
            "price_input_per_1m": self.price_input,
            "price_output_per_1m": self.price_output,
            "price_cache_hit_per_1m": self.price_cache_hit,
            "window_source": self.window_source,
        }

    def cost(self, prompt_tokens: int, output_tokens: int, cache_hit_tokens: int = 0) -> float | None:
        """USD for one call's usage: ``cache_hit_tokens`` of the prompt at the cache-hit price."""
        if self.price_input is None or self.price_output is None:
            return None
        hit = min(max(cache_hit_tokens, 0), prompt_tokens)
        hit_price = self.price_cache_hit if self.price_cache_hit is not None else self.price_input
        usd = (prompt_tokens - hit) * self.price_input + hit * hit_price + output_tokens * self.price_output
        return round(usd / 1e6, 6)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(settings: Settings, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(key, the variable it came from): the profile's api_key_env first, then DSV2_API_KEY."""
    for name in (settings.api_key_env, "DSV2_API_KEY"):
        if name and environ.get(name):
            return environ[name], name
    return None, None


def target(settings: Settings, environ: Mapping[str, str], *, discover: bool = True) -> tuple[RemoteTarget, str | None]:
    """The endpoint of a remote ``settings`` and its API key (kept out of the target).

    Without a configured window the server is asked for it (``discover``; False only where the
    window does not matter, e.g. to ask before a batch is sent: then it is 0 when unknown)."""
    if not settings.base_url:
        raise UsageError(f"--backend {settings.backend}: no --base-url (or profile base_url) to send to")
    model = settings.api_model or "default"
    deepseek = "deepseek" in model.lower() or settings.api_tokenizer == "deepseek-v2"
    key, key_env = api_key(settings, environ)
    base_url = settings.base_url.rstrip("/")
    window = settings.ctx
    source = _setting_source(settings.origin("ctx"))
    if window is None and discover:
        found = discover_window(base_url, model, key)
        if found is not None:
            window, source = found
    if window is None and deepseek:
        # A self-hosted DeepSeek model the server says nothing about: its rated context, as locally.
        # (The hosted APIs' profiles carry their own documented limits.)
        from .models import DEEPSEEK_V2_LITE_RATED, DEEPSEEK_V2_RATED

        # a model name that does not say which (llama-server's "local"): the smaller, Lite's
        lite = "lite" in model.lower() or "deepseek" not in model.lower()
        window = DEEPSEEK_V2_LITE_RATED if lite else DEEPSEEK_V2_RATED
        source = f"rated context of DeepSeek-V2{'-Lite' if lite else ''} (the server did not say)"
    if window is None:
        if discover:
            raise UsageError(
                f"{base_url}: the context window of {model!r} is unknown and the server does not say "
                f"(asked {', '.join(WINDOW_ENDPOINTS)}): pass --ctx N (or set window in its [profiles.NAME] table)"
            )
        window, source = 0, "unknown"
    counting = settings.api_tokenizer or ("deepseek-v2" if "deepseek" in model.lower() else "estimate")
    margin = int(window * ESTIMATE_MARGIN) if counting == "estimate" else TEMPLATE_SLACK
    return (
        RemoteTarget(
            profile=settings.backend,
            base_url=base_url,
            api_model=model,
            window=window,
            budget_window=max(window - margin, 0),
            counting=counting,
            key_env=key_env,
            price_input=settings.price_input,
            price_output=settings.price_output,
            price_cache_hit=settings.price_cache_hit,
            window_source=source,
        ),
        key,
    )


def _setting_source(origin: str) -> str:
    """How a configured window is named: "--ctx", "DSV2_CTX", "profile deepseek", "config <path>"."""
    if origin == "flag":
        return "--ctx"
    if origin.startswith("env "):
        return origin[4:]
    return origin


# --- window discovery ---------------------------------------------------------------------------

DISCOVERY_TIMEOUT_S = 5.0
# Ollama serves num_ctx tokens of a model, whatever its trained context, unless told otherwise
# (its default was 2048 before v0.6 and is 4096 since; OLLAMA_CONTEXT_LENGTH on the server raises it).
OLLAMA_DEFAULT_NUM_CTX = 4096
WINDOW_ENDPOINTS = ("/v1/models", "/props", "/get_model_info", "/get_server_info", "/api/show")


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _model_entry(payload: Any, model: str) -> dict[str, Any] | None:
    """The entry of ``model`` in a /v1/models list (or the only entry: llama-server serves one model)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return None
    entries = [e for e in data if isinstance(e, dict)]
    for entry in entries:
        if entry.get("id") == model:
            return entry
    return entries[0] if len(entries) == 1 else None


def discover_window(
    base_url: str, model: str, key: str | None, *, client: Any = None, timeout: float = DISCOVERY_TIMEOUT_S
) -> tuple[int, str] | None:
    """(window, where it was read) from the server's own metadata, or None when it does not say.

    Asked in turn, the first answer wins (a server that cannot be reached is not asked again):

    - ``GET {base}/models``: vLLM and SGLang give ``max_model_len`` per model;
    - ``GET {root}/props``: llama-server's ``default_generation_settings.n_ctx`` (a slot's context:
      ``-c`` divided by ``-np``);
    - ``GET {root}/get_model_info``, ``{root}/get_server_info``: SGLang's ``context_length``, else
      ``max_total_num_tokens`` (its KV-cache pool: no request can be longer);
    - ``POST {root}/api/show``: Ollama's ``num_ctx`` parameter, else the model's
      ``<arch>.context_length`` capped at Ollama's default ``num_ctx``;
    - last, llama-server's ``/v1/models`` ``meta.n_ctx_train`` (the trained context).

    ``root`` is ``base`` without a trailing ``/v1``. Only metadata is asked for: no document text.
    """
    import httpx

    from .engines.openai import endpoint

    root = base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url
    own = client is None
    http, headers = endpoint(key, timeout, connect_s=min(timeout, 3.0), client=client)
    trained: tuple[int, str] | None = None

    def ask(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        response = http.request(method, url, headers=headers, json=body)
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    try:
        models = ask("GET", f"{base_url}/models")
        entry = _model_entry(models, model)
        if entry is not None:
            found = _positive_int(entry.get("max_model_len"))
            if found:
                return found, f"GET {base_url}/models: max_model_len"
            meta = entry.get("meta")
            n_train = _positive_int(meta.get("n_ctx_train")) if isinstance(meta, dict) else None
            if n_train:
                trained = n_train, f"GET {base_url}/models: meta.n_ctx_train (the trained context)"
        props = ask("GET", f"{root}/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            n_ctx = _positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
            n_ctx = n_ctx or _positive_int(props.get("n_ctx"))
            if n_ctx:
                return n_ctx, f"GET {root}/props: n_ctx"
        for path in ("/get_model_info", "/get_server_info"):
            info = ask("GET", f"{root}{path}")
            if not isinstance(info, dict):
                continue
            for name in ("context_length", "max_context_length", "max_model_len"):
                found = _positive_int(info.get(name))
                if found:
                    return found, f"GET {root}{path}: {name}"
            pool = _positive_int(info.get("max_total_num_tokens"))
            if pool:
                return pool, f"GET {root}{path}: max_total_num_tokens"
        show = ask("POST", f"{root}/api/show", {"model": model})
        if isinstance(show, dict):
            params = show.get("parameters")
            match = re.search(r"(?m)^\s*num_ctx\s+(\d+)", params) if isinstance(params, str) else None
            if match and int(match.group(1)) > 0:
                return int(match.group(1)), f"POST {root}/api/show: parameters num_ctx"
            info = show.get("model_info")
            if isinstance(info, dict):
                for name, value in info.items():
                    length = _positive_int(value) if str(name).endswith(".context_length") else None
                    if length:
                        return (
                            min(length, OLLAMA_DEFAULT_NUM_CTX),
                            f"POST {root}/api/show: model_info {name} {length:,}, capped at Ollama's default "
                            f"num_ctx {OLLAMA_DEFAULT_NUM_CTX:,} (set num_ctx, or pass --ctx)",
                        )
    except httpx.HTTPError:
        pass  # unreachable, or it broke off: the request itself will say so
    finally:
        if own:
            http.close()
    return trained


def counting_tokenizer(counting: str) -> Tokenizer:
    if counting == "deepseek-v2":
        return Tokenizer.load(named_tokenizer_path("deepseek-v2"))
    return EstimateTokenizer()


def chat_facts(counting: str, api_model: str) -> tuple[str, str, str | None]:
    """(name, architecture, chat template) to build prompts with: DeepSeek-V2's format, else plain turns."""
    if counting == "deepseek-v2":
        return api_model, "deepseek2", None
    return api_model, "remote", None


# --- privacy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretHit:
    source: str
    where: str  # "line 12", "p. 3", or "" for the question
    kind: str

    def __str__(self) -> str:
        return f"{self.source}{' ' + self.where if self.where else ''}: {self.kind}"


def find_secret_hits(docs: Sequence[Document], extra: Mapping[str, str] | None = None) -> list[SecretHit]:
    """Content that matches a secret pattern, in documents and in other text sent (e.g. the question),
    and the secrets already redacted from the documents as they were read: where one was found,
    more may sit nearby undetected, so sending is refused until the user says otherwise."""
    hits: list[SecretHit] = []
    for doc in docs:
        hits.extend(SecretHit(r.path, r.where(), r.kind) for r in doc.redactions)
        for seg in doc.segments:
            for start, _end, kind in find_secrets(seg.text):
                loc = seg.location
                if loc.line_start is not None:
                    where = f"line {loc.line_start + seg.text.count(chr(10), 0, start)}"
                elif loc.page is not None:
                    where = f"p. {loc.page}"
                else:
                    where = ""
                hits.append(SecretHit(doc.source, where, kind))
    for name, text in (extra or {}).items():
        hits.extend(SecretHit(name, "", kind) for _s, _e, kind in find_secrets(text))
    return hits


def refuse_secrets(hits: Sequence[SecretHit], to: RemoteTarget) -> None:
    if not hits:
        return
    shown = "; ".join(str(h) for h in hits[:5]) + (f"; and {len(hits) - 5} more" if len(hits) > 5 else "")
    raise RefusedError(
        f"not sending to {to.base_url}: {len(hits)} value(s) look like secrets ({shown}); "
        "remove them, or pass --allow-secrets to send anyway (values read from inputs stay redacted)"
    )


def outgoing_line(to: RemoteTarget, docs: Sequence[Document], prompt_tokens: int, calls: int) -> str:
    names = [d.source for d in docs]
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    est = " (estimated)" if to.counting == "estimate" else ""
    cost = to.cost(prompt_tokens, 0)
    money = f", input ~${cost:.4f}" if cost else ""
    return (
        f"sending to {to.base_url} ({to.api_model}): {len(names)} input(s) [{listed}], "
        f"~{prompt_tokens:,} prompt tokens{est} in {calls} request(s){money}"
    )


# --- escalation -------------------------------------------------------------------------------

_COMPLEX_WORDS = re.compile(
    r"(?i)\b(why|compare|comparison|contrast|trade-?offs?|explain how|implications?|across|reconcile|"
    r"inconsisten\w*|contradict\w*|step by step|root cause|differences?)\b"
)


def classify_question(question: str) -> str | None:
    """Why a question counts as complex (a reason), or None. A heuristic; --json records its verdict."""
    words = len(question.split())
    if words > 40:
        return f"long question ({words} words)"
    parts = question.count("?") + len(re.findall(r"(?m)^\s*(?:\d+[.)]|[-*])\s", question))
    if parts >= 2:
        return f"{parts}-part question"
    match = _COMPLEX_WORDS.search(question)
    if match:
        return f"asks for reasoning ({match.group(0).lower()!r})"
    return None


def classify_input(document_tokens: int, budget: int) -> str | None:
    """Inputs that do not fit one window of the first backend are complex: map-reduce or retrieval."""
    if document_tokens > budget:
        return f"input of {document_tokens:,} tokens exceeds the {budget:,}-token budget of one window"
    return None
