"""PDF input: pages, encryption, scans, damage, headers/footers, clause structure."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dsv2cli.errors import ExitCode, InputError
from dsv2cli.sources import load, load_inputs

from .pdfs import write_pdf

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_pdf_text_comes_per_page_with_1_based_page_numbers(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "three.pdf", ["Alpha page text.", "Bravo page text.", "Charlie page text."])
    doc = load(str(path))
    assert doc.kind == "pdf"
    assert [s.location.page for s in doc.segments] == [1, 2, 3]
    assert [s.text for s in doc.segments] == ["Alpha page text.", "Bravo page text.", "Charlie page text."]
    assert doc.segments[1].location.cite() == f"{path} p. 2"
    assert doc.warnings == []


def test_headers_and_page_numbers_repeated_on_every_page_are_stripped(tmp_path: Path) -> None:
    pages = [f"Body of page {n}: the tide tables for week {n}." for n in range(1, 6)]
    path = write_pdf(tmp_path / "hf.pdf", pages, header="Kestrel Tide Office - Internal", page_numbers=True)
    doc = load(str(path))
    assert [s.text for s in doc.segments] == pages
    assert "Kestrel Tide Office" not in doc.text
    assert "Page 3 of 5" not in doc.text


def test_a_header_on_only_some_pages_is_kept(tmp_path: Path) -> None:
    pages = ["Quarterly figures\nRevenue rose.", "Quarterly figures\nCosts fell.", "Outlook\nSteady.", "Annex\nNone."]
    doc = load(str(write_pdf(tmp_path / "some.pdf", pages)))
    assert doc.text.count("Quarterly figures") == 2


def test_words_hyphenated_at_a_line_break_are_joined(tmp_path: Path) -> None:
    text = "The inter-\nnational expansion, the COVID-\n19 plan, the OP-\nTIONAL clause and Jean-\nPaul."
    doc = load(str(write_pdf(tmp_path / "hyphen.pdf", [text])))
    assert "international expansion" in doc.text
    assert "COVID-19 plan" in doc.text
    assert "OPTIONAL clause" in doc.text
    assert "Jean-Paul" in doc.text


def test_two_columns_read_left_column_then_right(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    with pdf.text_columns(ncols=2, gutter=10) as cols:
        cols.write("LEFTSTART " + "tide tables for the northern harbours. " * 30 + "LEFTEND ")
        cols.write("RIGHTSTART " + "ferry timetables for the island routes. " * 30 + "RIGHTEND")
    path = tmp_path / "columns.pdf"
    pdf.output(str(path))
    text = load(str(path)).text
    positions = [text.index(marker) for marker in ("LEFTSTART", "LEFTEND", "RIGHTSTART", "RIGHTEND")]
    assert positions == sorted(positions)


def test_table_rows_come_out_one_per_line() -> None:
    doc = load(str(SAMPLES / "meridian-coast-annual-report-2025.pdf"))
    page10 = "\n".join(s.text for s in doc.segments if s.location.page == 10)
    assert "Revenue 684.2 571.9" in page10.splitlines()
    assert "Net profit 81.3 59.0" in page10.splitlines()


def test_encrypted_pdf_without_password_is_a_clear_input_error(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "locked.pdf", ["Vault contents."], password="s3cret")
    with pytest.raises(InputError) as info:
        load(str(path))
    assert str(info.value) == f"{path}: PDF is encrypted; pass --password"
    assert info.value.exit_code == ExitCode.INPUT


def test_encrypted_pdf_opens_with_the_password_and_rejects_a_wrong_one(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "locked.pdf", ["Vault contents.", "Second vault page."], password="s3cret")
    doc = load(str(path), password="s3cret")
    assert [s.text for s in doc.segments] == ["Vault contents.", "Second vault page."]
    with pytest.raises(InputError, match="wrong password"):
        load(str(path), password="guess")


def test_image_only_page_is_a_warning_naming_the_page(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "scan.pdf", ["Typed page one.", None, None, "Typed page four.", None])
    doc = load(str(path))
    assert [s.location.page for s in doc.segments] == [1, 4]
    assert len(doc.warnings) == 1
    assert "3 of 5 pages have no text layer" in doc.warnings[0]
    assert doc.warnings[0].endswith("page 2-3, 5")


def test_pdf_without_any_text_layer_is_an_input_error(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "allscan.pdf", [None, None])
    with pytest.raises(InputError, match="no page has a text layer"):
        load(str(path))


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.97])
def test_truncated_pdf_is_a_one_line_input_error(tmp_path: Path, keep: float) -> None:
    whole = write_pdf(tmp_path / "whole.pdf", ["Some text."] * 3).read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(InputError) as info:
        load(str(path))
    message = str(info.value)
    assert message == f"{path}: not a readable PDF (corrupt or truncated)"
    assert "\n" not in message


def test_a_pdf_on_stdin_is_recognised_by_its_header(tmp_path: Path) -> None:
    data = write_pdf(tmp_path / "in.pdf", ["Piped page."]).read_bytes()
    doc = load("-", io.BytesIO(data))
    assert doc.kind == "pdf"
    assert doc.segments[0].location.cite() == "<stdin> p. 1"


def test_contract_sections_split_at_page_boundaries_and_section_starts(tmp_path: Path) -> None:
    pages = [
        "MASTER SERVICES AGREEMENT\n1. Definitions\n1.1 Agreement means this document.\n2. Services",
        "2.1 The Supplier provides hosting.\n3. Fees\n3.1 Fees are EUR 900 per month, invoiced",
        "monthly in arrears and payable within 30 days.\n3.2 Late payment bears interest.\n4. Liability",
    ]
    path = write_pdf(tmp_path / "msa.pdf", pages)
    doc = load(str(path))
    assert [(s.location.cite(), s.text) for s in doc.segments] == [
        (f"{path} p. 1", "MASTER SERVICES AGREEMENT"),
        (f"{path} § 1, p. 1", "1. Definitions"),
        (f"{path} § 1.1, p. 1", "1.1 Agreement means this document."),
        (f"{path} § 2, p. 1", "2. Services"),
        (f"{path} § 2.1, p. 2", "2.1 The Supplier provides hosting."),
        (f"{path} § 3, p. 2", "3. Fees"),
        (f"{path} § 3.1, p. 2", "3.1 Fees are EUR 900 per month, invoiced"),
        (f"{path} § 3.1, p. 3", "monthly in arrears and payable within 30 days."),  # 3.1 runs onto page 3
        (f"{path} § 3.2, p. 3", "3.2 Late payment bears interest."),
        (f"{path} § 4, p. 3", "4. Liability"),
    ]


def test_sample_contract_pdf_cites_clauses_with_pages() -> None:
    doc = load(str(SAMPLES / "contract-msa.pdf"))
    sections = {s.location.section for s in doc.segments}
    assert {"1", "8.1", "8.2", "9.1", "11.1"} <= sections
    cap = next(s for s in doc.segments if s.location.section == "8.2")
    assert cap.location.page is not None
    assert cap.location.cite() == f"{SAMPLES / 'contract-msa.pdf'} § 8.2, p. {cap.location.page}"


def test_sample_report_pdf_has_ten_pages_of_text() -> None:
    doc = load(str(SAMPLES / "meridian-coast-annual-report-2025.pdf"))
    assert {s.location.page for s in doc.segments} >= set(range(1, 11))
    assert doc.warnings == []


def test_load_inputs_passes_the_password_to_every_pdf(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "locked.pdf", ["Vault contents."], password="pw")
    docs, notes = load_inputs([str(path)], password="pw")
    assert docs[0].segments[0].text == "Vault contents."
    assert notes == []
