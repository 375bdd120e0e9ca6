"""Map-reduce on a 300-page PDF with the 8k-context embedded model: coverage, time, peak memory.

    python bench/summarize_300_pages.py [--pages 300] [--max-tokens 64] [--dry-run-only]

Writes a text PDF (fpdf2, a test dependency) whose every page carries a unique marker, checks
with `--dry-run` that every page reaches exactly one chunk, then runs the real summary and
reports wall time, model calls and the peak RSS of the dsv2 process against the target
(model file size + 500 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_pdf(path: Path, pages: int) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    for n in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        body = (
            f"On page {n} the Kessel Sound ferry board reviewed route {n % 7 + 1}: {n * 113} passengers, "
            f"{n * 3} crossings, fares of {4 + n % 5}.50 euros, and a fuel bill of {n * 1.7:.1f} thousand euros. "
        )
        text = f"PAGEMARK{n:03d}. Section {n // 10 + 1}. " + body * 4
        pdf.multi_cell(0, 5, text)
    pdf.output(str(path))


def main() -> None:
    from dsv2cli.models import embedded_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--dry-run-only", action="store_true")
    args = ap.parse_args()
    model = embedded_model_path()
    assert model is not None
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "board-minutes.pdf"
        write_pdf(pdf, args.pages)
        env = dict(os.environ, DSV2_HOME=tmp, NO_COLOR="1")
        base = [
            sys.executable,
            "-m",
            "dsv2cli",
            "summarize",
            str(pdf),
            "--max-tokens",
            str(args.max_tokens),
            "--temperature",
            "0",
            "--no-cache",
        ]
        shown = subprocess.run([*base, "--dry-run"], capture_output=True, text=True, env=env, check=True).stdout
        missing = [n for n in range(1, args.pages + 1) if shown.count(f"PAGEMARK{n:03d}") != 1]
        plan = json.loads(
            subprocess.run([*base, "--dry-run", "--json"], capture_output=True, text=True, env=env, check=True).stdout
        )
        print(
            f"{args.pages} pages, {plan['context_tokens']:,} tokens, window {plan['window']}: "
            f"{plan['chunks']} chunks; pages not in exactly one chunk: {missing or 'none'}"
        )
        if args.dry_run_only:
            return
        started = time.perf_counter()
        proc = subprocess.run([*base, "--json"], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        out = json.loads(proc.stdout)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
        target = model.stat().st_size + 500 * 1024**2
        print(
            f"summary: {len(out['summary'])} chars, {out['calls']} model calls, {out['input_tokens']:,} prompt "
            f"tokens, {out['output_tokens']:,} output tokens, {wall:.0f} s"
        )
        print(
            f"peak RSS {peak / 1e6:,.0f} MB vs target {target / 1e6:,.0f} MB (model + 500 MB): "
            f"ratio {peak / target:.2f}"
        )
        print("summary text:", out["summary"][:600])


if __name__ == "__main__":
    main()
