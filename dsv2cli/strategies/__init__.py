"""How a job runs, chosen from token counts alone (a pure function, tested with tables)."""

from __future__ import annotations

from ..errors import UsageError

WHOLE, MAP_REDUCE, RETRIEVE = "whole", "map-reduce", "retrieve"
STRATEGIES = (WHOLE, MAP_REDUCE, RETRIEVE)
FALLBACK = {"summarize": MAP_REDUCE, "ask": RETRIEVE}


def choose(task: str, document_tokens: int, document_budget: int, override: str | None = None) -> str:
    """``whole`` when the document fits its budget, else the task's fallback.

    ``override`` forces a strategy (``--strategy``); forcing ``whole`` on an input that does
    not fit is still refused later, by the packer, with the counts.
    """
    if task not in FALLBACK:
        raise ValueError(f"unknown task {task!r}")
    if override is not None:
        if override not in STRATEGIES:
            raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, not {override!r}")
        return override
    if document_tokens <= document_budget:
        return WHOLE
    return FALLBACK[task]
