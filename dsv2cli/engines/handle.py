"""One model handle: what a task needs to know about the model, its tokenizer and its backend.

:func:`open_model` resolves the settings to a local GGUF (header read, memory planned, weights
loaded on first use), a remote OpenAI-compatible endpoint, or a shipped tokenizer alone
(``--tokenizer deepseek-v2``: a count-only handle, without a backend). Nothing here prints or
asks: what a person should know goes to ``notify``, a question to ``confirm``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat import ModelFacts
from ..errors import Dsv2Error, RefusedError, UsageError
from ..settings import Settings
from ..sources.base import Document
from ..tokens import Tokenizer
from .base import Backend

if TYPE_CHECKING:
    from ..memory import ContextChoice
    from ..models import ResolvedModel
    from ..remote import RemoteTarget
    from ..tokens import CountCache

Notify = Callable[[str], None]
# Ask a person (on the terminal): True / False, or None when there is nobody to ask.
Confirm = Callable[[str], "bool | None"]


def _quiet(_message: str) -> None:
    pass


@dataclass
class ModelHandle:
    """The model one request goes to."""

    facts: ModelFacts
    window: int  # what the planners may fill (a remote window less the counting margin)
    path: Path | None  # the GGUF or shipped vocabulary (None: a remote backend)
    backend: Backend | None  # None: a count-only handle (a shipped tokenizer, no weights)
    memory: ContextChoice | None = None  # the estimate behind a local window
    remote: RemoteTarget | None = None  # a remote backend's endpoint, prices and counting
    counter: Tokenizer | None = None  # the vocabulary alone: a remote backend's, or a local GGUF's
    refusal: Dsv2Error | None = None  # why a count-only handle cannot run
    verbose: bool = False
    profile: str = "local"  # the backend or profile requests go to ("answered_by" in --json)

    def runner(self) -> Backend:
        """The backend, or the reason this handle only counts."""
        if self.backend is None:
            raise self.refusal or UsageError("this model handle only counts tokens")
        return self.backend

    def vocab_tokenizer(self) -> Tokenizer:
        """The tokenizer alone (no weights): for --dry-run and planning. Loaded once."""
        if self.counter is None:
            assert self.path is not None
            self.counter = Tokenizer.load(self.path, verbose=self.verbose)
        return self.counter

    def tokenizer(self, dry_run: bool = False) -> Tokenizer:
        """The tokenizer to build prompts with: a local run loads the weights (and uses their vocabulary)."""
        if dry_run or self.remote is not None or self.backend is None:
            return self.vocab_tokenizer()
        return self.backend.tokenizer

    @property
    def name(self) -> str:
        return self.backend.capabilities.name if self.backend is not None else self.facts.name

    @property
    def model_path(self) -> str | None:
        return str(self.path) if self.path is not None else None

    def describe(self) -> dict[str, Any]:
        """The "backend" field of --json: where requests go."""
        if self.remote is not None:
            return dict(self.remote.describe())
        return {"backend": "local", "model_path": self.model_path}

    def cost(self, prompt_tokens: int, output_tokens: int, cache_hit_tokens: int = 0) -> float | None:
        """USD for these token counts on a priced remote backend (``cache_hit_tokens`` of the prompt
        at the cache-hit price); None locally."""
        if self.remote is None:
            return None
        return self.remote.cost(prompt_tokens, output_tokens, cache_hit_tokens)

    def notices(self) -> list[str]:
        """What the backend has to say since last asked (cache notices, retries), once each."""
        if self.backend is None:
            return []
        found = list(self.backend.notices)
        self.backend.notices.clear()
        return found

    @property
    def load_s(self) -> float:
        return self.backend.load_s if self.backend is not None else 0.0

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


def open_model(
    settings: Settings,
    environ: Mapping[str, str],
    notify: Notify = _quiet,
    *,
    verbose: bool = False,
    announce: bool = True,
    no_cache: bool = False,
) -> ModelHandle:
    """Resolve the model, read its header, prepare (not yet load) the engine."""
    if settings.remote:
        return _remote(settings, environ, notify if announce else _quiet, verbose)
    if settings.tokenizer != "model":
        return _count_only(settings, verbose)
    from ..ggufmeta import read_gguf
    from ..memory import plan_context
    from ..models import default_context, embedded_notice, gpu_offload_supported, resolve_model
    from .llamacpp import LlamaCppBackend, LlamaCppOptions

    resolved = resolve_model(settings)
    if resolved.embedded and announce:
        notify(embedded_notice(settings))
    info = read_gguf(resolved.path)
    # The rated/trained context (or --ctx), checked against free memory before anything loads:
    # a window that cannot fit is shrunk (and said so) or, when asked for with --ctx, refused on load.
    choice = plan_context(info, settings, default_context(info), gpu_offload_supported())
    if choice.notice and announce:
        notify(choice.notice)
    from ..errors import ModelError

    name = info.name or resolved.path.stem
    options = LlamaCppOptions(
        model_path=resolved.path,
        n_ctx=choice.n_ctx,
        gpu_layers=settings.gpu_layers,
        threads=settings.threads,
        flash_attn=settings.flash_attn,
        type_k=settings.cache_type_k,
        type_v=settings.cache_type_v,
        split_mode=settings.split_mode,
        tensor_split=settings.tensor_split,
        refuse=ModelError(choice.problem) if choice.problem else None,
        verbose=verbose,
        prefix_cache=None if no_cache else prefix_cache_store(settings),
        on_load=notify,
    )
    return ModelHandle(
        ModelFacts(name, info.architecture, info.chat_template),
        choice.n_ctx,
        resolved.path,
        LlamaCppBackend(options, name),
        memory=choice,
        verbose=verbose,
    )


def _remote(settings: Settings, environ: Mapping[str, str], notify: Notify, verbose: bool) -> ModelHandle:
    """An OpenAI-compatible endpoint: counted with the DeepSeek vocabulary or an estimate (remote.py)."""
    from .. import remote
    from .openai import OpenAIBackend, RemoteConfig

    target, key = remote.target(settings, environ)
    if settings.ctx is None:  # asked of the server (or its rated context): say which, and how to override
        notify(
            f"window of {target.api_model!r}: {target.window:,} tokens, from {target.window_source} (--ctx N overrides)"
        )
    if key is None and target.leaves_machine:
        names = " or ".join(n for n in (settings.api_key_env, "DSV2_API_KEY") if n)
        notify(f"no API key for {target.base_url} (none in {names}); the server may refuse the request")
    counter = remote.counting_tokenizer(target.counting)
    name, architecture, template = remote.chat_facts(target.counting, target.api_model)
    config = RemoteConfig(
        base_url=target.base_url,
        api_model=target.api_model,
        api_key=key,
        window=target.window,
        timeout_s=settings.timeout,
        max_retries=settings.retries,
        json_mode=settings.json_mode,
        name=target.profile,
    )
    backend = OpenAIBackend(config, tokenizer=counter, on_retry=notify)
    return ModelHandle(
        ModelFacts(name, architecture, template),
        target.budget_window,
        None,
        backend,
        remote=target,
        counter=counter,
        verbose=verbose,
        profile=settings.backend,
    )


def _count_only(settings: Settings, verbose: bool) -> ModelHandle:
    """``--tokenizer deepseek-v2``: plan for DeepSeek-V2 (its exact chat format and 128k window) with the
    shipped vocabulary; there are no weights, so a real run is refused."""
    from ..models import DEEPSEEK_V2_RATED
    from ..tokens import named_tokenizer_path

    refusal = UsageError(
        f"--tokenizer {settings.tokenizer} counts tokens without weights: use it with --dry-run, "
        "dsv2 plan or dsv2 pack --json; a real run uses the model's own tokenizer"
    )
    return ModelHandle(
        ModelFacts("DeepSeek-V2", "deepseek2", None),
        settings.ctx or DEEPSEEK_V2_RATED,
        named_tokenizer_path(settings.tokenizer),
        None,
        refusal=refusal,
        verbose=verbose,
    )


def prefix_cache_store(settings: Settings) -> Any:
    from .prefix_cache import PrefixCache

    return PrefixCache(settings.home / "cache" / "prefix", settings.cache_size_bytes)


def count_cache(settings: Settings, handle: ModelHandle | None = None) -> tuple[CountCache, ResolvedModel | None]:
    """The model's tokenizer (vocabulary only, loaded on the first miss) behind the persistent
    token-count cache, and the resolved model (None when ``handle`` already resolved it).

    With an open ``handle`` its own tokenizer is used: a remote backend's counting tokenizer
    (the DeepSeek vocabulary, or the estimate), or the local GGUF's vocabulary.
    """
    from ..models import ResolvedModel, resolve_model
    from ..tokens import CountCache, EstimateTokenizer, named_tokenizer_path, tokenizer_key

    path = settings.home / "cache" / "token-counts.sqlite"
    if handle is not None and handle.remote is not None:
        counting = handle.remote.counting
        key = "tiktoken:" + EstimateTokenizer.ENCODING if counting == "estimate" else counting
        vocab = None
        if counting != "estimate":
            vocab = named_tokenizer_path(counting)
            key = tokenizer_key(vocab)
        return CountCache(handle.vocab_tokenizer(), path, key, vocab), None
    if handle is not None and handle.path is not None:
        return CountCache(handle.vocab_tokenizer, path, tokenizer_key(handle.path), handle.path), None
    if settings.tokenizer != "model":
        resolved = ResolvedModel(named_tokenizer_path(settings.tokenizer), f"--tokenizer {settings.tokenizer}")
    else:
        resolved = resolve_model(settings)
    cache = CountCache(lambda: Tokenizer.load(resolved.path), path, tokenizer_key(resolved.path), resolved.path)
    return cache, resolved


@dataclass
class Routing:
    """The first backend and, with --escalate-to, the second: opened only when a request escalates."""

    settings: Settings
    first: ModelHandle
    environ: Mapping[str, str]
    notify: Notify = _quiet
    verbose: bool = False
    _second: ModelHandle | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.escalate_to)

    def second(self) -> ModelHandle:
        if self._second is None:
            from ..settings import with_backend

            assert self.settings.escalate_to is not None
            escalated = with_backend(self.settings, self.settings.escalate_to, self.environ)
            self._second = open_model(escalated, self.environ, self.notify, verbose=self.verbose)
        return self._second

    def choose(self, reason: str | None, otherwise: str) -> tuple[ModelHandle, dict[str, Any]]:
        """(handle, the "answered_by" of --json): the second backend when there is a reason to escalate."""
        if not self.enabled:
            return self.first, {"backend": self.settings.backend, "escalated": False, "reason": None}
        if reason is None:
            return self.first, {"backend": self.settings.backend, "escalated": False, "reason": otherwise}
        self.notify(f"escalating to {self.settings.escalate_to}: {reason}")
        return self.second(), {"backend": self.settings.escalate_to, "escalated": True, "reason": reason}

    def handles(self) -> list[ModelHandle]:
        return [self.first] + ([self._second] if self._second is not None else [])


@dataclass(frozen=True)
class SendPolicy:
    """What may leave the machine, and who is asked: --allow-secrets, --yes, and the terminal."""

    allow_secrets: bool = False
    yes: bool = False
    confirm: Confirm | None = None  # None: nobody to ask (a script): refuse unless yes


def refuse_secrets_early(
    settings: Settings,
    environ: Mapping[str, str],
    docs: Sequence[Document],
    policy: SendPolicy,
    *,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Refuse (exit 7) before a remote backend is opened, when secrets were found in ``docs`` or
    ``extra``: opening one may already connect (to ask the server for its window), and nothing at
    all should reach a server that would be refused the content. ``guard_outgoing`` checks again
    just before sending, with the same rules."""
    if not settings.remote or policy.allow_secrets:
        return
    from .. import remote

    hits = remote.find_secret_hits(docs, extra)
    if hits:
        remote.refuse_secrets(hits, remote.target(settings, environ, discover=False)[0])


def guard_outgoing(
    handle: ModelHandle,
    docs: Sequence[Document],
    prompt_tokens: int,
    calls: int,
    policy: SendPolicy,
    notify: Notify,
    *,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Before text leaves the machine: refuse secrets, say what is sent, and ask (unless --yes)."""
    from .. import remote

    target = handle.remote
    if target is None:
        return
    if not policy.allow_secrets:
        remote.refuse_secrets(remote.find_secret_hits(docs, extra), target)
    notify(remote.outgoing_line(target, docs, prompt_tokens, calls))
    if not target.leaves_machine or policy.yes:
        return
    _confirm(policy, f"send this to {target.base_url}?", target.base_url)


def confirm_batch(settings: Settings, environ: Mapping[str, str], paths: Sequence[str], policy: SendPolicy) -> None:
    """One question before a batch goes to a remote backend off this machine; each input's own
    line (tokens, secrets refused) follows as it is sent."""
    from .. import remote

    if not settings.remote or policy.yes:
        return
    target, _ = remote.target(settings, environ, discover=False)
    if not target.leaves_machine:
        return
    listed = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    _confirm(policy, f"send {len(paths)} input(s) [{listed}] to {target.base_url}?", target.base_url)


def _confirm(policy: SendPolicy, question: str, where: str) -> None:
    """A "y" from the person, or RefusedError (also when there is nobody to ask)."""
    reply = policy.confirm(f"{question} [y/N] ") if policy.confirm is not None else None
    if reply is None:
        raise RefusedError(
            f"not sending to {where} without confirmation, and there is no terminal to ask on: "
            "pass --yes to send from a script"
        )
    if not reply:
        raise RefusedError("not sent: you answered no")
