"""Local engine: llama-cpp-python in-process. ``llama_cpp`` is imported on first use only."""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import llama
from ..chat import ChatPrompt
from ..errors import ContextOverflowError, Dsv2Error, ModelError, UsageError
from ..kvcache import check_cache_types
from ..parallel import default_threads
from ..tokens import Tokenizer, tokenizer_key
from .base import Capabilities, GenerationParams, PromptProgress, Usage
from .prefix_cache import MIN_PREFIX_TOKENS, PrefixCache

if TYPE_CHECKING:
    from llama_cpp import Llama

# Sampling defaults besides temperature/seed (llama.cpp's CLI defaults).
TOP_K, TOP_P, MIN_P, REPEAT_PENALTY = 40, 0.95, 0.05, 1.1


@dataclass(frozen=True)
class LlamaCppOptions:
    model_path: Path
    n_ctx: int
    gpu_layers: int | None = None  # None: all layers when the build can offload, else 0
    threads: int | None = None  # None: every core
    # None: auto, which resolve_flash_attn turns into on. On this CPU it makes no difference
    # (SmolLM2, 2,000-token prompt, 2 threads, idle machine: 139 tok/s on vs 147 off); it is what
    # llama.cpp's own auto picks on GPUs, and a quantized V cache requires it.
    flash_attn: bool | None = None
    verbose: bool = False
    n_batch: int = 512
    type_k: str = "f16"  # KV cache types: f16 | q8_0 | q4_0 (the rules: kvcache.cache_type_problem)
    type_v: str = "f16"
    split_mode: str | None = None  # none | layer | row; None: llama.cpp's default (layer)
    tensor_split: tuple[float, ...] | None = None  # share of the model per GPU
    refuse: Dsv2Error | None = None  # found before loading (memory planner, --tokenizer): load() raises it
    prefix_cache: PrefixCache | None = None  # None: --no-cache
    # Told when loading weights is expected to take more than a few seconds, and when it is done:
    # files of announce_load_bytes or more (DeepSeek-V2-Lite Q4_K_M is 10.4 GB, V2 132 GB).
    on_load: Callable[[str], None] | None = None
    announce_load_bytes: int = 2 * 1024**3


def resolve_flash_attn(flash_attn: bool | None) -> bool:
    """auto (None) -> on. llama-cpp-python's ``Llama(flash_attn=bool)`` can only ask for on or off
    (it sets ``flash_attn_type`` inside ``__init__``, with no way to pass llama.cpp's AUTO), and
    llama.cpp's CPU and CUDA backends both run flash attention for every head size dsv2 meets,
    DeepSeek-V2's MLA 576/512 included; a quantized V cache needs it."""
    return True if flash_attn is None else flash_attn


def _device_kwargs(opts: LlamaCppOptions) -> dict[str, Any]:
    """Cache types and multi-GPU split as llama_cpp.Llama takes them; UsageError before llama.cpp sees a bad one."""
    types = llama.cache_type_ids()
    modes = llama.split_mode_ids()
    check_cache_types(opts.type_k, opts.type_v, opts.flash_attn)  # kvcache's rules, before llama.cpp sees them
    kwargs: dict[str, Any] = {"type_k": types[opts.type_k], "type_v": types[opts.type_v]}
    if opts.split_mode is not None:
        if opts.split_mode not in modes:
            raise UsageError(f"--split-mode {opts.split_mode}: must be one of {', '.join(modes)}")
        kwargs["split_mode"] = modes[opts.split_mode]
    if opts.tensor_split is not None:
        limit = llama.max_devices()
        if len(opts.tensor_split) > limit:
            raise UsageError(
                f"--tensor-split has {len(opts.tensor_split)} shares; this llama.cpp build "
                f"handles at most {limit} device(s)"
            )
        kwargs["tensor_split"] = list(opts.tensor_split)
    return kwargs


def _grammar(schema: Mapping[str, Any]) -> Any:
    """A llama.cpp grammar that only admits JSON matching ``schema``."""
    import json

    try:
        return llama.json_schema_grammar(json.dumps(schema))
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot turn the JSON schema into a grammar: {exc}") from exc


class LlamaCppBackend:
    """Implements :class:`dsv2cli.engines.Backend` over ``llama_cpp.Llama``."""

    def __init__(self, options: LlamaCppOptions, name: str) -> None:
        self.options = options
        self.name = name
        self._llama: Llama | None = None
        self._tokenizer: Tokenizer | None = None
        self._grammars: dict[str, Any] = {}
        # One llama.cpp context evaluates one prompt at a time: calls from several threads (a
        # batch whose first backend is remote, escalating here) take turns.
        self._lock = threading.RLock()
        self.load_s = 0.0
        self.notices: list[str] = []  # one line each, for the CLI to show

    def load(self) -> Llama:
        with self._lock:
            return self._load()

    def _load(self) -> Llama:
        if self._llama is not None:
            return self._llama
        if self.options.refuse is not None:
            raise self.options.refuse
        opts = self.options
        gpu_layers = llama.default_gpu_layers(opts.gpu_layers)
        threads = opts.threads or default_threads()
        size = opts.model_path.stat().st_size if opts.model_path.exists() else 0
        announce = opts.on_load if opts.on_load is not None and size >= opts.announce_load_bytes else None
        if announce is not None:
            # at about 1 GB/s, a disk read; much faster when the file is already in the page cache
            announce(f"loading {opts.model_path.name}: {size / 1e9:,.1f} GB of weights, about {size / 1e9:,.0f} s")
        started = time.perf_counter()
        try:
            self._llama = llama.load(
                opts.model_path,
                n_ctx=opts.n_ctx,
                n_batch=opts.n_batch,
                n_ubatch=opts.n_batch,
                n_gpu_layers=gpu_layers,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=opts.verbose,
                flash_attn=resolve_flash_attn(opts.flash_attn),
                **_device_kwargs(opts),
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"{opts.model_path}: llama.cpp failed to load the model ({exc})") from exc
        self.load_s = time.perf_counter() - started
        if announce is not None:
            announce(f"loaded {opts.model_path.name} in {self.load_s:,.1f} s")
        return self._llama

    def close(self) -> None:
        """Free the llama.cpp model and context now; a later call loads them again."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
                self._tokenizer = None

    @property
    def tokenizer(self) -> Tokenizer:
        """The loaded model's tokenizer, one instance (its special-token table is built once)."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self.load())
        return self._tokenizer

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name=self.name,
            context_window=self.options.n_ctx,
            streaming=True,
            gpu_offload=llama.supports_gpu_offload(),
        )

    # -- prefix reuse -------------------------------------------------------------------

    def _cache_key(self, prefix_ids: list[int]) -> str:
        opts = self.options
        # these do not change the KV cache
        skip = ("threads", "verbose", "prefix_cache", "model_path", "refuse", "on_load", "announce_load_bytes")
        settings = {f.name: getattr(opts, f.name) for f in fields(opts) if f.name not in skip}
        settings["flash_attn"] = resolve_flash_attn(opts.flash_attn)  # auto and on are the same cache
        identity = tokenizer_key(opts.model_path)
        assert opts.prefix_cache is not None
        return opts.prefix_cache.key(identity, repr(sorted(settings.items())), prefix_ids)

    def _reuse(self, llm: Llama, ids: list[int], prefix: int, usage: Usage) -> int:
        """Tokens of ``ids`` already evaluated (kept in the KV cache); 0 when none.

        In memory, the longest run of ``ids`` the context already holds is kept (a chat turn: the
        documents, the earlier turns and the last answer), when it covers the stable ``prefix``;
        at least the last prompt token is evaluated again (its logits start the answer)."""
        held = list(llm.input_ids[: llm.n_tokens])
        common = 0
        for a, b in zip(held, ids[:-1], strict=False):
            if a != b:
                break
            common += 1
        if common and common >= prefix:
            llama.keep_prefix(llm, common)
            usage.extra["prefix_reused_tokens"] = common
            return common
        llm.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves reset() unannotated
        cache = self.options.prefix_cache
        if cache is None or prefix < MIN_PREFIX_TOKENS:
            return 0
        key = self._cache_key(ids[:prefix])
        path = cache.lookup(key)
        if path is None:
            usage.extra["prefix_cache_misses"] = 1
            return 0
        if llama.load_state(llm, path) != ids[:prefix]:
            cache.discard(key)
            llama.clear_kv_cache(llm)
            self.notices.append(f"discarded a prefix-cache entry that did not load or did not match ({path.name})")
            return 0
        llm.input_ids[:prefix] = ids[:prefix]
        llm.n_tokens = prefix
        usage.extra["prefix_cache_hits"] = 1
        usage.extra["prefix_reused_tokens"] = prefix
        return prefix

    def _save_prefix(self, llm: Llama, prefix_ids: list[int], usage: Usage) -> None:
        cache = self.options.prefix_cache
        if cache is None or len(prefix_ids) < MIN_PREFIX_TOKENS:
            return
        key = self._cache_key(prefix_ids)
        tmp = cache.reserve(key)
        started = time.perf_counter()
        if llama.save_state(llm, tmp, prefix_ids):
            cache.commit(key, tmp)
            usage.extra["prefix_cache_save_s"] = round(time.perf_counter() - started, 4)
        else:  # a full disk, say: the answer does not depend on the cache
            tmp.unlink(missing_ok=True)
            self.notices.append("could not write the prefix cache entry; continuing without it")

    def generate(
        self,
        prompt: ChatPrompt,
        params: GenerationParams,
        usage: Usage,
        on_prompt_progress: PromptProgress | None = None,
    ) -> Iterator[str]:
        with self._lock:
            yield from self._generate(prompt, params, usage, on_prompt_progress)

    def _json_grammar(self, schema: Mapping[str, Any]) -> Any:
        """The grammar of a schema, converted once per backend (extraction sends it with every chunk)."""
        import json

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = _grammar(schema)
        return self._grammars[key]

    def _generate(
        self,
        prompt: ChatPrompt,
        params: GenerationParams,
        usage: Usage,
        on_prompt_progress: PromptProgress | None,
    ) -> Iterator[str]:
        llm = self.load()
        ids = prompt.ids
        n_ctx = llm.n_ctx()
        if len(ids) + params.max_tokens > n_ctx:  # the packer guarantees this; never let llama.cpp see it
            raise ContextOverflowError(
                f"prompt of {len(ids)} tokens + {params.max_tokens} output tokens exceeds the {n_ctx}-token window",
                input_tokens=len(ids),
                window=n_ctx,
                budget=n_ctx - params.max_tokens,
            )
        usage.prompt_tokens = len(ids)

        # Prompt evaluation in slices, so progress can be reported between them. A document prefix
        # already in memory (an earlier question in this process) or in the prefix cache is reused.
        started = time.perf_counter()
        prefix = prompt.cache_prefix if 0 < prompt.cache_prefix < len(ids) else 0
        start = self._reuse(llm, ids, prefix, usage)
        done = start

        def evaluate(chunk: list[int]) -> None:
            nonlocal done
            step = self.options.n_batch
            for i in range(0, len(chunk), step):
                llm.eval(chunk[i : i + step])
                done += len(chunk[i : i + step])
                if on_prompt_progress is not None:
                    on_prompt_progress(done, len(ids))

        if on_prompt_progress is not None and done < len(ids):
            on_prompt_progress(done, len(ids))  # the step starts (after any reused prefix)
        if start < prefix:
            evaluate(ids[start:prefix])
            self._save_prefix(llm, ids[:prefix], usage)
            start = prefix
        evaluate(ids[start:])
        usage.prompt_eval_s = time.perf_counter() - started

        grammar = None
        if params.json_schema is not None:
            grammar = self._json_grammar(params.json_schema)
        # Generation: llm.generate sees the whole prompt already evaluated and samples at once.
        llm.set_seed(params.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        started = time.perf_counter()
        usage.finish_reason = "length"
        try:
            for token in llm.generate(
                ids,
                temp=params.temperature,
                top_k=TOP_K,
                top_p=TOP_P,
                min_p=MIN_P,
                repeat_penalty=REPEAT_PENALTY,
                grammar=grammar,
            ):
                if llama.is_end_of_generation(llm, token):
                    usage.finish_reason = "stop"
                    break
                usage.output_tokens += 1
                text = decoder.decode(llama.token_piece(llm, token))
                if text:
                    yield text
                if usage.output_tokens >= params.max_tokens:
                    break
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            usage.generation_s = time.perf_counter() - started
