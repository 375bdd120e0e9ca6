"""One long line vs the same text in ordinary lines: counting and packing must stay linear.

    python bench/long_lines.py [--mb 50] [--ctx 32768]

Writes ``--mb`` megabytes of generated prose (sentences of common words, ~75-character lines,
a blank line between paragraphs) and the same text as ONE line (every newline a space), then
runs, each in a fresh DSV2_HOME (nothing cached), with the DeepSeek-V2 vocabulary:

- count: ``dsv2 pack FILE --json --tokenizer deepseek-v2`` (exact token count of every segment);
- pack:  ``dsv2 summarize FILE --dry-run --json --tokenizer deepseek-v2 --ctx N`` (the input cut
  into map-reduce chunks that fit the window, every chunk counted).

The baseline is the prose in lines, measured in the same run. Target (issue 20): the single line
within 3x of it at 50 MB, the documented size. Before the fix a 2 MB line took 78-133 s to pack
(quadratic); a 50 MB one never finished. Smaller --mb gives a quicker look; the ratio is what counts.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_COMMON = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so no will more about can said up out them "
    "some what into could other time these two may then do first any my now such like our over man me even most "
    "made after also did many before must through back years where much your way well down should because each "
    "just those people how too little state good very make world still own see men work long get here between "
    "both life being under never day same another know while last might us great old year off come since against "
    "go came right used take three harbour ferry contract report council tide schedule budget engine river"
)
WORDS = _COMMON.split()


def prose(n_bytes: int, seed: int = 1) -> str:
    """Sentences of common words in ~75-character lines, paragraphs of 4-10 lines."""
    rng = random.Random(seed)
    lines: list[str] = []
    size = 0
    line: list[str] = []
    width = 0
    in_paragraph = 0
    paragraph = rng.randint(4, 10)
    sentence = 0
    while size < n_bytes:
        word = rng.choice(WORDS)
        if sentence == 0:
            word = word.capitalize()
        sentence += 1
        if sentence > rng.randint(6, 18):
            word += rng.choice(".....,;:?!")
            sentence = 0 if word[-1] in ".?!" else sentence
        line.append(word)
        width += len(word) + 1
        if width >= 75:
            text = " ".join(line)
            lines.append(text)
            size += len(text) + 1
            line, width = [], 0
            in_paragraph += 1
            if in_paragraph >= paragraph:
                lines.append("")
                size += 1
                in_paragraph, paragraph = 0, rng.randint(4, 10)
    return "\n".join(lines) + "\n"


def run(cmd: list[str]) -> float:
    env = {**os.environ, "DSV2_HOME": tempfile.mkdtemp(prefix="dsv2-bench-"), "DSV2_MAX_INPUT_FILE": "1G"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0, help="megabytes of text (default 50: the target size)")
    ap.add_argument("--ctx", type=int, default=32768, help="window for the packing run")
    args = ap.parse_args()
    dsv2 = [sys.executable, "-m", "dsv2cli"]
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "prose.txt"
        one = Path(tmp) / "one-line.txt"
        text = prose(int(args.mb * 1_000_000))
        lines.write_text(text)
        one.write_text(text.replace("\n", " ").rstrip() + "\n")
        del text
        print(f"input: {args.mb:g} MB of prose: {lines.stat().st_size:,} bytes in lines, the same as one line")
        results = {}
        for name, path in (("lines", lines), ("one line", one)):
            count = run([*dsv2, "pack", str(path), "--json", "--tokenizer", "deepseek-v2"])
            pack = run(
                [
                    *dsv2,
                    "summarize",
                    str(path),
                    "--dry-run",
                    "--json",
                    "--tokenizer",
                    "deepseek-v2",
                    "--ctx",
                    f"{args.ctx}",
                ]
            )
            results[name] = (count, pack)
            print(f"  {name:8}  count {count:7.1f} s   pack {pack:7.1f} s", flush=True)
        (c0, p0), (c1, p1) = results["lines"], results["one line"]
        print(f"count: one line {c1:.1f} s vs lines {c0:.1f} s = {c1 / c0:.2f}x (target <= 3x at 50 MB)")
        print(f"pack:  one line {p1:.1f} s vs lines {p0:.1f} s = {p1 / p0:.2f}x (target <= 3x at 50 MB)")


if __name__ == "__main__":
    main()
