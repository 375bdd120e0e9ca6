"""Shared inputs for extraction tests: a small invoice pair, its user schema, the sample contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..conftest import SAMPLES

CONTRACT = SAMPLES / "contract-msa.pdf"

INVOICE_A = """INVOICE No. INV-2026-0417
Bluewater Instruments Ltd, Galway, Ireland. Bill to: Kestrel Survey GmbH, Hamburg.
Invoice date: 3 February 2026. Due date: 5 March 2026.
Total due: EUR 2,840.00, by bank transfer within 30 days.
"""
INVOICE_B = """INVOICE No. INV-2026-0533
Bluewater Instruments Ltd, Galway, Ireland. Bill to: Tern Hydrographics AS, Bergen.
Invoice date: 9 March 2026. Due date: 8 April 2026.
Total due: EUR 615.50, by bank transfer within 30 days.
"""
INVOICE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string", "maxLength": 40, "description": "the invoice number"},
        "due_date": {"type": "string", "format": "date", "description": "when payment is due"},
        "total": {
            "type": "object",
            "description": "the total amount due",
            "properties": {"amount": {"type": "number"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
            "required": ["amount", "currency"],
        },
    },
}


def write_invoices(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "a": folder / "invoice-a.txt",
        "b": folder / "invoice-b.txt",
        "broken": folder / "broken.pdf",
        "schema": folder / "invoice.schema.json",
    }
    paths["a"].write_text(INVOICE_A)
    paths["b"].write_text(INVOICE_B)
    paths["broken"].write_bytes(b"%PDF-1.7\n1 0 obj <</Type /Catalog>> truncated here")
    paths["schema"].write_text(json.dumps(INVOICE_SCHEMA))
    return paths


@pytest.fixture
def invoices(tmp_path: Path) -> dict[str, Path]:
    return write_invoices(tmp_path / "in")
