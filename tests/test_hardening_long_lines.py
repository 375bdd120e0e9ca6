"""Long lines and long words (issue 20, part 1): counted exactly, in linear time, without crashing.

Speed is measured by bench/long_lines.py; here the work is counted instead of timed: how many
characters the line-cutter hands to the tokenizer, and that llama.cpp never sees a run long
enough to overflow its stack (it died of SIGSEGV on a 30,000-letter word with the DeepSeek
vocabulary). Runs that could crash go to a subprocess, so a crash fails the test, not the run.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from dsv2cli.bpe import _BYTE_SYMBOLS, _LONG_PIECE, BpeCounter
from dsv2cli.packing import _hard_split
from dsv2cli.tokens import LONG_RUN, Tokenizer

ALPHABETS = ("acgt", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*()_+", "aé ü€🙂")


def _vocabularies(deepseek_vocab: Path, smollm2: Path) -> list[Path]:
    return [deepseek_vocab, smollm2]


def test_the_heap_merge_gives_the_list_scan_result(deepseek_vocab: Path, smollm2: Path) -> None:
    rng = random.Random(7)
    for vocab in _vocabularies(deepseek_vocab, smollm2):
        counter = BpeCounter.load(vocab)
        assert counter is not None and counter.reproduced
        for alphabet in ALPHABETS:
            for length in (_LONG_PIECE + 1, 700):
                word = "".join(rng.choice(alphabet) for _ in range(length))
                symbols = [_BYTE_SYMBOLS[b] for b in word.encode()]
                assert counter._merge_long(list(symbols)) == _list_scan(counter, symbols)


def _list_scan(counter: BpeCounter, symbols: list[bytes]) -> list[bytes]:
    """The quadratic reference: lowest rank first, leftmost among equals."""
    ranks = counter._ranks
    symbols = list(symbols)
    while True:
        best = None
        for i in range(len(symbols) - 1):
            rank = ranks.get(symbols[i] + b" " + symbols[i + 1])
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            return symbols
        i = best[1]
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]


def test_long_words_count_as_llama_cpp_counts_them(deepseek_vocab: Path, smollm2: Path) -> None:
    """Up to 12,000 characters llama.cpp survives: the Python counter must agree token for token."""
    rng = random.Random(3)
    for vocab in _vocabularies(deepseek_vocab, smollm2):
        counter = BpeCounter.load(vocab)
        llama = Tokenizer.load(vocab)
        assert counter is not None
        for alphabet in ALPHABETS:
            word = "".join(rng.choice(alphabet) for _ in range(12_000))
            text = f"The sequence {word} ends here.\n"
            assert counter.encode(text) == llama._llama.tokenize(text.encode(), add_bos=False, special=False)


_CRASH_PROBE = """
import sys
from pathlib import Path
from dsv2cli.bpe import BpeCounter
from dsv2cli.tokens import Tokenizer
vocab, mode = Path(sys.argv[1]), sys.argv[2]
tok = Tokenizer.load(vocab)
if mode == "thread":  # as for a vocabulary bpe.py does not reproduce: llama.cpp in a deep-stack thread
    tok.__dict__["_bpe"] = None
word = "acgt" * 15_000  # 60,000 letters: twice what overflowed llama.cpp's stack
text = "x " + word + " y"
ids = tok.encode(text)
expected = BpeCounter.load(vocab).encode(text)
print(len(ids), tok.count(text), ids == expected)
"""


@pytest.mark.parametrize("mode", ["python", "thread"])
def test_a_60k_letter_word_does_not_crash_the_tokenizer(deepseek_vocab: Path, mode: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_PROBE, str(deepseek_vocab), mode], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    n, counted, same = proc.stdout.split()
    assert int(n) == int(counted) > 0 and same == "True"


def test_cutting_a_long_line_counts_each_character_a_bounded_number_of_times(deepseek_vocab: Path) -> None:
    counter = BpeCounter.load(deepseek_vocab)
    assert counter is not None
    rng = random.Random(5)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    line = " ".join(rng.choice(words) for _ in range(60_000))  # ~350 KB, no newline
    counted_chars = 0

    def count(text: str) -> int:
        nonlocal counted_chars
        counted_chars += len(text)
        n = counter.count(text)
        assert n is not None
        return n

    limit = 2000
    parts = _hard_split(line, limit, count)
    assert "".join(parts) == line
    assert all(counter.count(p) <= limit - 8 for p in parts)  # type: ignore[operator]
    assert len(parts) > 40
    # each character is counted a handful of times (doubling, then shrinking by quarters), not once per part
    assert counted_chars < 12 * len(line)


def test_a_long_run_is_recognised_only_when_long(smollm2_tokenizer: Tokenizer) -> None:
    from dsv2cli.tokens import has_long_run

    assert has_long_run("a" * LONG_RUN) and has_long_run(" " * LONG_RUN)
    assert has_long_run("word " + "b" * LONG_RUN + " end") and has_long_run("x" + " " * LONG_RUN + "y")
    assert not has_long_run("a" * (LONG_RUN - 1)) and not has_long_run(" " + "b" * (LONG_RUN - 1) + " ")
    assert not has_long_run(("word " * LONG_RUN)[: 5 * LONG_RUN])
    text = "x" * (LONG_RUN + 10)
    assert smollm2_tokenizer.encode(text) == smollm2_tokenizer._llama.tokenize(
        text.encode(), add_bos=False, special=False
    )


def test_summarize_dry_run_of_a_word_longer_than_llama_cpp_survives(tmp_path: Path) -> None:
    """A 40,000-letter line of DNA through the whole command with the DeepSeek vocabulary (llama.cpp
    alone overflowed its stack at 30,000): cut into chunks, no crash."""
    from .conftest import dsv2_cmd

    rng = random.Random(11)
    dna = tmp_path / "dna.txt"
    dna.write_text("".join(rng.choice("acgt") for _ in range(40_000)) + "\n")
    proc = subprocess.run(
        [*dsv2_cmd(), "summarize", str(dna), "--dry-run", "--json", "--tokenizer", "deepseek-v2", "--ctx", "4096"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"strategy": "map-reduce"' in proc.stdout


def test_encode_takes_the_fast_route_in_order(deepseek_vocab: Path, smollm2: Path) -> None:
    """``encode`` orders the pieces the way ``count`` finds them (one pass, steps only for the lines
    that need them): the same pieces as the plain reading, in the same order."""
    rng = random.Random(13)
    alphabet = "abc XYZ 09 \n\n\t.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`éüñß€→中文日本語한국어🙂\u00a0\u2003[PAD100015]"
    for vocab in _vocabularies(deepseek_vocab, smollm2):
        counter = BpeCounter.load(vocab)
        assert counter is not None
        pre = counter._pre
        for _ in range(200):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
            assert pre.ordered(text) == pre.split(text), repr(text)
