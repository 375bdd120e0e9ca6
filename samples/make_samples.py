"""Write the sample PDFs in samples/: a 12-page annual report and a 6-page services contract.

Everything in them is invented (companies, people, figures). The generated PDFs are committed,
so users and tests need nothing; run this only to change them:

    pip install -e '.[test]'      # fpdf2
    python samples/make_samples.py

The output is deterministic (fixed creation date), so re-running gives identical files.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

HERE = Path(__file__).resolve().parent
FIXED_DATE = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class _Doc(FPDF):
    def __init__(self, running_header: str) -> None:
        super().__init__(format="A4")
        self.running_header = running_header
        self.set_creation_date(FIXED_DATE)
        self.set_auto_page_break(True, margin=22)
        self.set_margins(22, 18, 22)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 6, self.running_header, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(4)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")

    def heading(self, text: str, size: int = 14) -> None:
        self.set_font("Helvetica", "B", size)
        self.multi_cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)

    def para(self, text: str, size: float = 10.5, line_height: float = 5.4) -> None:
        self.set_font("Helvetica", size=size)
        self.multi_cell(0, line_height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(line_height / 2)

    def table(self, rows: list[tuple[str, ...]]) -> None:
        self.set_font("Helvetica", size=9.5)
        with super().table(text_align="LEFT", line_height=6) as t:
            for row in rows:
                r = t.row()
                for cell in row:
                    r.cell(cell)
        self.ln(3)


# ---------------------------------------------------------------------------------------------
# Meridian Coast Renewables AG - Annual Report 2025 (fictional)
# ---------------------------------------------------------------------------------------------

REPORT: list[tuple[str, list[str | list[tuple[str, ...]]]]] = [
    (
        "1. Letter from the Chief Executive",
        [
            "Dear shareholders, 2025 was the first year in which Meridian Coast Renewables produced more electricity "
            "from its own wind and solar parks than its customers consumed in the winter months. Net generation "
            "reached 3,412 gigawatt hours (GWh), up 21 percent from 2,821 GWh in 2024. Revenue rose to "
            "EUR 684.2 million and operating profit (EBIT) to EUR 118.9 million.",
            "Three things drove the year. The Skerrow Bank offshore wind farm reached full output in April, two months "
            "ahead of plan. Our battery fleet, now 410 megawatt hours, earned EUR 37.5 million from grid balancing "
            "services, more than twice the 2024 figure. And we closed the sale of our legacy gas peaker at Tollmere to "
            "Ashgrove Energy Partners for EUR 96 million, which ends our last direct fossil generation.",
            "Not everything went to plan. The Lindqvist Moor solar park was delayed by nine months after the "
            "grid operator postponed its substation works, and a blade defect on eleven turbines at Harrow Ridge "
            "cost us 64 GWh of output in the third quarter. We recovered EUR 8.1 million of the loss from the "
            "turbine supplier under the warranty.",
            "The board proposes a dividend of EUR 1.15 per share, up from EUR 0.90. - Annika Brenner, Chief Executive",
        ],
    ),
    (
        "2. 2025 at a glance",
        [
            [
                ("Measure", "2025", "2024", "Change"),
                ("Net generation", "3,412 GWh", "2,821 GWh", "+21%"),
                ("Installed capacity", "1,486 MW", "1,203 MW", "+24%"),
                ("Revenue", "EUR 684.2 m", "EUR 571.9 m", "+20%"),
                ("EBIT", "EUR 118.9 m", "EUR 88.4 m", "+35%"),
                ("Net profit", "EUR 81.3 m", "EUR 59.0 m", "+38%"),
                ("Battery capacity", "410 MWh", "190 MWh", "+116%"),
                ("Employees (FTE)", "1,204", "1,087", "+11%"),
                ("Lost-time injury rate", "0.9", "1.3", "-0.4"),
            ],
            "Installed capacity counts our share of jointly owned parks. Net generation excludes the Tollmere gas "
            "peaker, which is reported as a discontinued operation until its sale closed on 30 September 2025.",
        ],
    ),
    (
        "3. Wind portfolio",
        [
            "Wind produced 2,539 GWh, or 74 percent of our generation. Skerrow Bank (offshore, 480 MW, 60 percent "
            "owned) delivered 1,188 GWh in its first full year at a capacity factor of 47 percent. Onshore, Harrow "
            "Ridge (210 MW) produced 512 GWh despite the blade defect; Kelby Fells (156 MW) produced 389 GWh.",
            [
                ("Wind park", "Capacity", "Our share", "Generation 2025"),
                ("Skerrow Bank (offshore)", "480 MW", "60%", "1,188 GWh"),
                ("Harrow Ridge", "210 MW", "100%", "512 GWh"),
                ("Kelby Fells", "156 MW", "100%", "389 GWh"),
                ("Orrin Flats", "120 MW", "100%", "301 GWh"),
                ("Small parks (9 sites)", "64 MW", "100%", "149 GWh"),
            ],
            "Availability across the wind fleet was 96.2 percent (2024: 95.7 percent). We signed a 15-year service "
            "contract for Skerrow Bank with Northfold Marine Services, fixing maintenance costs at EUR 41,000 per "
            "megawatt per year, indexed to inflation.",
        ],
    ),
    (
        "4. Solar portfolio",
        [
            "Solar produced 873 GWh from 422 MW. The new Brackwater solar park (95 MW) connected in June and "
            "produced 61 GWh in its first half-year. Lindqvist Moor (140 MW) is now expected to connect in "
            "March 2026 instead of June 2025; the delay moved about EUR 14 million of expected revenue into 2026.",
            "Panel degradation is running at 0.42 percent per year, below the 0.55 percent assumed in our "
            "investment cases. Module prices fell a further 18 percent in 2025, which lowers the cost of the "
            "repowering programme at our four oldest parks, planned for 2027 to 2029.",
            "Across the solar fleet, curtailment ordered by the grid operator rose to 4.8 percent of potential "
            "output (2024: 2.9 percent), mostly on sunny weekend afternoons when demand is low. Batteries at two "
            "parks now absorb part of that energy and release it in the evening peak.",
        ],
    ),
    (
        "5. Grid-scale storage",
        [
            "Our storage fleet grew from 190 MWh to 410 MWh with the commissioning of the Fenwick battery "
            "(200 MWh, two-hour duration) in February. Storage revenue was EUR 37.5 million, of which EUR 22.9 "
            "million came from frequency response and EUR 14.6 million from energy trading between cheap and "
            "expensive hours.",
            "Round-trip efficiency averaged 87.1 percent. We expect revenue per megawatt hour of storage to fall "
            "as more batteries join the market, and we now plan new storage only where it sits next to our own "
            "parks and shares their grid connection.",
        ],
    ),
    (
        "6. Customers and markets",
        [
            "We sold 61 percent of our output under long-term power purchase agreements (PPAs) with industrial "
            "customers, 27 percent to the wholesale market and 12 percent to 214,000 household customers. The "
            "largest new PPA, with Corvane Steel, covers 310 GWh per year for 12 years from January 2026 at a "
            "fixed price with 2 percent annual indexation.",
            "The average price we achieved was EUR 78.40 per megawatt hour, down from EUR 83.10, because "
            "wholesale prices fell through the year. The PPAs protected about two thirds of our revenue from "
            "that fall. Household customer numbers grew 9 percent; complaints fell to 3.1 per 1,000 customers.",
        ],
    ),
    (
        "7. People and safety",
        [
            "We employed 1,204 full-time equivalents at year end. Women hold 34 percent of management roles, "
            "up from 29 percent. Staff turnover was 7.8 percent. The lost-time injury rate fell to 0.9 per "
            "million hours worked; there were no fatalities.",
            "In October a technician at Kelby Fells was injured when a service lift stopped between platforms. "
            "He made a full recovery. We replaced the lift controllers on all 41 turbines of the same type and "
            "made a second technician mandatory for lift work at height.",
        ],
    ),
    (
        "8. Environment",
        [
            "Our generation avoided an estimated 1.9 million tonnes of carbon dioxide compared with the "
            "national grid average. Our own direct emissions (scope 1) fell 83 percent to 41,000 tonnes after "
            "the Tollmere sale. Scope 2 and 3 emissions, mostly from turbine and panel manufacturing, were "
            "estimated at 212,000 tonnes.",
            "Bird monitoring at Skerrow Bank recorded 23 collision events, below the 40 allowed by the "
            "consent. We fund a EUR 1.2 million seagrass restoration project in Kessel Bay with the Harwick "
            "Marine Trust.",
        ],
    ),
    (
        "9. Financial review",
        [
            [
                ("EUR million", "2025", "2024"),
                ("Revenue", "684.2", "571.9"),
                ("Cost of energy and grid fees", "(241.7)", "(214.3)"),
                ("Operations and maintenance", "(118.4)", "(101.2)"),
                ("Personnel", "(96.0)", "(84.7)"),
                ("Depreciation", "(109.2)", "(83.3)"),
                ("EBIT", "118.9", "88.4"),
                ("Net finance cost", "(17.6)", "(14.9)"),
                ("Tax", "(20.0)", "(14.5)"),
                ("Net profit", "81.3", "59.0"),
            ],
            "Depreciation rose with the first full year of Skerrow Bank. The gain of EUR 12.4 million on the sale "
            "of Tollmere is included in net profit through discontinued operations.",
        ],
    ),
    (
        "10. Balance sheet and cash flow",
        [
            "Operating cash flow was EUR 244.6 million. We invested EUR 391.0 million, mainly in Brackwater, "
            "Fenwick and Lindqvist Moor. Net debt rose from EUR 1,012 million to EUR 1,143 million, 3.1 times "
            "EBITDA, within our limit of 3.5 times. In May we issued a EUR 300 million green bond due 2033 with a "
            "coupon of 3.625 percent.",
            "Equity was EUR 1,386 million at year end, an equity ratio of 41 percent. Cash and undrawn credit "
            "lines totalled EUR 512 million.",
        ],
    ),
    (
        "11. Risks",
        [
            "Power prices: a 10 percent fall in wholesale prices would reduce EBIT by about EUR 11 million in "
            "2026, after PPAs. Grid connection: delays at Lindqvist Moor show how much our growth depends on the "
            "grid operator's timetable. Weather: a year with 10 percent less wind than average would reduce "
            "generation by about 250 GWh. Interest rates: 86 percent of our debt is at fixed rates.",
            "Supply chain: we depend on three turbine makers; the Harrow Ridge blade defect showed that warranty "
            "terms matter as much as price. Regulation: the government's planned windfall levy on generators "
            "would cost us an estimated EUR 6 to 9 million a year if adopted in its draft form.",
        ],
    ),
    (
        "12. Outlook for 2026",
        [
            "We expect net generation of 3,700 to 3,900 GWh, with Lindqvist Moor connecting in March, and EBIT "
            "of EUR 125 to 140 million at current forward prices. Capital expenditure will be about EUR 420 "
            "million, including the first phase of the 300 MW Skerrow Bank extension, for which a final "
            "investment decision is planned for September 2026.",
            "Our target remains 2,500 MW of installed capacity by 2030. - The Board of Management, Meridian Coast "
            "Renewables AG, Harwick, 2 March 2026",
        ],
    ),
]


def make_report(path: Path) -> None:
    pdf = _Doc("Meridian Coast Renewables AG - Annual Report 2025")
    pdf.add_page()
    pdf.ln(50)
    pdf.set_font("Helvetica", "B", 26)
    pdf.multi_cell(0, 12, "Meridian Coast Renewables AG", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=18)
    pdf.multi_cell(0, 10, "Annual Report 2025", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(10)
    pdf.para("This report is fictional. Meridian Coast Renewables, its parks, people, partners and figures are "
             "invented for testing dsv2 and do not describe any real company.")  # fmt: skip
    for title, blocks in REPORT:
        pdf.add_page()
        pdf.heading(title)
        for block in blocks:
            if isinstance(block, list):
                pdf.table(block)
            else:
                pdf.para(block)
    pdf.output(str(path))


# ---------------------------------------------------------------------------------------------
# Master Services Agreement between Quillfeather Analytics GmbH and Brackenridge Logistics Ltd (fictional)
# ---------------------------------------------------------------------------------------------

CONTRACT: list[tuple[str, list[str]]] = [
    (
        "1. Definitions",
        [
            '1.1 "Agreement" means this Master Services Agreement, its Schedules and every Order Form signed under it.',
            '1.2 "Services" means the route-optimisation platform, its hosting and the support described in '
            "Schedule 1.",
            '1.3 "Customer Data" means all data the Customer or its users upload to the Services, including '
            "shipment records, addresses and driver schedules.",
            '1.4 "Business Day" means a day other than a Saturday, Sunday or public holiday in Dublin, Ireland.',
            '1.5 "Effective Date" means 1 April 2026.',
        ],
    ),
    (
        "2. Services",
        [
            "2.1 The Supplier shall provide the Services to the Customer from the Effective Date in accordance "
            "with this Agreement and with good industry practice.",
            "2.2 The Supplier may change the Services provided that the change does not materially reduce their "
            "functionality, and gives the Customer at least 30 days' written notice of any change that affects "
            "the Customer's use of the Services.",
            "2.3 The Customer shall use the Services only for its own internal logistics operations and those "
            "of its affiliates listed in Schedule 2.",
        ],
    ),
    (
        "3. Term",
        [
            "3.1 This Agreement starts on the Effective Date and continues for an initial term of thirty-six (36) "
            'months (the "Initial Term").',
            "3.2 After the Initial Term this Agreement renews automatically for successive periods of twelve (12) "
            "months unless either party gives notice of non-renewal at least ninety (90) days before the end of "
            "the then-current term.",
        ],
    ),
    (
        "4. Fees and Payment",
        [
            "4.1 The Customer shall pay a fixed monthly fee of EUR 48,500 (forty-eight thousand five hundred "
            "euros) for the Services, plus EUR 0.012 per optimised route above 2,000,000 routes in a calendar month.",
            "4.2 The Supplier shall invoice monthly in advance. Invoices are payable within thirty (30) days of "
            "the invoice date.",
            "4.3 Amounts not paid when due bear interest at 1 percent per month from the due date until payment.",
            "4.4 From the second anniversary of the Effective Date the Supplier may increase the fees once per "
            "contract year by no more than the Irish consumer price index change plus 2 percent, on 60 days' "
            "written notice.",
            "4.5 All amounts are exclusive of value added tax, which the Customer shall pay in addition.",
        ],
    ),
    (
        "5. Service Levels",
        [
            "5.1 The Supplier shall make the Services available 99.5 percent of each calendar month, excluding "
            "scheduled maintenance announced at least 5 Business Days in advance.",
            "5.2 If availability falls below 99.5 percent in a month, the Customer is entitled to a service credit "
            "of 5 percent of that month's fixed fee for each full 0.5 percent below the target, up to 30 percent "
            "of the monthly fee.",
            "5.3 Service credits are the Customer's sole financial remedy for unavailability, except where "
            "availability is below 95 percent in three consecutive months, in which case clause 9.2 applies.",
        ],
    ),
    (
        "6. Confidentiality",
        [
            "6.1 Each party shall keep the other party's Confidential Information secret and use it only to "
            "perform this Agreement.",
            "6.2 The obligations in this clause 6 continue for five (5) years after this Agreement ends.",
            "6.3 A party may disclose Confidential Information where required by law, after notifying the other "
            "party where lawful to do so.",
        ],
    ),
    (
        "7. Data Protection",
        [
            "7.1 The Supplier processes Customer Data as processor on behalf of the Customer, under the data "
            "processing agreement in Schedule 3.",
            "7.2 The Supplier shall host Customer Data only in data centres located in the European Economic Area.",
            "7.3 The Supplier shall notify the Customer of any personal data breach without undue delay and in any "
            "event within 48 hours of becoming aware of it.",
        ],
    ),
    (
        "8. Liability",
        [
            "8.1 Neither party excludes or limits liability for death or personal injury caused by negligence, "
            "for fraud, or for any liability that cannot be limited by law.",
            "8.2 Subject to clause 8.1, each party's total aggregate liability under or in connection with this "
            "Agreement in any contract year is limited to the total fees paid and payable by the Customer in the "
            "twelve (12) months preceding the event giving rise to the claim, and in any case shall not exceed "
            "EUR 600,000 (six hundred thousand euros).",
            "8.3 Subject to clause 8.1, neither party is liable for loss of profits, loss of business or any "
            "indirect or consequential loss.",
            "8.4 The cap in clause 8.2 does not apply to the Customer's obligation to pay the fees, or to either "
            "party's liability for breach of clause 6 (Confidentiality) or clause 7 (Data Protection), which is "
            "limited instead to EUR 2,000,000.",
        ],
    ),
    (
        "9. Termination",
        [
            "9.1 Either party may terminate this Agreement for convenience after the Initial Term by giving the "
            "other party not less than ninety (90) days' written notice.",
            "9.2 Either party may terminate this Agreement immediately by written notice if the other party "
            "commits a material breach and, where the breach can be remedied, fails to remedy it within thirty "
            "(30) days of being notified of it.",
            "9.3 Either party may terminate this Agreement immediately if the other party becomes insolvent, "
            "enters examinership or ceases to carry on business.",
            "9.4 On termination the Supplier shall make Customer Data available for export for sixty (60) days "
            "and then delete it, and the Customer shall pay all fees due up to the date of termination.",
        ],
    ),
    (
        "10. Intellectual Property",
        [
            "10.1 The Supplier owns all rights in the Services and the underlying software. The Customer owns all "
            "rights in the Customer Data.",
            "10.2 The Supplier shall defend the Customer against any claim that the Services infringe a third "
            "party's intellectual property rights and pay any damages finally awarded.",
        ],
    ),
    (
        "11. Governing Law and Jurisdiction",
        [
            "11.1 This Agreement and any dispute arising from it are governed by the laws of Ireland.",
            "11.2 The courts of Dublin, Ireland have exclusive jurisdiction over any dispute arising from or in "
            "connection with this Agreement.",
        ],
    ),
    (
        "12. General",
        [
            "12.1 Notices under this Agreement must be in writing and sent by courier or by email to the "
            "addresses below. A notice by email is received on the next Business Day after it is sent.",
            "12.2 Neither party may assign this Agreement without the other's prior written consent, not to be "
            "unreasonably withheld, except to an affiliate in a solvent reorganisation.",
            "12.3 This Agreement is the entire agreement between the parties about its subject matter and "
            "replaces the letter of intent dated 14 January 2026.",
        ],
    ),
]


def make_contract(path: Path) -> None:
    pdf = _Doc("Master Services Agreement - Quillfeather Analytics / Brackenridge Logistics - CONFIDENTIAL")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 10, "MASTER SERVICES AGREEMENT", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.para("This Agreement is made on 12 March 2026 between:")
    pdf.para("(1) Quillfeather Analytics GmbH, a company registered in Germany under number HRB 77412, whose "
             "registered office is at Lindenhof 14, 20095 Hamburg, Germany (the \"Supplier\"); and")  # fmt: skip
    pdf.para("(2) Brackenridge Logistics Ltd, a company registered in Ireland under number 648213, whose "
             "registered office is at 9 Harbour Quay, Dublin 2, Ireland (the \"Customer\").")  # fmt: skip
    pdf.para("This contract is fictional: both companies and every term in it are invented for testing dsv2.")
    for title, clauses in CONTRACT:
        pdf.heading(title, size=13)
        for clause in clauses:
            pdf.para(clause, size=12, line_height=7)
    pdf.ln(6)
    pdf.para("Signed for Quillfeather Analytics GmbH: Dr. Mirela Voss, Managing Director, 12 March 2026")
    pdf.para("Signed for Brackenridge Logistics Ltd: Connor Ashby, Chief Operating Officer, 12 March 2026")
    pdf.output(str(path))


def main() -> None:
    make_report(HERE / "meridian-coast-annual-report-2025.pdf")
    make_contract(HERE / "contract-msa.pdf")


if __name__ == "__main__":
    main()
