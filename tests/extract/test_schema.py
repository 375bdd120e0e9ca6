"""The built-in contract schema and user schemas: checked before any model work."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from dsv2cli.errors import UsageError
from dsv2cli.extract import contract_fields, fields_from_schema, load_user_schema
from dsv2cli.extract.schema import check_grammar

from .conftest import INVOICE_SCHEMA

ISSUE_FIELDS = [
    "parties", "agreement_date", "effective_date", "expiration_date", "initial_term", "renewal",
    "termination_for_convenience", "termination_for_cause", "termination_notice_period", "governing_law",
    "jurisdiction", "payment_terms", "fees", "liability_cap", "indemnification", "confidentiality",
    "non_compete_or_exclusivity", "assignment", "change_of_control", "ip_ownership", "audit_rights", "insurance",
    "warranty",
]  # fmt: skip


def test_contract_schema_has_every_field_the_issue_asks_for() -> None:
    assert list(contract_fields().fields) == ISSUE_FIELDS


def test_contract_schemas_are_valid_and_llama_cpp_builds_the_grammar() -> None:
    fields = contract_fields()
    jsonschema.Draft202012Validator.check_schema(fields.grammar_schema())
    jsonschema.Draft202012Validator.check_schema(fields.result_schema())
    assert "root ::=" in check_grammar(fields.grammar_schema(), "contract")


def test_every_field_is_nullable_with_typed_value_evidence_and_location() -> None:
    result = contract_fields().result_schema()
    validator = jsonschema.Draft202012Validator(result, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    nothing = dict.fromkeys(ISSUE_FIELDS)
    assert validator.is_valid(nothing)  # a contract with none of the clauses: all null, nothing invented
    fee = {
        "value": [{"description": "monthly fee", "amount": 48500, "currency": "EUR"}],
        "evidence": "EUR 48,500",
        "verified": True,
        "location": {"page": 2, "section": "4.1", "cite": "§ 4.1, p. 2"},
    }
    assert validator.is_valid({**nothing, "fees": fee})
    assert not validator.is_valid(
        {**nothing, "fees": {**fee, "value": [{"description": "x", "amount": "48,500", "currency": "EUR"}]}}
    )
    assert not validator.is_valid(
        {**nothing, "fees": {**fee, "value": [{"description": "x", "amount": 1, "currency": "euro"}]}}
    )
    date = {"value": "2026-04-01", "evidence": "1 April 2026", "verified": True, "location": None}
    assert validator.is_valid({**nothing, "effective_date": date})
    assert not validator.is_valid({**nothing, "effective_date": {**date, "value": "1 April 2026"}})
    assert not validator.is_valid({**nothing, "effective_date": {**date, "evidence": None}})


def test_user_schema_fields_get_the_same_envelope() -> None:
    fields = fields_from_schema(INVOICE_SCHEMA, "invoice.json")
    assert list(fields.fields) == ["invoice_number", "due_date", "total"]
    grammar = fields.grammar_schema()
    assert grammar["required"] == ["invoice_number", "due_date", "total"]
    assert grammar["properties"]["total"]["anyOf"][1] == {"type": "null"}
    assert grammar["properties"]["total"]["anyOf"][0]["properties"]["value"] == INVOICE_SCHEMA["properties"]["total"]


def test_user_schema_refs_to_defs_still_resolve() -> None:
    schema = {
        "type": "object",
        "$defs": {"money": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}},
        "properties": {"total": {"$ref": "#/$defs/money"}},
    }
    fields = fields_from_schema(schema, "s.json")
    validator = jsonschema.Draft202012Validator(fields.result_schema())
    ok = {"value": {"amount": 3}, "evidence": "3", "verified": False, "location": None}
    assert validator.is_valid({"total": ok})
    assert not validator.is_valid({"total": {**ok, "value": {"amount": "3"}}})


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"n": {"type": "numbr"}}}, "invalid JSON Schema at properties/n/type"),
        ({"type": "array", "items": {"type": "string"}}, 'must describe an object with "properties"'),
        ({"type": "object", "properties": {}}, "no properties to extract"),
        ([1, 2], "must be a JSON object"),
        ({"type": "object", "properties": {"code": {"type": "string", "pattern": "[A-Z]+"}}}, "cannot build a grammar"),
    ],
)
def test_invalid_user_schema_is_a_usage_error(schema: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        fields_from_schema(schema, "s.json")


def test_schema_file_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{ not json")
    with pytest.raises(UsageError, match="not JSON"):
        load_user_schema(path)
    with pytest.raises(UsageError, match="not found"):
        load_user_schema(tmp_path / "missing.json")


def test_fields_subset_keeps_schema_order_and_rejects_unknown_names() -> None:
    assert list(contract_fields().subset(["governing_law", "parties"]).fields) == ["parties", "governing_law"]
    with pytest.raises(UsageError, match="unknown field"):
        contract_fields().subset(["governing_lawz"])


def test_digest_changes_with_the_fields() -> None:
    assert contract_fields().digest != contract_fields().subset(["parties"]).digest
    assert json.dumps(contract_fields().fields)  # plain JSON data
