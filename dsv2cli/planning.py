"""``dsv2 plan``: how an input would run, from token counts alone (weights loaded only to measure speed once)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .engines.llamacpp import LlamaCppBackend
from .packing import ContextCount
from .sources.base import Location
from .tokens import tokenizer_key


@dataclass(frozen=True)
class Sized:
    location: Location
    tokens: int


def part_sizes(counted: ContextCount) -> list[Sized]:
    """Tokens of every segment (a page, a file, a section) as packed, in input order."""
    return [Sized(seg.location, n) for seg, n in counted.parts if seg is not None]


def largest(sizes: Sequence[Sized], n: int = 10) -> list[Sized]:
    return sorted(sizes, key=lambda s: -s.tokens)[:n]


# --- prompt-evaluation speed, measured once per model and settings --------------------------------

SPEED_PROBE_TOKENS = 1536
SPEED_PROBE_TEXT = (
    "The harbour authority reviewed the ferry timetable, the fuel contracts and the crew rotation, "
    "and published its findings for the regional council in the spring. "
)


def speed_key(model_path: Path, threads: int, gpu_layers: int | None, flash_attn: bool | None) -> str:
    return json.dumps([tokenizer_key(model_path), threads, gpu_layers, flash_attn])


class SpeedCache:
    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, key: str) -> float | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        entry = data.get(key) if isinstance(data, dict) else None
        return float(entry["tokens_per_s"]) if isinstance(entry, dict) and "tokens_per_s" in entry else None

    def put(self, key: str, tokens_per_s: float) -> None:
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[key] = {"tokens_per_s": tokens_per_s, "measured_at": time.time(), "probe_tokens": SPEED_PROBE_TOKENS}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.path)  # atomic: a concurrent reader sees the old or the new file


def measure_prompt_speed(backend: LlamaCppBackend) -> float:
    """Evaluate a fixed ~1.5k-token prompt on the loaded model; return tokens/s."""
    llm = backend.load()
    ids = llm.tokenize((SPEED_PROBE_TEXT * 200).encode(), add_bos=False, special=False)
    ids = ids[: min(SPEED_PROBE_TOKENS, llm.n_ctx() - 8)]
    llm.reset()  # type: ignore[no-untyped-call]  # llama_cpp leaves reset() unannotated
    started = time.perf_counter()
    llm.eval(ids)
    return len(ids) / (time.perf_counter() - started)
