"""dsv2's overhead over raw llama-cpp-python, measured in one run (medians of several).

    python bench/overhead.py [--runs 3] [--max-tokens 64] [--model PATH] [--sample FILE]

Both sides use the same model, n_ctx, threads, batch size and sampling (greedy), and the same
prompt token ids (built once by dsv2's own prompt builder). Each run is a fresh process, so the
whole-process ratio includes interpreter start-up, imports and model load.
Targets: whole process <= 1.10; prompt evaluation + generation <= 1.03.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RAW = r"""
import json, sys, time
spec = json.load(open(sys.argv[1]))
import llama_cpp
llm = llama_cpp.Llama(spec["model"], n_ctx=spec["n_ctx"], n_batch=512, n_ubatch=512,
                      n_threads=spec["threads"], n_threads_batch=spec["threads"], n_gpu_layers=0, verbose=False)
t0 = time.perf_counter()
out = llm.create_completion(prompt=spec["ids"], max_tokens=spec["max_tokens"], temperature=0.0,
                            top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, seed=0)
t1 = time.perf_counter()
print(json.dumps({"model_call_s": t1 - t0, "output_tokens": out["usage"]["completion_tokens"],
                  "text": out["choices"][0]["text"]}))
"""


def prompt_ids(model: Path, sample: Path, n_ctx: int, max_tokens: int) -> list[int]:
    from dsv2cli import sources
    from dsv2cli import summarize as summ
    from dsv2cli.ggufmeta import read_gguf
    from dsv2cli.tokens import Tokenizer

    info = read_gguf(model)
    facts = summ.ModelFacts(info.name or "", info.architecture, info.chat_template)
    doc = sources.load(str(sample))
    plan = summ.plan([doc], Tokenizer.load(model), facts, summ.style_spec("brief"), n_ctx, max_tokens)
    return plan.prompt.ids


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from dsv2cli.models import embedded_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("--model", type=Path, default=embedded_model_path())
    ap.add_argument("--sample", type=Path, default=ROOT / "samples" / "harbor-light-annual-report.md")
    args = ap.parse_args()
    threads = os.cpu_count() or 1

    ids = prompt_ids(args.model, args.sample, args.ctx, args.max_tokens)
    env = dict(os.environ, NO_COLOR="1")
    with tempfile.TemporaryDirectory() as tmp:
        env["DSV2_HOME"] = tmp
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(
            json.dumps(
                {
                    "model": str(args.model),
                    "n_ctx": args.ctx,
                    "threads": threads,
                    "max_tokens": args.max_tokens,
                    "ids": ids,
                }
            )
        )
        raw_path = Path(tmp) / "raw.py"
        raw_path.write_text(RAW)
        dsv2 = [
            sys.executable,
            "-m",
            "dsv2cli",
            "summarize",
            str(args.sample),
            "--json",
            "--model",
            str(args.model),
            "--ctx",
            str(args.ctx),
            "--max-tokens",
            str(args.max_tokens),
            "--temperature",
            "0",
            "--threads",
            str(threads),
            "--gpu-layers",
            "0",
            "--no-flash-attn",
            "--no-cache",
        ]
        raw = [sys.executable, str(raw_path), str(spec_path)]
        rows: dict[str, list[tuple[float, float, int]]] = {"dsv2": [], "raw": []}
        for _ in range(args.runs):  # interleave the two so drift on a noisy machine hits both
            wall, out = timed(dsv2, env)
            rows["dsv2"].append((wall, out["timings"]["model_call_s"], out["output_tokens"]))
            wall, out = timed(raw, env)
            rows["raw"].append((wall, out["model_call_s"], out["output_tokens"]))

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[name])

    print(
        f"prompt: {len(ids)} tokens from {args.sample.name}; model {args.model.name}; "
        f"{threads} threads; {args.runs} runs each (medians)"
    )
    print(f"output tokens: dsv2 {[r[2] for r in rows['dsv2']]}, raw {[r[2] for r in rows['raw']]}")
    print(f"{'':28}{'dsv2':>10}{'raw':>10}{'ratio':>8}{'target':>8}")
    for label, i, target in (("whole process (s)", 0, 1.10), ("prompt eval + generation (s)", 1, 1.03)):
        d, r = med("dsv2", i), med("raw", i)
        print(f"{label:28}{d:10.3f}{r:10.3f}{d / r:8.3f}{target:8.2f}")


if __name__ == "__main__":
    main()
