"""Planning a summary of an input too big for the window: counting once vs building the prompt first.

    python bench/plan.py [--pdf REPORT.pdf | --pages 150] [--ctx 8192] [--repeat 3]

What ``dsv2 summarize`` does before any model call, with DeepSeek-V2's vocabulary
(``--tokenizer deepseek-v2``), three ways, in one run:

- before (the planners until 2026-11-30): the whole prompt built and tokenized to learn the
  input's size, then every page counted again to cut map-reduce chunks;
- now, first run: the context counted once, part by part, through an empty token-count cache
  (``packing.count_context`` over ``tokens.CountCache``), the strategy chosen and the chunks cut
  from those counts (``summarize.plan(counted=...)``);
- now, again: the same with the cache filled (a second command on the same file).

The same chunks come out every way but the sizes (a part's count includes its newlines); the
ratios are against "before" in this run. Default input: the generated 150-page annual report
(bench/annual_report.py); ``--pdf`` a real one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annual_report import write_report  # noqa: E402
from count import best  # noqa: E402 - the same best-of timer

from dsv2cli import prompts, summarize  # noqa: E402 - after the path tweak, so a checkout runs
from dsv2cli.chat import ModelFacts  # noqa: E402
from dsv2cli.packing import PIECE_JOIN_TOKENS, count_context, make_pieces, render_context  # noqa: E402
from dsv2cli.sources import load  # noqa: E402
from dsv2cli.strategies.map_reduce import MapReduce  # noqa: E402
from dsv2cli.tokens import CountCache, Tokenizer, named_tokenizer_path, tokenizer_key  # noqa: E402

FACTS = ModelFacts("deepseek-v2", "deepseek2", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, help="a real report (default: the generated one)")
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    vocab = named_tokenizer_path("deepseek-v2")
    tokenizer = Tokenizer.load(vocab)
    spec = summarize.style_spec("brief")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pdf = args.pdf
        if pdf is None:
            pdf = tmp / "report.pdf"
            write_report(pdf, args.pages)
        docs = [load(str(pdf))]

        def before() -> int:
            summarize.build_prompt(tokenizer, FACTS, spec, "")  # the template's own tokens, as now
            prompt = summarize.build_prompt(tokenizer, FACTS, spec, render_context(docs))
            mapper = MapReduce(
                tokenizer, FACTS.architecture, None, spec.system, spec.template, args.ctx, args.max_tokens
            )
            budget = mapper._budget(prompts.load("map"), {"part": "9999", "parts": "9999"})
            make_pieces(docs, budget - PIECE_JOIN_TOKENS, tokenizer.count)
            return len(prompt.ids)

        caches: list[Path] = []

        def now(fresh: bool) -> Callable[[], int]:
            def run() -> int:
                if fresh:
                    caches.append(tmp / f"counts-{len(caches)}.sqlite")
                cache = CountCache(tokenizer, caches[-1], tokenizer_key(vocab), vocab)
                try:
                    counted = count_context(docs, cache.count_joined)
                finally:
                    cache.close()
                plan = summarize.plan(docs, tokenizer, FACTS, spec, args.ctx, args.max_tokens, counted=counted)
                assert plan.strategy == "map-reduce", "the input fits the window: nothing to compare"
                return plan.document_tokens

            return run

        rows = [
            ("before: whole prompt built, then every page counted", *best(args.repeat, before)),
            ("now, first run: counted once (empty count cache)", *best(args.repeat, now(fresh=True))),
            ("now, again: counts cached", *best(args.repeat, now(fresh=False))),
        ]
    print(f"{pdf.name}: {rows[0][2]:,} prompt tokens, window {args.ctx:,} (best of {args.repeat})")
    base = rows[0][1]
    for name, seconds, _ in rows:
        print(f"  {name:54} {seconds:7.3f} s {seconds / base:6.2f}x")


if __name__ == "__main__":
    main()
