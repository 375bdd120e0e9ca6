"""`dsv2 extract` end to end: the real embedded model (SmolLM2-135M), real files, real subprocesses.

Model calls are few and short (2 invoices, 2 contract chunks); each module fixture runs once and
several tests read its output. SmolLM2 proves the mechanics only: these tests check structure,
validity, verification flags and batch behaviour, never what the values are.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dsv2cli.extract import contract_fields, fields_from_schema

from ..conftest import dsv2_cmd
from .conftest import CONTRACT, INVOICE_SCHEMA, write_invoices

pytestmark = pytest.mark.slow


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str


def dsv2(args: list[str], home: Path) -> Run:
    """Run the CLI. One thread: on shared, busy cores llama.cpp's spinning thread barriers made
    two-thread generation up to 60x slower (0.5 vs 31 tok/s measured); one thread never waits."""
    args = [*args, "--threads", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSV2_")}
    env.update(DSV2_HOME=str(home), NO_COLOR="1")
    proc = subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, env=env, timeout=600)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


@dataclass
class Batch:
    paths: dict[str, Path]
    out: Path
    first: Run  # invoice-a only: a partial batch
    second: Run  # a (done), broken.pdf, b
    third: Run  # a, b again, with a model path that does not exist
    lines_after_second: int


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    root = tmp_path_factory.mktemp("batch")
    paths = write_invoices(root / "in")
    out = root / "results.jsonl"
    schema = ["--schema", str(paths["schema"]), "--out", str(out)]
    first = dsv2(["extract", str(paths["a"]), *schema, "--ctx", "1024"], root / "home")
    with out.open("a") as fh:  # what a crash in the middle of a write would leave behind
        fh.write('{"source": "cut off')
    second = dsv2(
        ["extract", str(paths["a"]), str(paths["broken"]), str(paths["b"]), *schema, "--ctx", "1024"], root / "home"
    )
    lines = len(out.read_text().splitlines())
    missing_model = root / "no-such-model.gguf"
    third = dsv2(["extract", str(paths["a"]), str(paths["b"]), *schema, "--model", str(missing_model)], root / "home")
    return Batch(paths, out, first, second, third, lines)


def test_user_schema_results_validate_against_the_derived_result_schema(batch: Batch) -> None:
    assert batch.first.rc == 0, batch.first.stderr
    assert batch.first.stdout == ""  # results went to --out
    result_schema = fields_from_schema(INVOICE_SCHEMA, "invoice").result_schema()
    recs = records(batch.out)
    assert [Path(r["source"]).name for r in recs] == ["invoice-a.txt", "invoice-b.txt"]
    for rec in recs:
        jsonschema.validate(rec["fields"], result_schema)
        assert list(rec["fields"]) == ["invoice_number", "due_date", "total"]
        for name, entry in rec["fields"].items():
            if entry is None:
                continue
            assert isinstance(entry["verified"], bool)
            assert (entry["location"] is None) == (not entry["verified"])
            assert (name in rec["unverified"]) == (not entry["verified"])


def test_rerun_skips_inputs_already_extracted_and_does_the_rest(batch: Batch) -> None:
    assert "invoice-a.txt: skipped: already extracted" in batch.second.stderr
    assert "ignored 1 unreadable line" in batch.second.stderr  # the cut-off line
    assert batch.lines_after_second == 3  # a, the cut-off line (closed with a newline), b
    assert "1 extracted, 1 skipped (already done), 1 failed" in batch.second.stderr


def test_corrupt_file_in_a_batch_is_reported_and_skipped(batch: Batch) -> None:
    assert batch.second.rc == 3, batch.second.stderr  # the first failure was an unreadable input
    assert "broken.pdf: not a readable PDF" in batch.second.stderr
    assert "invoice-b.txt" in {Path(r["source"]).name for r in records(batch.out)}  # the batch went on


def test_finished_batch_rerun_loads_no_model(batch: Batch) -> None:
    # the model path does not exist: any attempt to open it would fail with exit 4
    assert batch.third.rc == 0, batch.third.stderr
    assert "0 extracted, 2 skipped (already done), 0 failed" in batch.third.stderr
    assert len(batch.out.read_text().splitlines()) == batch.lines_after_second


def test_invalid_schema_is_a_usage_error_before_model_work(tmp_path: Path, invoices: dict[str, Path]) -> None:
    bad = tmp_path / "bad.schema.json"
    bad.write_text(json.dumps({"type": "object", "properties": {"total": {"type": "numbr"}}}))
    out = tmp_path / "out.jsonl"
    run = dsv2(
        [
            "extract",
            str(invoices["a"]),
            "--schema",
            str(bad),
            "--out",
            str(out),
            "--model",
            str(tmp_path / "no-such-model.gguf"),
        ],
        tmp_path / "home",
    )
    assert run.rc == 2, run.stderr
    assert "invalid JSON Schema at properties/total/type" in run.stderr
    assert not out.exists()


@pytest.fixture(scope="module")
def contract(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, Any]]:
    root = tmp_path_factory.mktemp("contract")
    run = dsv2(["extract", str(CONTRACT), "--fields", "effective_date,governing_law", "--ctx", "2048"], root / "home")
    assert run.rc == 0, run.stderr
    return run, json.loads(run.stdout)


def test_contract_longer_than_the_window_is_chunked_and_merged(contract: tuple[Run, dict[str, Any]]) -> None:
    run, rec = contract
    assert rec["chunks"] >= 2
    assert f"extracting from {rec['chunks']} chunks and merging" in run.stderr
    for entry in rec["fields"].values():
        if entry is None:
            continue
        assert 1 <= entry["chunk"] <= rec["chunks"]
        for other in entry.get("conflicts", []):
            assert other["chunk"] != entry["chunk"] or other["value"] != entry["value"]


def test_contract_result_validates_against_the_built_in_schema(contract: tuple[Run, dict[str, Any]]) -> None:
    _, rec = contract
    chosen = contract_fields().subset(["effective_date", "governing_law"])
    jsonschema.validate(rec["fields"], chosen.result_schema())
    # the same object, with the fields not asked for as null, is a valid full contract result
    full = {name: rec["fields"].get(name) for name in contract_fields().fields}
    jsonschema.validate(full, contract_fields().result_schema())
    assert rec["schema"] == "contract"
    assert rec["finish_reason"] == "stop"
