"""The model a command talks to: a local GGUF, a shipped tokenizer, or a remote endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import Env


@dataclass
class Routing:
    """The first backend and, with --escalate-to, the second: opened only when a request escalates."""

    env: Env
    settings: Any
    first: ModelSession
    verbose: bool
    _second: ModelSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.escalate_to)

    def second(self) -> ModelSession:
        if self._second is None:
            from ..settings import with_backend

            escalated = with_backend(self.settings, self.settings.escalate_to, self.env.environ)
            self._second = open_session(self.env, escalated, self.verbose)
        return self._second

    def choose(self, reason: str | None, otherwise: str) -> tuple[ModelSession, dict[str, Any]]:
        """(session, the "answered_by" of --json): the second backend when there is a reason to escalate."""
        if not self.enabled:
            return self.first, {"backend": self.settings.backend, "escalated": False, "reason": None}
        if reason is None:
            return self.first, {"backend": self.settings.backend, "escalated": False, "reason": otherwise}
        self.env.note(f"escalating to {self.settings.escalate_to}: {reason}")
        return self.second(), {"backend": self.settings.escalate_to, "escalated": True, "reason": reason}


@dataclass
class ModelSession:
    backend: Any  # LlamaCppBackend or OpenAIBackend
    facts: Any  # chat.ModelFacts
    window: int  # what the planners may fill (a remote window less the counting margin)
    path: Path | None  # the GGUF (None: a remote backend)
    memory: Any = None  # memory.ContextChoice: the estimate behind the window (None: --tokenizer, remote)
    remote: Any = None  # remote.RemoteTarget for a remote backend
    counter: Any = None  # the vocabulary alone: a remote backend's counting tokenizer, or a local GGUF's

    def vocab_tokenizer(self, verbose: bool) -> Any:
        """The tokenizer alone (no weights): for --dry-run and planning. Loaded once."""
        from ..tokens import Tokenizer

        if self.counter is None:
            assert self.path is not None
            self.counter = Tokenizer.load(self.path, verbose=verbose)
        return self.counter

    def tokenizer(self, verbose: bool, dry_run: bool = False) -> Any:
        """The tokenizer to build prompts with: a local run loads the weights (and uses their vocabulary)."""
        if dry_run or self.remote is not None:
            return self.vocab_tokenizer(verbose)
        return self.backend.tokenizer

    @property
    def model_path(self) -> str | None:
        return str(self.path) if self.path is not None else None

    def describe(self) -> dict[str, Any]:
        """The "backend" field of --json: where requests go."""
        if self.remote is not None:
            return dict(self.remote.describe())
        return {"backend": "local", "model_path": self.model_path}

    def cost(self, prompt_tokens: int, output_tokens: int) -> float | None:
        return self.remote.cost(prompt_tokens, output_tokens) if self.remote is not None else None

    def notices(self) -> list[str]:
        found = list(getattr(self.backend, "notices", []))
        if hasattr(self.backend, "notices"):
            self.backend.notices.clear()
        return found

    @property
    def load_s(self) -> float:
        return float(getattr(self.backend, "load_s", 0.0))


def open_session(env: Env, settings: Any, verbose: bool, announce: bool = True, no_cache: bool = False) -> ModelSession:
    """Resolve the model, read its header, prepare (not yet load) the engine."""
    from ..chat import ModelFacts
    from ..engines.llamacpp import LlamaCppBackend, LlamaCppOptions
    from ..errors import ModelError
    from ..ggufmeta import read_gguf
    from ..models import default_context, embedded_notice, resolve_model

    if settings.remote:
        return remote_session(env, settings, announce)
    if settings.tokenizer != "model":
        return tokenizer_session(settings)
    from ..memory import plan_context
    from ..models import gpu_offload_supported

    resolved = resolve_model(settings)
    if resolved.embedded and announce:
        env.note(embedded_notice(settings))
    info = read_gguf(resolved.path)
    # The rated/trained context (or --ctx), checked against free memory before anything loads:
    # a window that cannot fit is shrunk (and said so) or, when asked for with --ctx, refused on load.
    choice = plan_context(info, settings, default_context(info), gpu_offload_supported())
    if choice.notice and announce:
        env.note(choice.notice)
    window = choice.n_ctx
    name = info.name or resolved.path.stem
    options = LlamaCppOptions(
        model_path=resolved.path,
        n_ctx=window,
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
    )
    return ModelSession(
        LlamaCppBackend(options, name),
        ModelFacts(name, info.architecture, info.chat_template),
        window,
        resolved.path,
        choice,
    )


def remote_session(env: Env, settings: Any, announce: bool = True) -> ModelSession:
    """An OpenAI-compatible endpoint: counted with the DeepSeek vocabulary or an estimate (remote.py)."""
    from .. import remote
    from ..chat import ModelFacts
    from ..engines.openai import OpenAIBackend, RemoteConfig

    target, key = remote.target(settings, env.environ)
    if key is None and target.leaves_machine and announce:
        names = " or ".join(n for n in (settings.api_key_env, "DSV2_API_KEY") if n)
        env.note(f"no API key for {target.base_url} (none in {names}); the server may refuse the request")
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
    backend = OpenAIBackend(config, count=counter.count, on_retry=env.note)
    return ModelSession(
        backend, ModelFacts(name, architecture, template), target.budget_window, None, remote=target, counter=counter
    )


def guard_outgoing(
    env: Env,
    session: ModelSession,
    docs: Any,
    prompt_tokens: int,
    calls: int,
    *,
    allow_secrets: bool,
    yes: bool,
    extra: dict[str, str] | None = None,
) -> None:
    """Before text leaves the machine: refuse secrets, say what is sent, and ask (unless --yes)."""
    from .. import remote

    target = session.remote
    if target is None:
        return
    if not allow_secrets:
        remote.refuse_secrets(remote.find_secret_hits(docs, extra), target)
    env.note(remote.outgoing_line(target, docs, prompt_tokens, calls))
    if not target.leaves_machine or yes:
        return
    _confirm(env, f"send this to {target.base_url}?", target.base_url)


def _confirm(env: Env, question: str, where: str) -> None:
    """A "y" on the terminal, or RefusedError (also when there is no terminal to ask on)."""
    from ..errors import RefusedError

    reply = env.confirm(f"{question} [y/N] ")
    if reply is None:
        raise RefusedError(
            f"not sending to {where} without confirmation, and there is no terminal to ask on: "
            "pass --yes to send from a script"
        )
    if not reply:
        raise RefusedError("not sent: you answered no")


def confirm_batch(env: Env, settings: Any, paths: list[str], yes: bool) -> None:
    """One question before a batch goes to a remote backend off this machine; each input's own
    line (tokens, secrets refused) follows as it is sent."""
    from .. import remote

    if not settings.remote or yes:
        return
    target, _ = remote.target(settings, env.environ)
    if not target.leaves_machine:
        return
    listed = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    _confirm(env, f"send {len(paths)} input(s) [{listed}] to {target.base_url}?", target.base_url)


def tokenizer_session(settings: Any) -> ModelSession:
    """``--tokenizer deepseek-v2``: plan for DeepSeek-V2 (its exact chat format and 128k window) with the
    shipped vocabulary; there are no weights, so a real run is refused."""
    from ..chat import ModelFacts
    from ..engines.llamacpp import LlamaCppBackend, LlamaCppOptions
    from ..errors import UsageError
    from ..models import DEEPSEEK_V2_RATED
    from ..tokens import named_tokenizer_path

    path = named_tokenizer_path(settings.tokenizer)
    window = settings.ctx or DEEPSEEK_V2_RATED
    refuse = UsageError(
        f"--tokenizer {settings.tokenizer} counts tokens without weights: use it with --dry-run, "
        "dsv2 plan or dsv2 pack --json; a real run uses the model's own tokenizer"
    )
    options = LlamaCppOptions(model_path=path, n_ctx=window, refuse=refuse)
    return ModelSession(
        LlamaCppBackend(options, "DeepSeek-V2"), ModelFacts("DeepSeek-V2", "deepseek2", None), window, path
    )


def prefix_cache_store(settings: Any) -> Any:
    from ..engines.prefix_cache import PrefixCache

    return PrefixCache(settings.home / "cache" / "prefix", settings.cache_size_bytes)


def count_cache(env: Env, settings: Any, session: ModelSession | None = None) -> tuple[Any, Any]:
    """The model's tokenizer (vocabulary only, loaded on the first miss) behind the persistent
    token-count cache, and the resolved model (None when ``session`` already resolved it).

    With an open ``session`` its own tokenizer is used: a remote backend's counting tokenizer
    (the DeepSeek vocabulary, or the estimate), or the local GGUF's vocabulary.
    """
    from ..models import ResolvedModel, resolve_model
    from ..tokens import CountCache, EstimateTokenizer, Tokenizer, named_tokenizer_path, tokenizer_key

    path = settings.home / "cache" / "token-counts.sqlite"
    if session is not None and session.remote is not None:
        counting = session.remote.counting
        key = "tiktoken:" + EstimateTokenizer.ENCODING if counting == "estimate" else counting
        vocab = None
        if counting != "estimate":
            vocab = named_tokenizer_path(counting)
            key = tokenizer_key(vocab)
        return CountCache(session.counter, path, key, vocab), None
    if session is not None and session.path is not None:
        vocab_tokenizer = session.vocab_tokenizer
        return CountCache(lambda: vocab_tokenizer(False), path, tokenizer_key(session.path), session.path), None
    if settings.tokenizer != "model":
        resolved = ResolvedModel(named_tokenizer_path(settings.tokenizer), f"--tokenizer {settings.tokenizer}")
    else:
        resolved = resolve_model(settings)
    cache = CountCache(lambda: Tokenizer.load(resolved.path), path, tokenizer_key(resolved.path), resolved.path)
    return cache, resolved
