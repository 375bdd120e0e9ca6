"""Merging per-chunk results field by field (a pure function)."""

from __future__ import annotations

from typing import Any

from dsv2cli.extract import merge, merge_field


def entry(value: Any, verified: bool, chunk: int) -> dict[str, Any]:
    loc = {"page": chunk, "section": None, "cite": f"p. {chunk}"} if verified else None
    return {"value": value, "evidence": f"quote {chunk}", "verified": verified, "location": loc, "chunk": chunk}


def test_verified_evidence_wins_over_an_earlier_unverified_value() -> None:
    merged = merge_field([entry("England", False, 1), entry("Ireland", True, 2)])
    assert merged is not None
    assert merged["value"] == "Ireland" and merged["chunk"] == 2
    assert [c["value"] for c in merged["conflicts"]] == ["England"]


def test_conflicting_verified_values_stay_visible() -> None:
    merged = merge_field([entry("Ireland", True, 1), entry("Ireland", True, 2), entry("Northern Ireland", True, 3)])
    assert merged is not None
    assert merged["value"] == "Ireland" and merged["chunk"] == 1
    assert [(c["value"], c["chunk"]) for c in merged["conflicts"]] == [("Northern Ireland", 3)]


def test_values_equal_up_to_case_and_spacing_are_not_conflicts() -> None:
    same = [entry({"amount": 5, "currency": "EUR"}, True, 1), entry({"currency": "eur", "amount": 5}, True, 2)]
    merged = merge_field(same)
    assert merged is not None
    assert "conflicts" not in merged


def test_field_found_in_no_chunk_stays_null_and_field_order_is_kept() -> None:
    parts = [{"a": None, "b": entry("x", True, 1)}, {"a": None, "b": None}]
    assert list(merge(parts, ["a", "b"]).items()) == [("a", None), ("b", entry("x", True, 1))]
