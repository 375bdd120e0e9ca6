"""A 10-turn conversation over a document, with and without keeping the evaluated state between turns.

    python bench/chat.py [--turns 10] [--model PATH] [--max-tokens 48]

Both arms run in this process through the public API (Session.chat), greedy, with the disk
prefix cache off so that only in-memory reuse differs. "reuse" is what `dsv2 chat` does: the
llama.cpp context keeps documents + history + the last answer, and a turn evaluates only its new
tokens. "no reuse" clears the KV cache before each turn, so every turn evaluates its whole prompt,
as a stateless client that resends the history would. Per turn: prompt tokens, tokens evaluated,
prompt-evaluation seconds and turn latency (prompt evaluation + generation); then ratios over
turns 2..N. Target: turns 2..N evaluate <= 10% of the tokens of the no-reuse arm.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOCUMENT = ROOT / "samples" / "harbor-light-annual-report.md"
QUESTIONS = [
    "What does the company do?",
    "What was the revenue?",
    "And the year before?",
    "Which routes are mentioned?",
    "Who leads the company?",
    "What risks are named?",
    "What is the outlook?",
    "Summarize the fleet in one sentence.",
    "Which number in the report is the largest?",
    "What did we talk about first?",
    "Anything about safety?",
    "One last point: the dividend?",
]


def run_arm(reuse: bool, turns: int, model: str | None, max_tokens: int, threads: int | None) -> list[dict]:
    from dsv2cli import llama
    from dsv2cli.api import Session

    flags = {"temperature": 0.0, "max_tokens": max_tokens, "ctx": 8192}
    if model:
        flags["model"] = model
    if threads:
        flags["threads"] = threads
    rows = []
    with tempfile.TemporaryDirectory() as home:
        environ = {**os.environ, "DSV2_HOME": home}
        with Session(environ=environ, no_cache=True, **flags) as session:
            docs = session.load([DOCUMENT])
            run = session.chat(docs)
            backend = run.handle.runner()
            for question in (QUESTIONS * 2)[:turns]:
                if not reuse:
                    llama.clear_kv_cache(backend.load())  # type: ignore[attr-defined]
                started = time.perf_counter()
                result = run.turn(question)
                rows.append(
                    {
                        "prompt": result.usage.prompt_tokens,
                        "evaluated": result.evaluated,
                        "eval_s": result.usage.prompt_eval_s,
                        "latency_s": time.perf_counter() - started,
                        "output": result.usage.output_tokens,
                    }
                )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    arms = {
        name: run_arm(reuse, args.turns, args.model, args.max_tokens, args.threads)
        for name, reuse in (("reuse", True), ("no reuse", False))
    }
    print(f"{args.turns} turns over {DOCUMENT.name}; --max-tokens {args.max_tokens}, greedy")
    print("turn  prompt  | reuse: evaluated  eval s  latency s | no reuse: evaluated  eval s  latency s")
    for i, (a, b) in enumerate(zip(arms["reuse"], arms["no reuse"], strict=True), 1):
        print(
            f"{i:>4}  {a['prompt']:>6}  | {a['evaluated']:>16}  {a['eval_s']:>6.2f}  {a['latency_s']:>9.2f} "
            f"| {b['evaluated']:>19}  {b['eval_s']:>6.2f}  {b['latency_s']:>9.2f}"
        )

    def total(name: str, key: str) -> float:
        return float(sum(r[key] for r in arms[name][1:]))

    tokens = total("reuse", "evaluated") / max(total("no reuse", "evaluated"), 1)
    evals = total("reuse", "eval_s") / max(total("no reuse", "eval_s"), 1e-9)
    latency = total("reuse", "latency_s") / max(total("no reuse", "latency_s"), 1e-9)
    print(f"turns 2..{args.turns}: tokens evaluated, reuse / no reuse = {tokens:.3f} (target <= 0.10)")
    print(f"turns 2..{args.turns}: prompt evaluation time, reuse / no reuse = {evals:.3f}")
    print(f"turns 2..{args.turns}: turn latency, reuse / no reuse = {latency:.3f}")


if __name__ == "__main__":
    main()
