"""Text extracted from a PDF is kept by content: the same bytes are not parsed again, anything
else is (changed bytes, another reader version, a damaged entry), and a PDF opened with a
password never leaves its text on disk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dsv2cli.errors import InputError
from dsv2cli.sources import load, pdf
from dsv2cli.sources.pdfcache import PdfTextCache

from ..conftest import SAMPLES, dsv2_cmd
from .pdfs import manual_parts, write_manual, write_pdf

REPORT = SAMPLES / "meridian-coast-annual-report-2025.pdf"


def same_document(a, b) -> bool:  # type: ignore[no-untyped-def]
    return (a.segments, a.warnings, a.heading_source, a.headings) == (
        b.segments,
        b.warnings,
        b.heading_source,
        b.headings,
    )


@pytest.fixture
def no_pdfium(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """After this, parsing a PDF fails the test: what is read must come from the cache."""

    def parse(*_: object) -> None:
        raise AssertionError("the PDF was parsed again")

    return lambda: monkeypatch.setattr(pdf, "_read_pdf", parse)


def test_the_same_pdf_is_read_once_and_gives_the_same_document(tmp_path: Path, no_pdfium) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "pdf-text"
    manual = write_manual(tmp_path / "manual.pdf", manual_parts(3, 2), outline=True)
    for path in (REPORT, manual):
        first = load(str(path), pdf_cache=cache)
        assert same_document(first, load(str(path)))  # the cache changes nothing
    assert len(list(cache.glob("*.json"))) == 2
    no_pdfium()
    for path in (REPORT, manual):
        assert same_document(load(str(path), pdf_cache=cache), load(str(path), pdf_cache=cache))
    assert load(str(manual), pdf_cache=cache).heading_source == "outline"  # the outline is kept too


def test_changed_bytes_are_read_again(tmp_path: Path) -> None:
    cache = tmp_path / "pdf-text"
    path = write_pdf(tmp_path / "a.pdf", ["The harbour fee is 12 euros."])
    assert load(str(path), pdf_cache=cache).segments[0].text == "The harbour fee is 12 euros."
    write_pdf(path, ["The harbour fee is 15 euros."])
    assert load(str(path), pdf_cache=cache).segments[0].text == "The harbour fee is 15 euros."
    assert len(list(cache.glob("*.json"))) == 2


def test_a_pdf_opened_with_a_password_is_never_kept(tmp_path: Path) -> None:
    cache = tmp_path / "pdf-text"
    path = write_pdf(tmp_path / "locked.pdf", ["Vault contents."], password="s3cret")
    assert load(str(path), password="s3cret", pdf_cache=cache).segments[0].text == "Vault contents."
    with pytest.raises(InputError, match="pass --password"):
        load(str(path), pdf_cache=cache)
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.parametrize("damage", ["garbage", "other reader", "wrong shape"])
def test_a_damaged_or_stale_entry_is_read_again_and_replaced(tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "pdf-text"
    expected = load(str(REPORT))
    load(str(REPORT), pdf_cache=cache)
    (entry,) = cache.glob("*.json")
    kept = json.loads(entry.read_text())
    entry.write_text(
        {
            "garbage": "{not json",
            "other reader": json.dumps({**kept, "stamp": "0/old", "pages": ["stale text"] * len(kept["pages"])}),
            "wrong shape": json.dumps({**kept, "outline": [["x"]]}),
        }[damage]
    )
    assert same_document(load(str(REPORT), pdf_cache=cache), expected)
    assert json.loads(entry.read_text()) == kept


def test_the_least_recently_used_entries_go_when_the_cache_is_full(tmp_path: Path) -> None:
    store = PdfTextCache(tmp_path / "pdf-text", pdf.READER_VERSION, max_bytes=3300)  # 3 entries of ~1 KB
    blobs = [f"%PDF-{i}".encode() for i in range(4)]
    for age, blob in enumerate(blobs[:3]):
        store.put(blob, (["x" * 1000], []))
        entry = store._path(blob)
        os.utime(entry, (1_000_000 + age, 1_000_000 + age))  # put in this order, a second apart
    assert [store.get(blob) is not None for blob in blobs[:3]] == [True, True, True]  # all fit; 0-2 used now
    for age, blob in enumerate(blobs[:3]):
        os.utime(store._path(blob), (1_000_000 + age, 1_000_000 + age))
    assert store.get(blobs[0]) is not None  # used again: now the most recent
    store.put(blobs[3], (["y" * 1000], []))
    assert [store.get(blob) is not None for blob in blobs] == [True, False, True, True]


def test_the_cli_keeps_pdf_text_under_dsv2_home(dsv2_home: Path) -> None:
    runs = [
        subprocess.run([*dsv2_cmd(), "pack", str(REPORT), "--json"], capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert len(list((dsv2_home / "cache" / "pdf-text").glob("*.json"))) == 1


def test_text_utf8_cannot_encode_is_kept_as_it_was(tmp_path: Path) -> None:
    store = PdfTextCache(tmp_path / "pdf-text", pdf.READER_VERSION)
    pages = ["a lone surrogate \ud800 from a broken font", "ünïcode, 東京, ﬁ"]
    store.put(b"%PDF-odd", (pages, [(0, "Tïtle \udfff", 0)]))
    assert store.get(b"%PDF-odd") == (pages, [(0, "Tïtle \udfff", 0)])


def test_cache_status_shows_and_cache_clear_empties_the_pdf_text(dsv2_home: Path) -> None:
    from typer.testing import CliRunner

    from dsv2cli.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["pack", str(REPORT)]).exit_code == 0
    status = json.loads(runner.invoke(app, ["cache", "status", "--json"]).stdout)
    assert status["pdf_text"]["entries"] == 1 and status["pdf_text"]["size_bytes"] > 0
    assert status["pdf_text"]["directory"] == str(dsv2_home / "cache" / "pdf-text")
    assert f"pdf text:     {dsv2_home / 'cache' / 'pdf-text'}" in runner.invoke(app, ["cache", "status"]).stdout
    cleared = runner.invoke(app, ["cache", "clear"])
    assert "pdf text cache cleared: 1 entries removed" in cleared.stderr
    assert json.loads(runner.invoke(app, ["cache", "status", "--json"]).stdout)["pdf_text"]["entries"] == 0
