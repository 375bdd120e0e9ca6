"""Output formats and resumable files (no model needed)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from dsv2cli.errors import UsageError
from dsv2cli.extract import contract_fields, open_sink, pick_format
from dsv2cli.extract.output import csv_columns, flatten

FIELDS = contract_fields().subset(["parties", "effective_date", "renewal", "liability_cap"])


def record(content_hash: str = "h1") -> dict[str, Any]:
    loc = {"page": 1, "page_end": None, "section": "1.5", "line_start": None, "line_end": None, "cite": "§ 1.5, p. 1"}
    return {
        "source": "c.pdf",
        "content_hash": content_hash,
        "schema_digest": FIELDS.digest,
        "unverified": ["renewal"],
        "fields": {
            "parties": {
                "value": [{"name": "Quillfeather", "role": "Supplier"}],
                "evidence": "between",
                "verified": True,
                "location": loc,
            },
            "effective_date": {
                "value": "2026-04-01",
                "evidence": "1 April 2026",
                "verified": True,
                "location": loc,
                "conflicts": [{"value": "2026-05-01", "evidence": "x", "verified": False, "location": None}],
            },
            "renewal": {
                "value": {"automatic": True, "period": {"length": 12, "unit": "months"}},
                "evidence": "renews, sort of",
                "verified": False,
                "location": None,
            },
            "liability_cap": None,
        },
    }


def test_csv_flattens_nested_values_into_fixed_columns() -> None:
    columns = csv_columns(FIELDS)
    assert columns[:4] == ["source", "content_hash", "schema_digest", "unverified"]
    assert "renewal.automatic" in columns and "renewal.period.length" in columns and "renewal.period.unit" in columns
    assert "liability_cap.amount.currency" in columns
    row = flatten(record(), FIELDS)
    assert set(row) == set(columns)
    assert row["effective_date"] == "2026-04-01"
    assert row["effective_date.location"] == "§ 1.5, p. 1"
    assert row["effective_date.conflicts"] == "1"
    assert row["renewal.automatic"] == "true" and row["renewal.period.length"] == "12"
    assert row["renewal.verified"] == "false"
    assert json.loads(row["parties"]) == [{"name": "Quillfeather", "role": "Supplier"}]
    assert row["liability_cap.description"] == "" and row["liability_cap.verified"] == ""


def test_jsonl_file_is_appended_and_read_back_for_resume(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    sink = open_sink("jsonl", io.StringIO(), out, False, FIELDS, 2)
    sink.write(record("h1"))
    out.write_text(out.read_text() + '{"cut off')  # an interrupted write
    again = open_sink("jsonl", io.StringIO(), out, False, FIELDS, 2)
    assert again.done == {("h1", FIELDS.digest)}
    assert again.notes == [f"warning: {out}: ignored 1 unreadable line(s)"]
    again.write(record("h2"))
    lines = out.read_text().splitlines()
    assert json.loads(lines[-1])["content_hash"] == "h2"  # the new record is a whole line of its own
    forced = open_sink("jsonl", io.StringIO(), out, True, FIELDS, 2)
    assert forced.done == set() and out.read_text() == ""


def test_csv_file_gets_one_header_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    open_sink("csv", io.StringIO(), out, False, FIELDS, 2).write(record("h1"))
    sink = open_sink("csv", io.StringIO(), out, False, FIELDS, 2)
    assert sink.done == {("h1", FIELDS.digest)}
    sink.write(record("h2"))
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["content_hash"] for r in rows] == ["h1", "h2"]
    with pytest.raises(UsageError, match="another schema"):
        open_sink("csv", io.StringIO(), out, False, contract_fields(), 2)


def test_json_is_one_object_for_one_input_and_an_array_for_several() -> None:
    one, many = io.StringIO(), io.StringIO()
    sink = open_sink("json", one, None, False, FIELDS, 1)
    sink.write(record())
    sink.close()
    assert json.loads(one.getvalue())["content_hash"] == "h1"
    sink = open_sink("json", many, None, False, FIELDS, 2)
    sink.write(record())
    sink.close()
    assert [r["content_hash"] for r in json.loads(many.getvalue())] == ["h1"]


@pytest.mark.parametrize(
    ("fmt", "out", "inputs", "expected"),
    [
        (None, None, 1, "json"),
        (None, None, 3, "jsonl"),
        (None, Path("r.jsonl"), 1, "jsonl"),
        (None, Path("r.csv"), 3, "csv"),
        ("csv", Path("r.jsonl"), 3, "csv"),
    ],
)
def test_format_comes_from_the_flag_then_the_out_suffix(
    fmt: str | None, out: Path | None, inputs: int, expected: str
) -> None:
    assert pick_format(fmt, out, inputs) == expected


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--format must be one of"):
        pick_format("xml", None, 1)
