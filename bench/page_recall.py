"""Page recall on an annual report: is the page holding the asked-for figure inside the packed context?

    python bench/page_recall.py [--pages 150] [--seed 7] [--questions 80] [--windows 8192,32768]

No public annual-report PDF can be downloaded on the machines this project is built on, so the
report is generated (bench/annual_report.py: an invented company, ~150 pages of narrative and ten
statement tables printed row by row, so every figure's page is known). The questions ask for one
figure by its row label and year, without naming the statement ("What was income tax expense in
2024?"), the way a reader asks.

The questions are split in two halves by a hash of their text: a tuning half and a held-out half
that nothing in dsv2 was tuned on. Both are reported. dsv2's retrieval runs as ``dsv2 ask`` runs it
(index with the default embedder, hybrid ranking, greedy packing), with the context budget of each
window less 1,024 tokens for the prompt and the answer, counted at ~4 characters per token.

Target on the held-out half: gold page inside the packed context in >= 0.75 of questions at 8k
and >= 0.95 at 32k.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annual_report import Fact, write_report  # noqa: E402

from dsv2cli.index import resolve_embedder, retrieve  # noqa: E402 - after the path tweak, so a checkout runs
from dsv2cli.sources import load_inputs  # noqa: E402

RESERVED = 1024  # prompt and answer tokens kept out of the document budget


def approx_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def question_of(fact: Fact) -> str:
    label = fact.question.split(" in ")[0].removeprefix("What was ")
    year = fact.question.split(" in ")[1].split(",")[0]
    return f"What was {label} in {year}?"


def held_out(question: str) -> bool:
    return int(hashlib.sha256(question.encode()).hexdigest(), 16) % 2 == 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=150)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--questions", type=int, default=80, help="sampled from all figures (0: all)")
    ap.add_argument("--windows", default="8192,32768")
    args = ap.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    home = Path(os.environ.get("DSV2_HOME") or tempfile.mkdtemp(prefix="dsv2-bench-"))
    with tempfile.TemporaryDirectory() as work:
        pdf = Path(work) / "annual-report.pdf"
        facts = write_report(pdf, args.pages, args.seed)
        gold: dict[str, set[int]] = {}
        for fact in facts:
            gold.setdefault(question_of(fact), set()).add(fact.page)
        questions = sorted(gold)
        if args.questions:
            questions = random.Random(args.seed).sample(questions, min(args.questions, len(questions)))
        documents, _ = load_inputs([str(pdf)])
        embedder = resolve_embedder(home).embedder
        started = time.perf_counter()
        hits: dict[tuple[bool, int], int] = {}
        counts = {True: 0, False: 0}
        built = None
        for question in questions:
            found = retrieve(
                question,
                documents,
                corpus=[str(pdf)],
                home=home,
                budget=max(windows) - RESERVED,
                count_tokens=approx_tokens,
                embedder=embedder,
            )
            if built is None:
                built = time.perf_counter() - started
                print(f"index build: {found.candidates} chunks in {built:.1f} s ({found.method})")
            split = held_out(question)
            counts[split] += 1
            for window in windows:
                packed = found.repack(window - RESERVED)
                pages = {s.location.page for s in packed.sources}
                hits[(split, window)] = hits.get((split, window), 0) + bool(pages & gold[question])
        del embedder, found  # free llama.cpp's model now, not in the interpreter's teardown
        gc.collect()
    print(
        f"{args.pages}-page generated report, {len(questions)} questions "
        f"({counts[False]} tuning, {counts[True]} held out)"
    )
    print("| split | questions | " + " | ".join(f"{w // 1024}k" for w in windows) + " |")
    print("|---|---|" + "---|" * len(windows))
    for split, name in ((False, "tuning"), (True, "held-out")):
        n = counts[split] or 1
        cells = " | ".join(f"{hits.get((split, w), 0) / n:.2f}" for w in windows)
        print(f"| page recall {name} | {counts[split]} | {cells} |")
    print("target on the held-out half: >= 0.75 at 8k, >= 0.95 at 32k")


if __name__ == "__main__":
    main()
