"""Remote backends around the OpenAI-compatible engine: counting, window, cost, privacy, escalation.

Nothing here prints; the cli package shows what these functions return.

- Counting: DeepSeek models are counted with the shipped DeepSeek vocabulary and the DeepSeek-V2
  chat format (exact up to the server's own template: ``TEMPLATE_SLACK`` tokens are kept free);
  other models with tiktoken's cl100k_base as an estimate, keeping ``ESTIMATE_MARGIN`` of the
  window free.
- Cost: prices per 1M input / output tokens from the profile or --price-input/--price-output.
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
        }

    def cost(self, prompt_tokens: int, output_tokens: int) -> float | None:
        if self.price_input is None or self.price_output is None:
            return None
        return round((prompt_tokens * self.price_input + output_tokens * self.price_output) / 1e6, 6)


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


def target(settings: Settings, environ: Mapping[str, str]) -> tuple[RemoteTarget, str | None]:
    """The endpoint of a remote ``settings`` and its API key (kept out of the target)."""
    if not settings.base_url:
        raise UsageError(f"--backend {settings.backend}: no --base-url (or profile base_url) to send to")
    model = settings.api_model or "default"
    deepseek = "deepseek" in model.lower()
    window = settings.ctx
    if window is None:
        if not deepseek:
            raise UsageError(
                f"{settings.base_url}: the context window of {model!r} is unknown: pass --ctx N "
                "(or set window in its [profiles.NAME] table)"
            )
        # A self-hosted DeepSeek model without a configured window: its rated context, as locally.
        # (The hosted APIs' profiles carry their own documented limits.)
        from .models import DEEPSEEK_V2_LITE_RATED, DEEPSEEK_V2_RATED

        window = DEEPSEEK_V2_LITE_RATED if "lite" in model.lower() else DEEPSEEK_V2_RATED
    counting = settings.api_tokenizer or ("deepseek-v2" if deepseek else "estimate")
    margin = int(window * ESTIMATE_MARGIN) if counting == "estimate" else TEMPLATE_SLACK
    key, key_env = api_key(settings, environ)
    return (
        RemoteTarget(
            profile=settings.backend,
            base_url=settings.base_url.rstrip("/"),
            api_model=model,
            window=window,
            budget_window=window - margin,
            counting=counting,
            key_env=key_env,
            price_input=settings.price_input,
            price_output=settings.price_output,
        ),
        key,
    )


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
    """Content that matches a secret pattern, in documents and in other text sent (e.g. the question)."""
    hits: list[SecretHit] = []
    for doc in docs:
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
        "remove them, or pass --allow-secrets to send them anyway"
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
