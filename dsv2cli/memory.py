"""Memory planning before a model is loaded: weights + KV cache + compute buffers vs free RAM/VRAM.

All of it is arithmetic on the GGUF header (``ggufmeta.GGUFInfo``), so ``dsv2 plan`` and
``dsv2 models`` can show it without the weights, and a run can pick the largest context that
fits (or refuse with a message that says what to do) before llama.cpp allocates anything.

KV cache per token, as llama.cpp allocates it (llama.cpp PRs #12801, #19067; the KV cache size llama.cpp
reports for the tiny deepseek2 GGUFs of tests/deepseek2.py matches this arithmetic exactly):
- DeepSeek-V2 in the MLA format (metadata has ``key_length_mla``): one latent K of
  ``kv_lora + rope`` per layer and no separate V: 27 x 576 x 2 B = 31 KB/token (Lite), 69 KB (V2);
- DeepSeek-V2 converted before the MLA format, and every other model: K and V for each KV head:
  ~276 KB/token (Lite), ~4.9 MB (V2: ~600 GiB at 128k).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import kvcache
from .errors import UsageError
from .ggufmeta import ArrayInfo, GGUFInfo
from .kvcache import CACHE_TYPES

GIB = 1024**3
MIB = 1024**2

MIN_CONTEXT = 2048  # below this, shrinking to fit is no help: refuse instead
CONTEXT_STEP = 256  # llama.cpp pads n_ctx to a multiple of 256
N_UBATCH = 512  # dsv2's n_batch = n_ubatch (engines/llamacpp.py)


def _int(value: object) -> int | None:
    if value is None or isinstance(value, ArrayInfo):  # per-layer arrays: contents not read
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(str(value))  # llama_cpp.Llama.metadata gives strings
    except ValueError:
        return None


@dataclass(frozen=True)
class KvLayout:
    """What the KV cache holds per token and layer, in elements."""

    format: str  # "mla" (DeepSeek-V2, K only), "legacy-deepseek2" (pre-MLA file) or "standard"
    n_layer: int
    k_head: int  # K elements per head (a quantized cache type must divide it)
    v_head: int  # V elements per head (0: no V cache)
    n_head_kv: int

    def bytes_per_token(self, type_k: str = "f16", type_v: str = "f16") -> int:
        return self.n_layer * self.bytes_per_layer_token(type_k, type_v)

    def bytes_per_layer_token(self, type_k: str = "f16", type_v: str = "f16") -> int:
        return _cache_bytes(self.n_head_kv * self.k_head, type_k) + _cache_bytes(self.n_head_kv * self.v_head, type_v)


def _cache_bytes(elements: int, cache_type: str) -> int:
    block, block_bytes = CACHE_TYPES[cache_type]
    return -(-elements // block) * block_bytes


def kv_layout(info: GGUFInfo) -> KvLayout | None:
    """The model's KV layout from its metadata; None when the header does not say enough."""
    n_layer = info.block_count
    n_embd = _int(info.arch_value("embedding_length"))
    n_head = _int(info.arch_value("attention.head_count"))
    if not n_layer or not n_embd or not n_head:
        return None
    n_head_kv = _int(info.arch_value("attention.head_count_kv")) or n_head
    k_head = _int(info.arch_value("attention.key_length")) or n_embd // n_head
    v_head = _int(info.arch_value("attention.value_length")) or n_embd // n_head
    if info.architecture == "deepseek2":
        if is_mla(info):  # V is a view of the latent K: no V cache
            return KvLayout("mla", n_layer, k_head, 0, 1)
        return KvLayout("legacy-deepseek2", n_layer, k_head, v_head, n_head_kv)
    return KvLayout("standard", n_layer, k_head, v_head, n_head_kv)


def is_mla(info: GGUFInfo) -> bool:
    """A DeepSeek-V2 GGUF in llama.cpp's MLA format (converted since April 2025)."""
    return info.architecture == "deepseek2" and _int(info.arch_value("attention.key_length_mla")) is not None


def check_cache_types(layout: KvLayout | None, type_k: str, type_v: str, flash_attn: bool | None) -> None:
    """UsageError for a cache-type combination llama.cpp would reject or crash on: the rules of
    ``kvcache``, then block sizes that must divide this model's head sizes."""
    kvcache.check_cache_types(type_k, type_v, flash_attn)
    if layout is None:
        return
    for flag, name, head in (("--cache-type-k", type_k, layout.k_head), ("--cache-type-v", type_v, layout.v_head)):
        block = CACHE_TYPES[name][0]
        if head and head % block:
            raise UsageError(
                f"{flag} {name}: its {block}-element blocks do not divide this model's head size {head}; "
                "use f16" + (" (MLA K heads are kv_lora + rope)" if layout.format == "mla" else "")
            )


# --- the estimate ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryEstimate:
    n_ctx: int
    weights_bytes: int
    kv_bytes: int
    kv_bytes_per_token: int
    compute_bytes: int
    kv_format: str
    gpu_layers: int  # layers offloaded (resolved)
    ram_bytes: int  # needed in system memory
    vram_bytes: int  # needed on the GPU(s)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "n_ctx": self.n_ctx,
            "weights_bytes": self.weights_bytes,
            "kv_cache_bytes": self.kv_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_format": self.kv_format,
            "compute_bytes": self.compute_bytes,
            "total_bytes": self.total_bytes,
            "gpu_layers": self.gpu_layers,
            "ram_bytes": self.ram_bytes,
            "vram_bytes": self.vram_bytes,
        }


@dataclass(frozen=True)
class Request:
    """The runtime choices that change memory use."""

    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: bool = True
    gpu_layers: int = 0  # -1: all
    n_ubatch: int = N_UBATCH


def estimate(info: GGUFInfo, n_ctx: int, request: Request, weights_bytes: int | None = None) -> MemoryEstimate:
    """Memory for ``info`` at ``n_ctx`` tokens. Weights: the file size (mmap'd, so what is read is what is used)."""
    weights = info.file_size if weights_bytes is None else weights_bytes
    layout = kv_layout(info)
    per_token = layout.bytes_per_token(request.type_k, request.type_v) if layout else 0
    cells = -(-n_ctx // CONTEXT_STEP) * CONTEXT_STEP
    kv = per_token * cells
    compute = compute_bytes(info, cells, request)
    n_layer = info.block_count or 1
    offloaded = n_layer + 1 if request.gpu_layers < 0 else min(request.gpu_layers, n_layer + 1)
    share = min(offloaded, n_layer) / n_layer  # of the repeating layers (weights and KV)
    gpu_weights = weights if offloaded > n_layer else int(weights * share)
    gpu_kv = int(kv * share)
    vram = gpu_weights + gpu_kv + (compute if offloaded else 0)
    ram = (weights - gpu_weights) + (kv - gpu_kv) + (0 if offloaded else compute)
    return MemoryEstimate(
        n_ctx, weights, kv, per_token, compute, layout.format if layout else "unknown", offloaded, ram, vram
    )


def compute_bytes(info: GGUFInfo, n_ctx: int, request: Request) -> int:
    """llama.cpp's compute buffer, roughly: the larger of the logits and (without flash attention)
    the attention scores, plus activations. Within ~10% of llama.cpp's report for SmolLM2 and the
    tiny deepseek2 fixtures."""
    n_vocab = info.vocab_size or _int(info.arch_value("vocab_size")) or 32000
    n_embd = _int(info.arch_value("embedding_length")) or 4096
    n_ff = _int(info.arch_value("feed_forward_length")) or 4 * n_embd
    n_head = _int(info.arch_value("attention.head_count")) or 32
    ub = request.n_ubatch
    logits = n_vocab * ub * 4
    scores = 0 if request.flash_attn else n_ctx * ub * n_head * 4
    activations = ub * max(n_embd, n_ff) * 4 * 4
    return max(logits, scores) + activations


# --- what is free ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    ram_available: int | None  # bytes; None: unknown (no /proc/meminfo)
    vram_free: int | None  # bytes over all GPUs; None: unknown or no GPU
    gpus: int = 0

    @classmethod
    def detect(cls, want_gpu: bool) -> Resources:
        vram, gpus = _nvidia_free() if want_gpu else (None, 0)
        return cls(_meminfo_available(), vram, gpus)


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _nvidia_free() -> tuple[int | None, int]:
    """Free memory summed over NVIDIA GPUs (llama.cpp has no VRAM query); (None, 0) without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, 0
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        values = [int(v) * MIB for v in out.split() if v.strip().isdigit()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None, 0
    return (sum(values), len(values)) if values else (None, 0)


# --- choosing the context --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextChoice:
    n_ctx: int
    estimate: MemoryEstimate
    fits: bool | None  # None: free memory unknown
    resources: Resources = Resources(None, None)
    notice: str | None = None  # a context smaller than preferred was chosen
    problem: str | None = None  # why it does not fit (set when fits is False)

    def to_dict(self) -> dict[str, object]:
        return {
            **self.estimate.to_dict(),
            "ram_available_bytes": self.resources.ram_available,
            "vram_free_bytes": self.resources.vram_free,
            "fits": self.fits,
        }


def fits(est: MemoryEstimate, resources: Resources) -> bool | None:
    known = False
    if resources.ram_available is not None:
        known = True
        if est.ram_bytes > resources.ram_available:
            return False
    if est.vram_bytes and resources.vram_free is not None:
        known = True
        if est.vram_bytes > resources.vram_free:
            return False
    return True if known else None


def choose_context(
    info: GGUFInfo,
    requested: int | None,
    preferred: int,
    request: Request,
    resources: Resources,
    weights_bytes: int | None = None,
) -> ContextChoice:
    """``requested`` (--ctx) is kept or refused; otherwise ``preferred``, shrunk to the largest that fits."""
    at: Callable[[int], MemoryEstimate] = lambda n: estimate(info, n, request, weights_bytes)  # noqa: E731
    target = requested or preferred
    est = at(target)
    ok = fits(est, resources)
    if ok is not False:
        return ContextChoice(target, est, ok, resources)
    best = None
    if requested is None:
        lo, hi = MIN_CONTEXT // CONTEXT_STEP, target // CONTEXT_STEP  # search in 256-token steps
        while lo <= hi:
            mid = (lo + hi) // 2
            if fits(at(mid * CONTEXT_STEP), resources):
                best, lo = mid * CONTEXT_STEP, mid + 1
            else:
                hi = mid - 1
    if best is not None:
        notice = (
            f"{describe(est, resources)}; using a {best:,}-token window instead of {target:,} "
            f"(pass --ctx to choose, or --gpu-layers / --cache-type-k q8_0 to fit more)"
        )
        return ContextChoice(best, at(best), True, resources, notice=notice)
    problem = refusal(info, est, resources, requested is not None, at)
    return ContextChoice(target, est, False, resources, problem=problem)


class MemoryChoices(Protocol):
    """The settings that change memory use, by the names ``settings.Settings`` gives them (it is one):
    memory needs these values, not the settings object or its module."""

    @property
    def ctx(self) -> int | None: ...
    @property
    def cache_type_k(self) -> str: ...
    @property
    def cache_type_v(self) -> str: ...
    @property
    def flash_attn(self) -> bool | None: ...
    @property
    def gpu_layers(self) -> int | None: ...


def request_for(choices: MemoryChoices, gpu_build: bool) -> Request:
    """The memory-relevant choices (gpu_layers None: all when the build can offload; flash_attn None: on)."""
    gpu_layers = choices.gpu_layers if choices.gpu_layers is not None else (-1 if gpu_build else 0)
    return Request(choices.cache_type_k, choices.cache_type_v, choices.flash_attn is not False, gpu_layers)


def plan_context(
    info: GGUFInfo, choices: MemoryChoices, preferred: int, gpu_build: bool, resources: Resources | None = None
) -> ContextChoice:
    """Check the cache types against the model, then pick the context (``choices.ctx`` or ``preferred``)."""
    request = request_for(choices, gpu_build)
    check_cache_types(kv_layout(info), choices.cache_type_k, choices.cache_type_v, choices.flash_attn)
    if resources is None:
        resources = Resources.detect(want_gpu=gpu_build and request.gpu_layers != 0)
    return choose_context(info, choices.ctx, preferred, request, resources)


def describe(est: MemoryEstimate, resources: Resources) -> str:
    parts = [
        f"a {est.n_ctx:,}-token window needs {gib(est.weights_bytes)} of weights + {gib(est.kv_bytes)} of KV cache "
        f"({est.kv_bytes_per_token / 1000:,.1f} KB/token) + {gib(est.compute_bytes)} of compute buffers"
    ]
    if resources.ram_available is not None:
        parts.append(f"{gib(est.ram_bytes)} in RAM ({gib(resources.ram_available)} available)")
    if est.vram_bytes:
        free = gib(resources.vram_free) + " free" if resources.vram_free is not None else "free VRAM unknown"
        parts.append(f"{gib(est.vram_bytes)} on the GPU ({free})")
    return "; ".join(parts)


def refusal(
    info: GGUFInfo, est: MemoryEstimate, resources: Resources, explicit: bool, at: Callable[[int], MemoryEstimate]
) -> str:
    message = f"{info.path.name}: {describe(est, resources)}"
    if est.kv_format == "legacy-deepseek2":
        message += (
            ". This DeepSeek-V2 GGUF predates llama.cpp's MLA format (no key_length_mla in its metadata), so its KV "
            "cache is ~9x (V2-Lite) to ~71x (V2) larger: reconvert it with a current llama.cpp "
            "(convert_hf_to_gguf.py), or lower --ctx"
        )
    elif est.weights_bytes > (resources.ram_available or 0) + (resources.vram_free or 0):
        message += ". The weights alone do not fit: use a smaller quantization, or offload with a GPU build"
    else:
        message += ". Lower --ctx, offload layers with --gpu-layers, or use --cache-type-k q8_0"
    smallest = at(MIN_CONTEXT)
    if explicit and fits(smallest, resources):
        message += f" (a {MIN_CONTEXT:,}-token window would fit)"
    return message


def gib(n: int | None) -> str:
    if n is None:
        return "unknown"
    return f"{n / GIB:,.1f} GiB" if n >= GIB / 10 else f"{n / MIB:,.1f} MiB"
