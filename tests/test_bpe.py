"""dsv2cli.bpe counts exactly what llama.cpp counts, or declines.

Every comparison is against the real llama.cpp tokenizer of the same GGUF, for both kinds of
pre-tokenizer it reproduces: SmolLM2's (``smollm``: digits split off, then GPT-2's pattern) and
DeepSeek-V2's (``deepseek-llm``: six regular expressions in turn, and user-defined tokens that
llama.cpp cuts out of plain text).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from dsv2cli.bpe import BpeCounter, read_vocabulary
from dsv2cli.packing import count_context, render_context
from dsv2cli.sources import load_repo
from dsv2cli.tokens import CountCache, Tokenizer, named_tokenizer_path

ROOT = Path(__file__).resolve().parent.parent

EDGE_CASES = [
    "",
    "x",
    " ",
    "\n",
    "   \n\n\t  x",
    "trailing spaces   ",
    "a  1  b 22 c   333",
    "it's they're we've I'm we'll he'd IT'S don''t '",
    "3.14159, 1,000,000 and 2024-06-30; v1.2.3-rc4",
    "\r\n\r\nwindows\r\nlines \r\n",
    "tabs\tand\x0bvertical\x0cfeeds\x1cfile\x1fseparators",
    "nbsp\xa0here, ideographic\u3000space, next\x85line, thin\u2009space",
    "Über naïve café — “quotes” ‘single’ … → ← ≤ ≥ ±",
    "Ελληνικά κείμενα, русский текст, العربية, עברית, हिन्दी, ไทย",
    "中文文本，日本語のテキスト、한국어 텍스트。",
    "emoji 🎉🚀 flags 🇩🇪 family 👨‍👩‍👧 skin 👍🏽",
    "digits ٣٤٥ ① ² ½ Ⅻ 〇",
    "<|im_start|>user<|im_end|><|endoftext|><｜end▁of▁sentence｜>",
    "control \x00\x01\x02\x7f bytes",
    "combining e\u0301 a\u0308 and zero\u200bwidth\u200djoiner",
    "    def f(x):\n        return x  # 42\n\n\nclass C:\n    pass\n",
    "für Müller, Straße: Ö ü ø ÿ À Á þ ý ú û ù õ ÷ (DeepSeek's user-defined tokens)",
    "[PAD100015] x[PAD100016]y [PAD1000] [PAD",
    "x = 10  # c\n  .foo\na.  ,b\n\x01 \x02 12 \x03  \n𝐀𝐁 ℂ ﬀ Ｆｕｌｌ！",
]
VOCABULARIES = ["smollm2", "deepseek-v2"]


@pytest.fixture(scope="module", params=VOCABULARIES)
def vocab_path(request: pytest.FixtureRequest, smollm2: Path) -> Path:
    return smollm2 if request.param == "smollm2" else named_tokenizer_path(request.param)


@pytest.fixture(scope="module")
def pair(vocab_path: Path) -> tuple[BpeCounter, Tokenizer]:
    """The fast counter and llama.cpp's tokenizer of one vocabulary."""
    loaded = BpeCounter.load(vocab_path)
    assert loaded is not None and loaded.reproduced
    return loaded, Tokenizer.load(vocab_path)


def test_reads_the_vocabulary_from_the_gguf_metadata(smollm2: Path) -> None:
    vocab = read_vocabulary(smollm2)
    assert vocab["tokenizer.ggml.model"] == b"gpt2" and vocab["tokenizer.ggml.pre"] == b"smollm"
    assert len(vocab["tokenizer.ggml.tokens"]) == len(vocab["tokenizer.ggml.token_type"]) == 49152
    assert vocab["tokenizer.ggml.merges"][0] == "Ġ t".encode()


def test_token_ids_match_llama_cpp_on_edge_cases(pair: tuple[BpeCounter, Tokenizer]) -> None:
    counter, tokenizer = pair
    for text in EDGE_CASES:
        assert counter.encode(text) == tokenizer.encode(text), repr(text)
        counted = counter.count(text)  # pieces are counted by another path than encode's
        assert counted == tokenizer.count(text) or (counted is None and _mostly_cjk(text)), repr(text)


def test_text_mostly_in_cjk_is_left_to_llama_cpp(pair: tuple[BpeCounter, Tokenizer]) -> None:
    """llama.cpp is the faster there (pieces are whole clauses); ids stay exact either way."""
    counter, tokenizer = pair
    text = "本合同由甲方与乙方签订，双方经友好协商达成一致。" * 20
    assert counter.count(text) is None
    assert counter.encode(text) == tokenizer.encode(text)
    assert counter.count("A contract (本合同) in English. " * 20) == tokenizer.count(
        "A contract (本合同) in English. " * 20
    )


def test_counts_match_llama_cpp_on_real_code_and_documents(pair: tuple[BpeCounter, Tokenizer]) -> None:
    counter, tokenizer = pair
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted((ROOT / "dsv2cli").rglob("*.py"))]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted((ROOT / "prompts").iterdir())]
    texts.append(render_context(load_repo(str(ROOT / "samples"))[0]))
    counted = counter.count_many(texts)
    assert None not in counted
    assert counted == [tokenizer.count(t) for t in texts]


def _mostly_cjk(text: str) -> bool:
    return sum(0x3040 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF for c in text) > len(text) // 5


def _alphabet() -> list[str]:
    """Characters from every class the pre-tokenizer tells apart, in many scripts."""
    picks = " \t\n\r\x0b\x0c\x85\xa0\u2009\u3000'sStTmMdDlLrReEvV0123456789.,;:-_()[]{}<>\"'`~!?@#$%^&*+=|/\\"
    picks += "éüßçñøÆŒ" + "αβγΩ" + "жщЮ" + "שלום" + "مرحبا" + "नमस्" + "ไทย" + "中文字" + "ひらカタ" + "한국"
    picks += "٣①²½Ⅻ〇" + "\u0301\u0308\u200b\u200d" + "🎉🚀👍🏽" + "—“”…→≤€£¥"
    return list(picks)


def test_random_text_matches_llama_cpp_token_for_token(pair: tuple[BpeCounter, Tokenizer]) -> None:
    counter, tokenizer = pair
    rng = random.Random(20261128)
    alphabet = _alphabet()
    words = ["the", " the", "def", "return", "  ", "\n\n", "123", "x1", "it's", "naïve", "東京", "   \n"]
    for _ in range(3000):
        text = "".join(
            rng.choice(alphabet) if rng.random() < 0.7 else rng.choice(words) for _ in range(rng.randint(0, 40))
        )
        expected = tokenizer.encode(text)
        assert counter.encode(text) == expected, repr(text)
        counted = counter.count(text)
        assert counted == len(expected) or (counted is None and _mostly_cjk(text)), repr(text)


def test_the_counting_route_cuts_the_same_pieces_as_the_plain_reading(pair: tuple[BpeCounter, Tokenizer]) -> None:
    """``count`` takes one-pass patterns where ``encode`` applies llama.cpp's rules as written
    (checked token for token above); equal counts could hide different pieces, so compare those."""
    counter, _ = pair
    rng = random.Random(7)
    alphabet = [*_alphabet(), "\x01", "\x1f", "😀", "─", "中", "é", "→", "＋", "Ａ"]
    texts = [*EDGE_CASES, *(p.read_text(encoding="utf-8") for p in sorted((ROOT / "dsv2cli").rglob("*.py")))]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(5000)]
    for text in texts:
        assert counter.pieces(text) == Counter(counter.split(text)), repr(text)


def test_every_assigned_code_point_is_classified_as_llama_cpp_does(pair: tuple[BpeCounter, Tokenizer]) -> None:
    """Each character between letters, digits, spaces and punctuation: a character the two
    classify differently would be split differently, and the ids would differ."""
    chars = [
        chr(c)
        for c in range(0, 0x30000)
        if unicodedata.category(chr(c)) not in ("Cn", "Cs") and not 0xE000 <= c <= 0xF8FF  # private use
    ]

    counter, tokenizer = pair

    def probe(c: str) -> str:  # under a fifth of it c, so that counting does not decline CJK
        return f"a{c}b {c}1{c}{c} {c}. ?{c} and a few words\n"

    for start in range(0, len(chars), 48):
        chunk = chars[start : start + 48]
        text = "".join(probe(c) for c in chunk)
        ids = counter.encode(text)
        assert ids is not None, f"declined U+{ord(chunk[0]):04X}..U+{ord(chunk[-1]):04X}"
        if (
            ids != tokenizer.encode(text)
            or counter.count(text) != len(ids)
            or counter.pieces(text) != Counter(counter.split(text))
        ):
            wrong = [
                c
                for c in chunk
                if counter.encode(probe(c)) != tokenizer.encode(probe(c))
                or counter.count(probe(c)) != tokenizer.count(probe(c))
                or counter.pieces(probe(c)) != Counter(counter.split(probe(c)))
            ]
            pytest.fail(f"classified differently from llama.cpp: {[f'U+{ord(c):04X}' for c in wrong]}")


def test_declines_what_it_cannot_count_exactly(pair: tuple[BpeCounter, Tokenizer]) -> None:
    counter, tokenizer = pair
    unassigned = "\u0378"  # no character in any Unicode version so far
    assert unicodedata.category(unassigned) == "Cn"
    assert counter.count(f"text {unassigned} here") is None
    assert counter.count("lone \ud800 surrogate") is None
    assert counter.count("plain text") == tokenizer.count("plain text")


def test_vocabularies_it_does_not_reproduce_are_left_to_llama_cpp(minilm_gguf: Path, tmp_path: Path) -> None:
    assert BpeCounter.load(minilm_gguf) is None  # WordPiece
    assert BpeCounter.load(tmp_path / "missing.gguf") is None
    (tmp_path / "not.gguf").write_bytes(b"not a gguf at all")
    assert BpeCounter.load(tmp_path / "not.gguf") is None


def test_a_gpt2_style_vocabulary_with_user_defined_tokens_is_left_to_llama_cpp(smollm2: Path, tmp_path: Path) -> None:
    """llama.cpp cuts user-defined tokens out of plain text; only DeepSeek's splitter does that too."""
    import gguf

    vocab = read_vocabulary(smollm2)
    path = tmp_path / "user-defined.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list([t.decode("utf-8", "replace") for t in vocab["tokenizer.ggml.tokens"]])
    writer.add_token_types([4 if i == 100 else t for i, t in enumerate(vocab["tokenizer.ggml.token_type"])])
    writer.add_token_merges([m.decode("utf-8", "replace") for m in vocab["tokenizer.ggml.merges"]])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    counter = BpeCounter.load(path)
    assert counter is not None and not counter.reproduced
    assert counter.count("any text") is None and counter.encode("any text") is None


def test_the_count_cache_falls_back_to_llama_cpp_for_declined_texts(smollm2: Path, tmp_path: Path) -> None:
    tokenizer = Tokenizer.load(smollm2)
    cache = CountCache(tokenizer, tmp_path / "counts.sqlite", "smollm2", smollm2)
    texts = ["plain ascii", "odd \u0378 character", "café"]
    assert cache.count_many(texts) == [tokenizer.count(t) for t in texts]
    cache.close()


# Forking is only done by a single-threaded process (bpe._can_fork), which the test process may
# not be (server fixtures, thread pools): these run in a fresh interpreter, as the CLI does.
FORK_SCRIPT = """
import os, sys
from pathlib import Path
from dsv2cli import bpe
from dsv2cli.bpe import BpeCounter

model, fail = Path(sys.argv[1]), sys.argv[2] == "fail"
texts = [p.read_text(encoding="utf-8") for p in sorted(Path("dsv2cli").rglob("*.py"))]
serial = BpeCounter.load(model).count_many(texts, workers=1)
forks, parent, real_fork, real_count = [], os.getpid(), bpe._fork, BpeCounter._count_queued

def counting_fork(work):
    forks.append(1)
    return real_fork(work)

def fail_in_child(self, texts, batches, queue):
    if fail and os.getpid() != parent:
        assert bpe._take(queue) > 0  # takes the largest text, then dies
        raise RuntimeError("helper failed")
    return real_count(self, texts, batches, queue)

bpe._fork, BpeCounter._count_queued, bpe.PARALLEL_MIN_CHARS = counting_fork, fail_in_child, 1
forked = BpeCounter.load(model).count_many(texts, workers=3)
assert forks == [1, 1], forks
assert forked == serial
print("ok", len(texts))
"""


@pytest.mark.parametrize("helper", ["works", "fail"])
def test_forked_counting_matches_counting_in_one_process(helper: str, smollm2: Path) -> None:
    """Helpers take texts from one queue; what a failed helper took is counted by the parent."""
    proc = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(smollm2), helper], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr


@pytest.mark.parametrize("tokenizer_option", [[], ["--tokenizer", "deepseek-v2"]])
def test_pack_json_counts_a_repository_without_loading_llama_cpp(
    tokenizer_option: list[str], smollm2: Path, tmp_path: Path
) -> None:
    """The count a user sees is llama.cpp's, though llama.cpp is never imported to get it."""
    env = {**os.environ, "DSV2_HOME": str(tmp_path / "home")}
    code = str(ROOT / "samples" / "code")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dsv2cli", "pack", "--repo", code, "--json", *tokenizer_option],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert " llama_cpp" not in proc.stderr
    import json

    payload = json.loads(proc.stdout)
    docs, _ = load_repo(code)
    vocab = named_tokenizer_path("deepseek-v2") if tokenizer_option else smollm2
    assert payload["context_tokens"] == Tokenizer.load(vocab).count(render_context(docs))
    segment_tokens = [s["tokens"] for d in payload["documents"] for s in d["segments"]]
    assert sum(segment_tokens) == payload["context_tokens"]
    assert len(segment_tokens) == sum(len(d.segments) for d in docs) and all(n > 0 for n in segment_tokens)


def test_user_defined_tokens_that_overlap_are_not_reproduced() -> None:
    from dsv2cli.bpe import _overlapping

    assert _overlapping(["ab", "bc"]) and _overlapping(["abc", "c"])
    assert not _overlapping(["ø", "ü", "[PAD100015]", "[PAD100016]", "ab", "abc"])


def test_counting_a_context_with_and_without_the_fast_counter_agrees(smollm2: Path, tmp_path: Path) -> None:
    tokenizer = Tokenizer.load(smollm2)
    docs, _ = load_repo(str(ROOT / "dsv2cli"))
    slow = CountCache(tokenizer, tmp_path / "slow.sqlite", "smollm2")
    fast = CountCache(lambda: pytest.fail("llama.cpp loaded"), tmp_path / "fast.sqlite", "smollm2", smollm2)
    assert count_context(docs, fast.count_joined) == count_context(docs, slow.count_joined)
    slow.close()
    fast.close()
