"""How a job runs, chosen from token counts alone (a pure function, tested with tables)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import UsageError
from ..packing import Budget, near_budget

P = TypeVar("P")  # a prompt

WHOLE, MAP_REDUCE, RETRIEVE = "whole", "map-reduce", "retrieve"
STRATEGIES = (WHOLE, MAP_REDUCE, RETRIEVE)
FALLBACK = {"summarize": MAP_REDUCE, "ask": RETRIEVE, "extract": MAP_REDUCE}  # extract: chunks, merged


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


def whole_prompt(
    task: str,
    document_tokens: int,
    budget: Budget,
    override: str | None,
    build: Callable[[], P],
    size: Callable[[P], int],
) -> P | None:
    """The prompt of the whole input when it is to run whole, else None (the task's fallback runs).

    Decided from ``document_tokens``, the input's own count (cached per segment), so that the
    whole input is tokenized into a prompt only for the strategy that runs: ``build()`` is called
    when the count fits the budget, or misses it by no more than ``packing.TEMPLATE_JOIN_SLACK``
    (tokens can merge where the template meets the input), and then the prompt's exact document
    tokens, ``size(prompt)``, decide. Forced whole (``override``), the prompt is returned whatever
    its size, for the caller to refuse with the numbers.
    """
    chosen = choose(task, document_tokens, budget.document, override)
    if chosen != WHOLE and not (override is None and near_budget(document_tokens, budget)):
        return None
    prompt = build()
    return prompt if override == WHOLE or budget.fits(size(prompt)) else None
