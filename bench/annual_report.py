"""A generated annual report PDF with financial statements, and questions whose answer is a figure
on a known page (for bench/index.py and bench/page_recall.py).

No public annual-report PDF can be downloaded on the machines this project is built on, so this
writes one: an invented company ("Northwind Harbour Holdings plc"), narrative sections (letter,
strategy, segment reviews, risk factors, governance, sustainability) and the statements a reader
asks about: income statement, balance sheet, cash flows, changes in equity, segment information,
quarterly results, debt maturities, property and equipment, tax reconciliation. Each statement is
a table with a title row and a column-header row of years, printed with fpdf2 row by row, so the
page of every figure is known exactly; long tables run over a page break, as in real filings.

    python bench/annual_report.py OUT.pdf [--pages 150] [--seed 7]

Deterministic for a seed. Everything in it is invented.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

COMPANY = "Northwind Harbour Holdings plc"
YEARS = ("2025", "2024", "2023")
FIXED_DATE = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

SEGMENTS = ("Ports and Terminals", "Logistics Services", "Marine Engineering", "Property", "Digital Freight")
REGIONS = ("United Kingdom", "Nordics", "Benelux", "Iberia", "North America", "Asia Pacific")

_WORDS = [
    "throughput",
    "capacity",
    "berth",
    "crane",
    "vessel",
    "tariff",
    "contract",
    "customer",
    "volume",
    "margin",
    "efficiency",
    "investment",
    "programme",
    "automation",
    "safety",
    "emissions",
    "electrification",
    "hinterland",
    "rail",
    "corridor",
    "warehouse",
    "tenancy",
    "occupancy",
    "yield",
    "pricing",
    "inflation",
    "wage",
    "productivity",
    "schedule",
    "reliability",
    "dredging",
    "concession",
    "renewal",
    "pipeline",
    "backlog",
    "demand",
    "recovery",
    "headwind",
    "tailwind",
    "currency",
    "exposure",
    "hedging",
    "liquidity",
    "covenant",
    "refinancing",
    "rating",
    "dividend",
    "buyback",
    "allocation",
    "discipline",
    "governance",
    "oversight",
    "committee",
    "audit",
    "assurance",
    "climate",
    "scenario",
    "transition",
]


@dataclass(frozen=True)
class Fact:
    """A figure printed on a page: the question asks for it, the page is the gold evidence."""

    question: str
    answer: str
    page: int
    table: str


@dataclass(frozen=True)
class Table:
    title: str
    rows: list[tuple[str, list[float]]]  # label, one value per year (empty list: a sub-heading row)
    unit: str = "in millions of GBP"


def _money(value: float) -> str:
    text = f"{abs(value):,.1f}"
    return f"({text})" if value < 0 else text


def _sentence(rng: random.Random) -> str:
    words = rng.sample(_WORDS, rng.randint(9, 16))
    number = rng.choice(
        [f"{rng.randint(2, 40)} percent", f"GBP {rng.randint(5, 900)} million", f"{rng.randint(2, 30)} sites", ""]
    )
    text = " ".join(words)
    if number:
        text += f" of {number}"
    return text[0].upper() + text[1:] + "."


def _paragraph(rng: random.Random, subject: str) -> str:
    sentences = [_sentence(rng) for _ in range(rng.randint(4, 7))]
    sentences.insert(rng.randint(0, len(sentences)), f"In {subject} the year showed {rng.choice(_WORDS)} progress.")
    return " ".join(sentences)


def _statements(rng: random.Random) -> list[Table]:
    def series(base: float, growth: float = 0.06, noise: float = 0.04) -> list[float]:
        values = [base]
        for _ in YEARS[1:]:
            values.append(values[-1] / (1 + growth + rng.uniform(-noise, noise)))
        return [round(v, 1) for v in values]

    revenue = series(rng.uniform(2500, 4000))
    cost = [round(-v * rng.uniform(0.55, 0.62), 1) for v in revenue]
    tables = [
        Table(
            "Consolidated Income Statement",
            [
                ("Revenue", revenue),
                ("Cost of sales", cost),
                ("Gross profit", [round(a + b, 1) for a, b in zip(revenue, cost, strict=True)]),
                ("Administrative expenses", series(-rng.uniform(300, 450))),
                ("Other operating income", series(rng.uniform(20, 60))),
                ("Operating profit", series(rng.uniform(500, 800))),
                ("Finance income", series(rng.uniform(10, 40))),
                ("Finance costs", series(-rng.uniform(80, 160))),
                ("Share of profit of joint ventures", series(rng.uniform(15, 45))),
                ("Profit before tax", series(rng.uniform(400, 650))),
                ("Income tax expense", series(-rng.uniform(90, 160))),
                ("Profit for the year", series(rng.uniform(300, 500))),
                ("Basic earnings per share (pence)", series(rng.uniform(40, 90))),
                ("Diluted earnings per share (pence)", series(rng.uniform(39, 88))),
            ],
        ),
        Table(
            "Consolidated Balance Sheet",
            [("Non-current assets", [])]
            + [
                (label, series(rng.uniform(lo, hi)))
                for label, lo, hi in (
                    ("Goodwill", 400, 900),
                    ("Other intangible assets", 150, 400),
                    ("Property, plant and equipment", 3000, 5000),
                    ("Right-of-use assets", 300, 700),
                    ("Investments in joint ventures", 100, 300),
                    ("Deferred tax assets", 20, 80),
                )
            ]
            + [("Current assets", [])]
            + [
                (label, series(rng.uniform(lo, hi)))
                for label, lo, hi in (
                    ("Inventories", 60, 150),
                    ("Trade and other receivables", 400, 800),
                    ("Cash and cash equivalents", 300, 900),
                    ("Total assets", 6000, 9000),
                )
            ]
            + [("Liabilities", [])]
            + [
                (label, series(-rng.uniform(lo, hi)))
                for label, lo, hi in (
                    ("Trade and other payables", 400, 800),
                    ("Borrowings due within one year", 100, 400),
                    ("Borrowings due after one year", 1500, 2500),
                    ("Lease liabilities", 300, 700),
                    ("Provisions", 50, 200),
                    ("Retirement benefit obligations", 40, 160),
                )
            ]
            + [
                ("Net assets", series(rng.uniform(2500, 4000))),
                ("Share capital", series(rng.uniform(100, 200), 0.0, 0.0)),
                ("Retained earnings", series(rng.uniform(1500, 3000))),
                ("Total equity", series(rng.uniform(2500, 4000))),
            ],
        ),
        Table(
            "Consolidated Cash Flow Statement",
            [("Operating activities", [])]
            + [
                (label, series(sign * rng.uniform(lo, hi)))
                for label, sign, lo, hi in (
                    ("Profit before tax", 1, 400, 650),
                    ("Depreciation and amortisation", 1, 200, 380),
                    ("Impairment charges", 1, 5, 60),
                    ("Increase in trade and other receivables", -1, 10, 80),
                    ("Increase in trade and other payables", 1, 10, 90),
                    ("Income taxes paid", -1, 80, 150),
                    ("Net cash provided by operating activities", 1, 600, 950),
                )
            ]
            + [("Investing activities", [])]
            + [
                (label, series(sign * rng.uniform(lo, hi)))
                for label, sign, lo, hi in (
                    ("Purchase of property, plant and equipment", -1, 300, 700),
                    ("Purchase of intangible assets", -1, 20, 90),
                    ("Acquisition of subsidiaries, net of cash acquired", -1, 50, 400),
                    ("Proceeds from disposal of property", 1, 10, 120),
                    ("Dividends received from joint ventures", 1, 5, 40),
                    ("Net cash used in investing activities", -1, 400, 900),
                )
            ]
            + [("Financing activities", [])]
            + [
                (label, series(sign * rng.uniform(lo, hi)))
                for label, sign, lo, hi in (
                    ("Proceeds from borrowings", 1, 100, 600),
                    ("Repayment of borrowings", -1, 100, 500),
                    ("Principal elements of lease payments", -1, 40, 120),
                    ("Interest paid", -1, 60, 150),
                    ("Dividends paid to shareholders", -1, 120, 260),
                    ("Purchase of own shares", -1, 20, 150),
                    ("Net cash used in financing activities", -1, 100, 500),
                    ("Net increase in cash and cash equivalents", 1, 10, 200),
                    ("Cash and cash equivalents at end of year", 1, 300, 900),
                )
            ],
        ),
        Table(
            "Consolidated Statement of Changes in Equity",
            [
                (label, series(sign * rng.uniform(lo, hi)))
                for label, sign, lo, hi in (
                    ("Balance at 1 January", 1, 2300, 3600),
                    ("Profit for the year attributable to equity", 1, 300, 500),
                    ("Other comprehensive income", 1, 5, 60),
                    ("Share-based payments", 1, 5, 25),
                    ("Dividends declared", -1, 120, 260),
                    ("Shares repurchased and cancelled", -1, 20, 150),
                    ("Balance at 31 December", 1, 2500, 4000),
                )
            ],
        ),
        Table(
            "Segment Information: Revenue by Operating Segment",
            [(segment, series(rng.uniform(200, 1200))) for segment in SEGMENTS]
            + [("Inter-segment eliminations", series(-rng.uniform(20, 60)))],
        ),
        Table(
            "Segment Information: Operating Profit by Operating Segment",
            [(segment, series(rng.uniform(30, 300))) for segment in SEGMENTS]
            + [("Central costs", series(-rng.uniform(30, 90)))],
        ),
        Table(
            "Revenue by Geographic Region",
            [(region, series(rng.uniform(100, 900))) for region in REGIONS],
        ),
        Table(
            "Note 14: Borrowings and Maturity Profile",
            [
                (label, series(rng.uniform(lo, hi)))
                for label, lo, hi in (
                    ("Bank loans", 200, 600),
                    ("Sterling bonds due 2027", 300, 500),
                    ("Euro bonds due 2030", 400, 700),
                    ("US private placement notes", 150, 400),
                    ("Commercial paper", 20, 150),
                    ("Total borrowings", 1500, 2600),
                )
            ],
        ),
        Table(
            "Note 9: Income Tax Reconciliation",
            [
                (label, series(sign * rng.uniform(lo, hi)))
                for label, sign, lo, hi in (
                    ("Tax at the UK statutory rate", 1, 100, 160),
                    ("Effect of overseas tax rates", 1, 5, 30),
                    ("Non-deductible expenses", 1, 2, 15),
                    ("Prior year adjustments", -1, 1, 12),
                    ("Recognition of previously unrecognised losses", -1, 2, 20),
                    ("Total income tax expense", 1, 90, 160),
                )
            ],
        ),
        Table(
            "Five-Year Summary of Key Performance Indicators",
            [
                (label, series(rng.uniform(lo, hi)))
                for label, lo, hi in (
                    ("Container throughput (thousand TEU)", 4000, 9000),
                    ("Warehouse space (thousand square metres)", 800, 2000),
                    ("Employees at year end (thousands)", 8, 20),
                    ("Lost-time injury frequency rate", 0.2, 0.9),
                    ("Scope 1 and 2 emissions (thousand tonnes CO2e)", 80, 300),
                    ("Return on capital employed (percent)", 8, 16),
                    ("Net debt to EBITDA (times)", 1.2, 3.5),
                )
            ],
            unit="as stated",
        ),
    ]
    return tables


def write_report(path: Path, pages: int = 150, seed: int = 7) -> list[Fact]:
    """Write the PDF; return every figure's question, answer and page."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    rng = random.Random(seed)

    class Report(FPDF):
        def header(self) -> None:
            if self.page_no() > 1:
                self.set_font("Helvetica", "I", 8)
                self.cell(0, 6, f"{COMPANY} - Annual Report and Accounts 2025", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                self.ln(3)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 8, f"{self.page_no()}", align="C")

    pdf = Report(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_margins(20, 15, 20)
    facts: list[Fact] = []
    statements = _statements(rng)
    # narrative sections first, then the statements and notes, interleaved with note prose
    narrative = [
        "Chair's Statement",
        "Chief Executive's Review",
        "Our Business Model",
        "Strategy and Key Performance Indicators",
        *[f"Segment Review: {s}" for s in SEGMENTS],
        "Financial Review",
        "Principal Risks and Uncertainties",
        "Sustainability and Climate-related Disclosures",
        "Corporate Governance Report",
        "Directors' Remuneration Report",
        "Audit Committee Report",
        "Independent Auditor's Report",
    ]
    statement_pages = 19  # about what the statements and their notes take
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 22)
    pdf.multi_cell(0, 12, f"{COMPANY}\nAnnual Report and Accounts 2025", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    section = 0
    while pdf.page_no() < pages - statement_pages:
        title = narrative[section % len(narrative)]
        if section >= len(narrative):
            title += " (continued)"
        section += 1
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        pdf.set_font("Helvetica", size=10)
        for _ in range(rng.randint(8, 14)):
            pdf.multi_cell(0, 5, _paragraph(rng, title.split(":")[-1].strip()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2.5)
    label_w, value_w, row_h = 95, 25, 5.2
    for table in statements:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(
            0, 7, f"{table.title}\nfor the year ended 31 December ({table.unit})", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.ln(2)

        def header_row() -> None:
            pdf.set_font("Helvetica", "B", 9)
            pdf.cell(label_w, row_h, "")
            for year in YEARS:
                pdf.cell(value_w, row_h, year, align="R")
            pdf.ln(row_h)

        header_row()
        for label, values in table.rows:
            if pdf.will_page_break(row_h):
                pdf.add_page()
                pdf.set_font("Helvetica", "B", 10)
                pdf.cell(0, 6, f"{table.title} (continued)", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                header_row()
            pdf.set_font("Helvetica", "B" if not values else "", 9)
            pdf.cell(label_w, row_h, label)
            for year, value in zip(YEARS, values, strict=False):
                pdf.cell(value_w, row_h, _money(value), align="R")
                facts.append(
                    Fact(
                        f"What was {label.lower()} in {year}, according to the {table.title.lower()}?",
                        _money(value),
                        pdf.page_no(),
                        table.title,
                    )
                )
            pdf.ln(row_h)
        # a long table in a real filing continues across pages: pad some with explanatory notes
        pdf.ln(4)
        pdf.set_font("Helvetica", size=10)
        for _ in range(rng.randint(3, 9)):
            pdf.multi_cell(0, 5, _paragraph(rng, table.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--pages", type=int, default=150)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    facts = write_report(args.out, args.pages, args.seed)
    args.out.with_suffix(".facts.json").write_text(json.dumps([asdict(f) for f in facts], indent=1))
    print(f"{args.out}: {len(facts)} figures; facts in {args.out.with_suffix('.facts.json')}")


if __name__ == "__main__":
    main()
