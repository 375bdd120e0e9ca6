"""First question vs a follow-up on the same ~6k-token input: what the prompt-prefix cache saves.

    python bench/prefix_cache.py [--runs 3] [--model PATH]

Each run starts with an empty DSV2_HOME: the first `dsv2 ask` evaluates the whole prompt and
saves the document prefix; the follow-up (another question, a new process) loads it and
evaluates only the question. Wall time of whole processes, medians. Target: ratio <= 0.15.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = [
    ROOT / "samples" / "harbor-light-annual-report.md",
    ROOT / "samples" / "meridian-coast-annual-report-2025.pdf",
]
QUESTIONS = ["What was the revenue in 2025?", "Which vessels were sold, and for how much?"]


def ask(question: str, home: str, model: str | None) -> tuple[float, dict]:
    cmd = [
        sys.executable,
        "-m",
        "dsv2cli",
        "ask",
        question,
        *map(str, INPUTS),
        "--json",
        "--ctx",
        "8192",
        "--max-tokens",
        "32",
        "--temperature",
        "0",
    ]
    if model:
        cmd += ["--model", model]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, DSV2_HOME=home, NO_COLOR="1"))
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return wall, json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    first, follow = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            wall, a = ask(QUESTIONS[0], home, args.model)
            first.append((wall, a["timings"]["prompt_eval_s"], a["input_tokens"], a["prefix_cache"]))
            wall, b = ask(QUESTIONS[1], home, args.model)
            follow.append((wall, b["timings"]["prompt_eval_s"], b["prefix_reused_tokens"], b["prefix_cache"]))
    f_wall = statistics.median(r[0] for r in first)
    u_wall = statistics.median(r[0] for r in follow)
    f_eval = statistics.median(r[1] for r in first)
    u_eval = statistics.median(r[1] for r in follow)
    print(
        f"input: {first[0][2]} prompt tokens; follow-up reused {follow[0][2]} "
        f"(cache: first {first[0][3]}, follow-up {follow[0][3]}); {args.runs} runs, medians"
    )
    print(f"{'':26}{'first':>10}{'follow-up':>11}{'ratio':>8}{'target':>8}")
    print(f"{'whole process (s)':26}{f_wall:10.2f}{u_wall:11.2f}{u_wall / f_wall:8.3f}{0.15:8.2f}")
    print(f"{'prompt evaluation (s)':26}{f_eval:10.2f}{u_eval:11.2f}{u_eval / f_eval:8.3f}")


if __name__ == "__main__":
    main()
