"""Page recall on real 10-K/10-Q filings (FinanceBench): is the gold evidence page inside the packed context?

    python bench/financebench_recall.py --financebench DIR_OR_GITDIR [--filings 20] [--bm25-only]
        [--windows 8192,32768] [--home DIR]

DIR_OR_GITDIR is a checkout of github.com/patronus-ai/financebench (``data/`` and ``pdfs/``), or its
git directory without a work tree (files are read with ``git show HEAD:path``). The PDFs are public
SEC filings; they are read from there (or extracted into the bench home), never copied into dsv2.

The open-source set has 150 questions over 84 filings, each with ``evidence`` entries naming the
page (``evidence_page_num``) that holds the answer. The script checks whether those numbers are 0-
or 1-based by comparing each evidence page's text with the PDF's pages, and prints what it found.

Filings are taken in a fixed order (sha256 of their name), skipping any whose PDF is absent from the
copy; ``--filings N`` keeps the first N and all their questions. The questions are split by a hash of
their ``financebench_id`` into a tuning half and a held-out half; both are reported.

Each filing is read by dsv2's own reader (``dsv2cli.sources.load_inputs``) and retrieved from as
``dsv2 ask`` does (``index.retrieve``: the corpus index under the bench home, the default MiniLM
embedder, hybrid ranking, greedy packing counted with DeepSeek-V2's tokenizer), into each window
less 1,024 tokens kept for the prompt and the answer (ask's default --max-tokens 512, the prompt,
its slack). Indexes are cached under --home, so a second run only ranks. Same run, same index:
BM25 alone (dsv2's chunks), and the reference of BM25 over whole pages packed greedily.

A filing that fits a window whole counts as found there for dsv2's rankings: ask then sends it whole.

Target on the held-out half: gold page inside the packed context in >= 0.75 of questions at 8k and
>= 0.95 at 32k. Also printed: how many of the filings fit whole at 32k and 128k (ask then sends the
whole filing, no retrieval).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsv2cli.index import resolve_embedder, retrieve  # noqa: E402 - after the path tweak, so a checkout runs
from dsv2cli.index.bm25 import BM25, BM25Doc  # noqa: E402
from dsv2cli.index.ranking import rank  # noqa: E402
from dsv2cli.index.retrieve import open_index  # noqa: E402
from dsv2cli.index.select import SelectedSource, pack_chunks  # noqa: E402
from dsv2cli.sources import load_inputs  # noqa: E402
from dsv2cli.tokens import Tokenizer, named_tokenizer_path  # noqa: E402

RESERVED = 1024  # prompt and answer tokens kept out of the document budget
QUESTIONS = "data/financebench_open_source.jsonl"
WHOLE_WINDOWS = (32768, 131072)


def digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def held_out(row: dict[str, Any]) -> bool:
    return digest(str(row["financebench_id"])) % 2 == 1


class FinanceBench:
    """The questions and PDFs of a FinanceBench checkout or bare git directory."""

    def __init__(self, path: Path, cache: Path) -> None:
        self.path = path
        self.checkout = (path / QUESTIONS).is_file()
        self.cache = cache
        if not self.checkout:
            probe = subprocess.run(["git", "-C", str(path), "rev-parse", "--git-dir"], capture_output=True)
            if probe.returncode != 0:
                sys.exit(f"{path}: neither a FinanceBench checkout (no {QUESTIONS}) nor a git directory")

    def _git(self, name: str) -> bytes | None:
        proc = subprocess.run(["git", "-C", str(self.path), "show", f"HEAD:{name}"], capture_output=True)
        return proc.stdout if proc.returncode == 0 and proc.stdout else None

    def rows(self) -> list[dict[str, Any]]:
        data = (self.path / QUESTIONS).read_bytes() if self.checkout else self._git(QUESTIONS)
        if data is None:
            sys.exit(f"{self.path}: {QUESTIONS} not found")
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    def pdf(self, doc: str) -> Path | None:
        """The filing's PDF, or None when the copy lacks it (a few blobs are absent from mirrors)."""
        if self.checkout:
            path = self.path / "pdfs" / f"{doc}.pdf"
            return path if path.is_file() and path.read_bytes()[:5] == b"%PDF-" else None
        target = self.cache / f"{doc}.pdf"
        if not target.is_file():
            data = self._git(f"pdfs/{doc}.pdf")
            if data is None or not data.startswith(b"%PDF-"):
                return None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return target


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{3,}|\d[\d,.]*", text.lower()))


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / (len(a | b) or 1)


def pages_of(sources: list[SelectedSource]) -> set[int]:
    return {s.location.page for s in sources if s.location.page is not None}


def page_packing(pages: dict[int, str], question: str, budget: int, count: dict[int, int]) -> set[int]:
    """The reference: BM25 over whole pages, best first, each page taken while it fits."""
    numbers = sorted(pages)
    scores = BM25([BM25Doc(pages[n]) for n in numbers]).scores(question)
    taken: set[int] = set()
    used = 0
    for i in sorted(scores, key=lambda i: (-scores[i], i)):
        tokens = count[numbers[i]]
        if used + tokens <= budget:
            taken.add(numbers[i])
            used += tokens
    return taken


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--financebench", type=Path, help="a FinanceBench checkout or its git directory")
    ap.add_argument("--filings", type=int, default=20, help="filings taken in hash order (0: all present)")
    ap.add_argument("--windows", default="8192,32768")
    ap.add_argument("--bm25-only", action="store_true", help="no embedder: dsv2's BM25 ranking alone (fast)")
    ap.add_argument("--home", type=Path, help="DSV2_HOME for the indexes (kept, so a rerun only ranks)")
    args = ap.parse_args()
    if args.financebench is None:
        print("skipped: no --financebench DIR (a checkout of github.com/patronus-ai/financebench)")
        return
    windows = [int(w) for w in args.windows.split(",")]
    scratch = None if args.home else tempfile.TemporaryDirectory(prefix="dsv2-financebench-")
    home = args.home or Path(scratch.name if scratch else ".")
    bench = FinanceBench(args.financebench, home / "financebench-pdfs")
    rows = bench.rows()
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_doc.setdefault(row["doc_name"], []).append(row)
    tokenizer = Tokenizer.load(named_tokenizer_path("deepseek-v2"))
    embedder = None if args.bm25_only else resolve_embedder(home).embedder
    method = "bm25" if embedder is None else "hybrid"

    chosen: list[tuple[str, Path]] = []
    absent: list[str] = []
    for doc in sorted(by_doc, key=digest):
        if args.filings and len(chosen) >= args.filings:
            break
        pdf = bench.pdf(doc)
        if pdf is None:
            absent.append(doc)
        else:
            chosen.append((doc, pdf))

    rankings: list[str] = ["dsv2 " + method, "dsv2 bm25", "bm25 whole pages"]
    if embedder is None:
        rankings = rankings[1:]
    hits: dict[tuple[str, bool, int], int] = {}
    counts = {True: 0, False: 0}
    base = {"0-based": 0, "1-based": 0}
    fits = dict.fromkeys(WHOLE_WINDOWS, 0)
    build_s = 0.0
    chunks_total = 0
    started = time.perf_counter()
    for k, (doc, pdf) in enumerate(chosen, 1):
        documents, _ = load_inputs([str(pdf)])
        pages = {s.location.page: s.text for d in documents for s in d.segments if s.location.page is not None}
        whole = tokenizer.count("\n\n".join(pages[n] for n in sorted(pages)))
        for window in WHOLE_WINDOWS:
            fits[window] += whole <= window - RESERVED
        page_words = {n: words(t) for n, t in pages.items()}
        page_tokens = {n: tokenizer.count(t) for n, t in pages.items()}
        t0 = time.perf_counter()
        index = open_index(home, [pdf])
        if embedder is None:
            index.update(documents, None)
        for j, row in enumerate(by_doc[doc]):
            gold: set[int] = set()
            for ev in row["evidence"]:
                num = int(ev["evidence_page_num"])
                full = words(ev.get("evidence_text_full_page") or ev["evidence_text"])
                as0 = overlap(full, page_words.get(num + 1, set()))
                as1 = overlap(full, page_words.get(num, set()))
                base["0-based" if as0 >= as1 else "1-based"] += 1
                gold.add(num + 1)  # 0-based in the data (checked above, printed below)
            split = held_out(row)
            counts[split] += 1
            question = row["question"]
            budget = max(windows) - RESERVED
            found = None
            if embedder is not None:
                found = retrieve(
                    question,
                    documents,
                    corpus=[pdf],
                    home=home,
                    budget=budget,
                    count_tokens=tokenizer.count,
                    embedder=embedder,
                )
                if j == 0:
                    build_s += time.perf_counter() - t0
                    chunks_total += found.candidates
            chunks = index.chunks()
            if embedder is None and j == 0:
                build_s += time.perf_counter() - t0
                chunks_total += len(chunks)
            ranked_bm25 = rank(chunks, question, method="bm25")
            for window in windows:
                room = window - RESERVED
                picked: dict[str, set[int]] = {
                    "dsv2 bm25": pages_of(pack_chunks(ranked_bm25, room, tokenizer.count)),
                    "bm25 whole pages": page_packing(pages, question, room, page_tokens),
                }
                if found is not None:
                    picked["dsv2 " + method] = pages_of(found.repack(room).sources)
                if whole <= room:  # ask sends a filing that fits whole as it is, without retrieval
                    picked["dsv2 " + method] = picked["dsv2 bm25"] = set(pages)
                for name, got in picked.items():
                    key = (name, split, window)
                    hits[key] = hits.get(key, 0) + bool(got & gold)
        print(
            f"[{k}/{len(chosen)}] {doc}: {len(pages)} pages, {whole:,} tokens, "
            f"{len(by_doc[doc])} questions ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    del embedder  # free llama.cpp's model now, not in the interpreter's teardown
    gc.collect()
    if scratch is not None:  # indexes and extracted PDFs of a run without --home go with it
        scratch.cleanup()

    n_questions = counts[False] + counts[True]
    print(
        f"{len(chosen)} FinanceBench filings ({len(absent)} skipped, PDF absent from the copy), "
        f"{n_questions} questions ({counts[False]} tuning, {counts[True]} held out)"
    )
    print(
        f"evidence_page_num: {base['0-based']} of {sum(base.values())} evidence pages match PDF page num+1 "
        f"better than page num (0-based)"
    )
    per_filing = build_s / max(len(chosen), 1)
    print(f"index build ({method}): {chunks_total} chunks in {build_s:.0f} s ({per_filing:.1f} s/filing)")
    print("filings that fit whole: " + ", ".join(f"{fits[w]} of {len(chosen)} at {w // 1024}k" for w in WHOLE_WINDOWS))
    print("| ranking | split | questions | " + " | ".join(f"{w // 1024}k" for w in windows) + " |")
    print("|---|---|---|" + "---|" * len(windows))
    for name in rankings:
        for split, label in ((False, "tuning"), (True, "held-out")):
            n = counts[split] or 1
            cells = " | ".join(f"{hits.get((name, split, w), 0) / n:.2f}" for w in windows)
            print(f"| page recall {name} | {label} | {counts[split]} | {cells} |")
    print("target on the held-out half: >= 0.75 at 8k, >= 0.95 at 32k")


if __name__ == "__main__":
    main()
