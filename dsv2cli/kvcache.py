"""KV cache types and the rules llama.cpp puts on them, written once.

``settings.validate`` (a bad setting, with where it came from), ``memory.check_cache_types``
(before the memory estimate) and the llama.cpp engine (before it builds the context) all ask
:func:`cache_type_problem`.
"""

from __future__ import annotations

from .errors import UsageError

# KV cache types dsv2 accepts: name -> (elements per block, bytes per block).
CACHE_TYPES: dict[str, tuple[int, int]] = {"f16": (1, 2), "q8_0": (32, 34), "q4_0": (32, 18)}
QUANTIZED_CACHE_TYPES = frozenset(name for name, (block, _) in CACHE_TYPES.items() if block > 1)


def cache_type_problem(type_k: str, type_v: str, flash_attn: bool | None) -> tuple[str, str] | None:
    """``(setting, problem)`` for the first rule broken, else None.

    Each type must be one of :data:`CACHE_TYPES`, and a quantized V cache needs flash attention
    (``flash_attn`` None is auto, which dsv2 runs as on).
    """
    for name, value in (("cache_type_k", type_k), ("cache_type_v", type_v)):
        if value not in CACHE_TYPES:
            return name, f"must be one of {', '.join(CACHE_TYPES)}, not {value!r}"
    if type_v in QUANTIZED_CACHE_TYPES and flash_attn is False:
        return "cache_type_v", (
            f"a quantized V cache ({type_v}) needs flash attention: turn flash attention on (or auto), or use f16"
        )
    return None


def check_cache_types(type_k: str, type_v: str, flash_attn: bool | None) -> None:
    """UsageError, naming the flag, for a combination llama.cpp would reject or crash on."""
    found = cache_type_problem(type_k, type_v, flash_attn)
    if found is not None:
        name, problem = found
        raise UsageError(f"--{name.replace('_', '-')}: {problem}")
