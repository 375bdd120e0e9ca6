"""Merge per-chunk extractions field by field (a pure function).

For each field, the candidates are the non-null entries of every chunk, in document order:

- the winner is the first candidate whose evidence was verified, else the first candidate;
- every candidate whose value differs from the winner's is kept under ``"conflicts"`` (one per
  distinct value, a verified one preferred), so disagreement between parts of a contract stays
  visible instead of being silently resolved;
- a field no chunk found stays ``null``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

Entry = dict[str, Any]


def value_key(value: Any) -> str:
    """Values that differ only in case, spacing or key order are the same value."""
    if isinstance(value, str):
        return " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{value_key(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(value_key(v) for v in value) + "]"
    return json.dumps(value)


def merge_field(candidates: Sequence[Entry]) -> Entry | None:
    if not candidates:
        return None
    winner = next((c for c in candidates if c.get("verified")), candidates[0])
    distinct: dict[str, Entry] = {}
    for cand in candidates:
        key = value_key(cand.get("value"))
        if key not in distinct or (cand.get("verified") and not distinct[key].get("verified")):
            distinct[key] = cand
    winner_key = value_key(winner.get("value"))
    conflicts = [c for k, c in distinct.items() if k != winner_key]
    merged = dict(winner)
    merged.pop("conflicts", None)
    if conflicts:
        merged["conflicts"] = [{k: v for k, v in c.items() if k != "conflicts"} for c in conflicts]
    return merged


def merge(parts: Sequence[Mapping[str, Entry | None]], names: Sequence[str]) -> dict[str, Entry | None]:
    """One result from the per-chunk results, for every field in ``names`` (in that order)."""
    if len(parts) == 1:
        return {name: parts[0].get(name) for name in names}
    merged: dict[str, Entry | None] = {}
    for name in names:
        merged[name] = merge_field([e for part in parts if (e := part.get(name)) is not None])
    return merged
