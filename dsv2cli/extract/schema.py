"""What to extract: a set of named fields, each with a JSON Schema for its value.

Two schemas are derived from the same fields:

- the *grammar* schema, what the model must write: one object with every field as a key,
  each ``null`` (not stated) or ``{"evidence": "<quote>", "value": <the field's schema>}``;
  llama.cpp turns it into a grammar, so even a tiny model writes parseable, typed JSON;
- the *result* schema, what ``dsv2 extract`` returns: the same fields, each ``null`` or
  ``{"value", "evidence", "verified", "location", "conflicts"?}``. ``verified`` and
  ``location`` are computed by dsv2 from the source text, never written by the model.

A user schema (``--schema FILE``) is an object schema whose top-level ``properties`` are the
fields; it is checked against its meta-schema (Draft 2020-12 unless it names another) and
against what the grammar converter supports before any model work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError, UsageError

# Longest evidence quote the model may write (characters). Bounds output length per field.
EVIDENCE_MAX_CHARS = 240
# Longest free-text value the built-in schema allows (characters).
TEXT_MAX_CHARS = 160

_TEXT: dict[str, Any] = {"type": "string", "maxLength": TEXT_MAX_CHARS}
_DATE: dict[str, Any] = {"type": "string", "format": "date", "description": "ISO 8601 date, YYYY-MM-DD"}
_MONEY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code, e.g. EUR"},
    },
    "required": ["amount", "currency"],
    "additionalProperties": False,
}
_DURATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "length": {"type": "integer"},
        "unit": {"enum": ["days", "weeks", "months", "years"]},
    },
    "required": ["length", "unit"],
    "additionalProperties": False,
}


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _described(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {**schema, "description": description}


# The built-in contract fields: name -> value schema (with the description the prompt shows).
CONTRACT_FIELDS: dict[str, dict[str, Any]] = {
    "parties": _described(
        "the contracting parties with their role (e.g. Supplier, Customer)",
        {"type": "array", "items": _obj(name=_TEXT, role=_TEXT), "minItems": 1, "maxItems": 6},
    ),
    "agreement_date": _described("date the agreement was made or signed", _DATE),
    "effective_date": _described("date the agreement takes effect", _DATE),
    "expiration_date": _described("date the agreement ends, if a date is stated", _DATE),
    "initial_term": _described("length of the initial term", _DURATION),
    "renewal": _described(
        "whether and how the agreement renews",
        _obj(automatic={"type": "boolean"}, period=_nullable(_DURATION)),
    ),
    "termination_for_convenience": _described("when a party may end the agreement without cause", _TEXT),
    "termination_for_cause": _described("when a party may end the agreement for breach or insolvency", _TEXT),
    "termination_notice_period": _described("notice needed to terminate", _DURATION),
    "governing_law": _described("the law that governs the agreement (a country or state)", _TEXT),
    "jurisdiction": _described("courts or venue for disputes", _TEXT),
    "payment_terms": _described("when invoices are issued and must be paid", _TEXT),
    "fees": _described(
        "amounts payable",
        {
            "type": "array",
            "items": _obj(description=_TEXT, amount={"type": "number"}, currency=_MONEY["properties"]["currency"]),
            "maxItems": 4,
        },
    ),
    "liability_cap": _described(
        "limit on a party's total liability", _obj(description=_TEXT, amount=_nullable(_MONEY))
    ),
    "indemnification": _described("who indemnifies or defends whom, against what", _TEXT),
    "confidentiality": _described("confidentiality obligations and how long they last", _TEXT),
    "non_compete_or_exclusivity": _described("non-compete, non-solicitation or exclusivity terms", _TEXT),
    "assignment": _described("whether the agreement may be assigned or transferred", _TEXT),
    "change_of_control": _described("what happens on a change of control of a party", _TEXT),
    "ip_ownership": _described("who owns intellectual property", _TEXT),
    "audit_rights": _described("rights to audit or inspect records", _TEXT),
    "insurance": _described("insurance a party must hold", _TEXT),
    "warranty": _described("warranties given about the services or goods", _TEXT),
}


@dataclass(frozen=True)
class FieldSet:
    """The fields to extract, in order, plus shared ``$defs`` their schemas may ``$ref``."""

    name: str  # "contract" or the user schema's path
    fields: dict[str, dict[str, Any]]
    defs: dict[str, Any] = field(default_factory=dict)
    defs_key: str = "$defs"

    @property
    def digest(self) -> str:
        """sha256 of the canonical field definitions: part of the resume key."""
        canonical = json.dumps({"fields": self.fields, "defs": self.defs}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        """One line per field for the prompt: ``- name: description (type)``."""
        return "\n".join(f"- {name}: {_hint(schema)}" for name, schema in self.fields.items())

    def _root(self, props: dict[str, Any]) -> dict[str, Any]:
        root: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": list(props),
            "additionalProperties": False,
        }
        if self.defs:
            root[self.defs_key] = self.defs
        return root

    def subset(self, names: Sequence[str]) -> FieldSet:
        """Only the named fields (``--fields``), in the schema's order."""
        unknown = [n for n in names if n not in self.fields]
        if unknown:
            raise UsageError(
                f"--fields: unknown field(s) {', '.join(unknown)}; {self.name} has: {', '.join(self.fields)}"
            )
        if not names:
            raise UsageError("--fields: name at least one field")
        chosen = {n: s for n, s in self.fields.items() if n in names}
        return FieldSet(self.name, chosen, self.defs, self.defs_key)

    def grammar_schema(self) -> dict[str, Any]:
        """What the model writes (turned into a llama.cpp grammar)."""
        return self._root({name: _nullable(envelope(schema)) for name, schema in self.fields.items()})

    def result_schema(self) -> dict[str, Any]:
        """What an extraction result's ``fields`` object satisfies."""
        return self._root({name: _nullable(result_envelope(schema)) for name, schema in self.fields.items()})


def envelope(value_schema: Mapping[str, Any]) -> dict[str, Any]:
    """Evidence first: the model copies the passage, then states the value it reads there."""
    return _obj(evidence={"type": "string", "maxLength": EVIDENCE_MAX_CHARS}, value=dict(value_schema))


LOCATION_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "page": {"type": ["integer", "null"]},
        "page_end": {"type": ["integer", "null"]},
        "section": {"type": ["string", "null"]},
        "line_start": {"type": ["integer", "null"]},
        "line_end": {"type": ["integer", "null"]},
        "cite": {"type": "string"},
    },
    "required": ["page", "section", "cite"],
}


def result_envelope(value_schema: Mapping[str, Any]) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "type": "object",
        "properties": {
            "value": dict(value_schema),
            "evidence": {"type": "string"},
            "verified": {"type": "boolean"},
            "location": LOCATION_SCHEMA,
            "chunk": {"type": "integer"},
        },
        "required": ["value", "evidence", "verified", "location"],
    }
    return {
        **candidate,
        "properties": {**candidate["properties"], "conflicts": {"type": "array", "items": candidate}},
    }


def _hint(schema: Mapping[str, Any]) -> str:
    description = schema.get("description") or schema.get("title") or ""
    kind = _kind(schema)
    return f"{description} ({kind})" if description else kind


def _kind(schema: Mapping[str, Any]) -> str:
    if schema.get("format") == "date":
        return "date YYYY-MM-DD"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "object" and isinstance(schema.get("properties"), Mapping):
        return "object with " + ", ".join(schema["properties"])
    if kind == "array":
        items = schema.get("items")
        return f"list of {_kind(items)}" if isinstance(items, Mapping) else "list"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(_kind(s) for s in schema.get("anyOf") or schema["oneOf"] if isinstance(s, Mapping))
    return str(kind or "any JSON value")


def contract_fields() -> FieldSet:
    return FieldSet("contract", CONTRACT_FIELDS)


def load_user_schema(path: Path) -> FieldSet:
    """Read, check and turn a user JSON Schema into a FieldSet. Every problem is a UsageError."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: schema file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read schema file ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from exc
    return fields_from_schema(schema, str(path))


def check_schema(schema: Any, where: str) -> None:
    """Meta-schema check: Draft 2020-12, or the draft the schema's ``$schema`` names."""
    import jsonschema
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict):
        raise UsageError(f"{where}: a JSON Schema must be a JSON object, not {type(schema).__name__}")
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(p) for p in exc.path) or "(root)"
        raise UsageError(f"{where}: invalid JSON Schema at {at}: {exc.message}") from exc


def fields_from_schema(schema: Any, where: str) -> FieldSet:
    check_schema(schema, where)
    if schema.get("type", "object") != "object" or not isinstance(schema.get("properties"), dict):
        raise UsageError(f'{where}: the schema must describe an object with "properties" (one per field to extract)')
    props = schema["properties"]
    if not props:
        raise UsageError(f"{where}: the schema has no properties to extract")
    bad = [name for name, sub in props.items() if not isinstance(sub, dict)]
    if bad:
        raise UsageError(f"{where}: property {bad[0]!r} must be a schema object (true/false are not fields)")
    defs_key = "definitions" if "definitions" in schema and "$defs" not in schema else "$defs"
    fields = FieldSet(where, {str(k): v for k, v in props.items()}, dict(schema.get(defs_key, {})), defs_key)
    check_grammar(fields.grammar_schema(), where)
    return fields


def check_grammar(grammar_schema: Mapping[str, Any], where: str) -> str:
    """Convert to llama.cpp GBNF now (pure Python), so an unsupported schema fails before model work."""
    from .. import llama

    try:
        gbnf = llama.json_schema_gbnf(json.dumps(grammar_schema))
    except ModelError:  # llama-cpp-python missing or outside the tested range: not the schema's fault
        raise
    except Exception as exc:  # the converter raises AssertionError, KeyError, ValueError... alike
        raise UsageError(f"{where}: llama.cpp cannot build a grammar from this schema ({exc})") from exc
    return gbnf
