"""Run every benchmark in sequence and print one table of their headline lines.

    python bench/run_all.py [--quick]

Each benchmark's full output goes to stderr as it runs; stdout gets the table. --quick passes
smaller settings (fewer runs, a 60-page PDF) for a first look; the targets are judged on the
default settings. Run it on an otherwise idle machine: llama.cpp's threads collapse when the
2 cores are shared.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# (name, script, args, quick args, patterns whose matching lines are the headline)
SUITE: list[tuple[str, str, list[str], list[str], list[str]]] = [
    (
        "overhead vs raw llama.cpp",
        "overhead.py",
        [],
        ["--runs", "1"],
        [r"^whole process", r"^prompt eval \+ generation"],
    ),
    (
        "ingest vs pypdf / repomix",
        "ingest.py",
        [],
        ["--repeat", "1"],
        [r"^\S.*\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+x\s+[\d.]+x\s+\d+\s+[\d.]+x$", r"^dsv2 pack .* / repomix"],
    ),
    (
        "retrieval recall",
        "retrieval.py",
        [],
        ["--questions", "12"],
        [r"^index build", r"^\| (default|bm25|dense|hybrid|rrf|weighted)"],
    ),
    (
        "exact token counting",
        "count.py",
        [],
        ["--repeat", "1"],
        [r"^(Llama|Tokenizer|CountCache|the same|bpe\.|DeepSeek)"],
    ),
    ("prefix cache", "prefix_cache.py", [], ["--runs", "1"], [r"^whole process", r"^prompt evaluation"]),
    ("chat turns, state kept vs not", "chat.py", [], ["--turns", "4"], [r"^turns 2\.\."]),
    ("planning from counts vs building the prompt", "plan.py", [], ["--repeat", "1"], [r"^(before|now)"]),
    ("one long line vs lines", "long_lines.py", [], ["--mb", "2"], [r"^(count|pack):"]),
    (
        "index build vs raw llama.cpp embedding",
        "index.py",
        [],
        ["--pages", "40", "--max-chunks", "150", "--batches", "256,512"],
        [r"^## ", r"^dsv2 index build", r"^old per-chunk build", r"^no-change re-index", r"^stages:"],
    ),
    (
        "page recall on an annual report",
        "page_recall.py",
        [],
        ["--pages", "60", "--questions", "30"],
        [r"^index build", r"^\| page recall"],
    ),
    (
        # Real 10-K/10-Q filings: needs --financebench DIR (a checkout of github.com/patronus-ai/financebench)
        "page recall on FinanceBench filings",
        "financebench_recall.py",
        [],
        ["--filings", "5"],
        [r"^\d+ FinanceBench", r"^index build", r"^filings that fit", r"^\| page recall", r"^skipped"],
    ),
    (
        "llama.cpp threads and wait policy",
        "threads.py",
        [],
        ["--rounds", "1", "--prompt-tokens", "512"],
        [r"^CPUs:", r"\s(spin|passive)\s"],
    ),
    (
        "batch: concurrency, packing, resume",
        "batch.py",
        [],
        ["--docs", "12", "--concurrency", "1,4"],
        [r"^one request per document", r"^packed", r"^packing:", r"^resume:"],
    ),
    (
        "300-page PDF: coverage, peak RSS",
        "summarize_300_pages.py",
        [],
        ["--pages", "60"],
        [r"chunks; pages not in exactly one chunk", r"^peak RSS", r"^summary:"],
    ),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="run only benchmarks whose name contains this")
    ap.add_argument(
        "--financebench",
        metavar="DIR",
        help="a checkout (or git directory) of github.com/patronus-ai/financebench; without it that step is skipped",
    )
    args = ap.parse_args()
    table: list[tuple[str, str]] = []
    for name, script, full, quick, patterns in SUITE:
        if args.only and args.only not in name:
            continue
        cmd = [sys.executable, str(BENCH / script), *(quick if args.quick else full)]
        if script == "financebench_recall.py":
            if not args.financebench:
                table.append((name, "skipped: no --financebench DIR (a copy of github.com/patronus-ai/financebench)"))
                continue
            cmd += ["--financebench", args.financebench]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sys.stderr.write(proc.stdout + proc.stderr)
        lines = [
            line.strip()
            for line in proc.stdout.splitlines()
            if any(re.search(p, line.strip(), re.IGNORECASE) for p in patterns)
        ]
        if proc.returncode != 0:
            lines = [f"FAILED (exit {proc.returncode}); see stderr"]
        for i, line in enumerate(lines or ["(no headline line found)"]):
            table.append((name if i == 0 else "", line))
        table.append(("", f"({time.perf_counter() - started:.0f} s)"))
    width = max(len(n) for n, _ in table) if table else 10
    print(f"{'benchmark':{width}}  result")
    print(f"{'-' * width}  {'-' * 60}")
    for name, line in table:
        print(f"{name:{width}}  {line}")


if __name__ == "__main__":
    main()
