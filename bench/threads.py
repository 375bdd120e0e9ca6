"""Which llama.cpp thread count: prompt evaluation, generation and embedding at each candidate.

    python bench/threads.py [--rounds 5] [--load 0] [--model PATH] [--no-embed]

Candidates are the distinct values among the logical CPUs this process may use, their physical
cores, and physical cores - 1 (dsv2cli.parallel.cpu_counts). Every measurement is a fresh
process, as a dsv2 command is (llama.cpp's OpenMP worker threads from one thread count would
otherwise still be around for the next); the counts take turns, each round starting with another
one. A worker loads the model (default: the embedded SmolLM2-135M; loading is not timed), times
prompt evaluation of a ~1.5k-token prompt (planning.measure_prompt_speed) and greedy generation
of 64 tokens (planning.measure_output_speed), then the default embedder (all-MiniLM-L6-v2 Q8_0,
when installed) on 32 real chunks of samples/code. Medians are printed with their ratio to the
old default (threads = logical CPUs, llama.cpp's threads spinning while they wait), measured in
the same run.

Each count runs twice: with llama.cpp's OpenMP threads spinning at their barriers (libgomp's
default when OMP_WAIT_POLICY is unset, what dsv2 did before) and waiting passively
(OMP_WAIT_POLICY=PASSIVE, which dsv2cli/llama.py now sets unless the user set it).

--load N starts N busy processes (pure Python spin loops) for the duration, as other jobs on
shared cores would be; they are stopped at the end. The choice in default_threads() has to hold
on an idle machine and on a loaded one, so run it both ways.
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


def worker(args: argparse.Namespace) -> None:
    """One measurement at ``--worker N`` threads; prints one JSON line."""
    if args.policy == "spin":
        # libgomp reads OMP_WAIT_POLICY once, when llama.cpp's library loads (at this import):
        # loaded without it, before dsv2 can set its default, the threads spin as they used to.
        os.environ.pop("OMP_WAIT_POLICY", None)
        import llama_cpp  # noqa: F401

    from dsv2cli import planning, sources
    from dsv2cli.engines.llamacpp import LlamaCppBackend, LlamaCppOptions
    from dsv2cli.index.chunking import chunk_document
    from dsv2cli.index.embedder import DEFAULT_MAX_TOKENS, LlamaEmbedder

    threads = args.worker
    n_ctx = args.prompt_tokens + args.output_tokens + 64
    backend = LlamaCppBackend(LlamaCppOptions(model_path=args.model, n_ctx=n_ctx, threads=threads), "probe")
    backend.load()
    result = {
        "prompt": planning.measure_prompt_speed(backend, args.prompt_tokens),
        "output": planning.measure_output_speed(backend, args.output_tokens),
    }
    backend.close()
    if args.embed_model:
        docs = sources.load_inputs([str(ROOT / "samples" / "code")])[0]
        texts = [c.index_text for d in docs for c in chunk_document(d)][:32]
        embedder = LlamaEmbedder(Path(args.embed_model), max_tokens=DEFAULT_MAX_TOKENS, threads=threads)
        result["embed"] = planning.measure_embed_speed(embedder, texts)
    print(json.dumps(result))


def main() -> None:
    from dsv2cli import planning
    from dsv2cli.models import embedded_model_path
    from dsv2cli.parallel import cpu_counts, default_threads

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=planning.SPEED_PROBE_TOKENS)
    ap.add_argument("--output-tokens", type=int, default=64)
    ap.add_argument("--load", type=int, default=0, help="busy processes to run alongside (default 0)")
    ap.add_argument("--model", type=Path, default=embedded_model_path())
    ap.add_argument("--no-embed", action="store_true", help="skip the embedder")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--embed-model", help=argparse.SUPPRESS)
    ap.add_argument("--policy", choices=["spin", "passive"], default="passive", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    cpus = cpu_counts()
    counts = cpus.candidates()
    baseline = (cpus.logical, "spin")  # the old default: every logical CPU, threads spinning
    chosen = (default_threads(), "passive")
    configs = [(n, policy) for policy in ("spin", "passive") for n in counts]
    print(
        f"CPUs: {cpus.logical} logical, {cpus.physical} physical; candidates {counts}; "
        f"baseline {cpus.logical} threads (old default); load average {os.getloadavg()[0]:.2f}; "
        f"{args.load} busy process(es) started"
    )
    results: dict[tuple[int, str], list[dict[str, float]]] = {c: [] for c in configs}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            embed_model = None
            if not args.no_embed:
                from dsv2cli.index.convert import convert_bert
                from dsv2cli.index.embedder import default_weights_dir

                weights = default_weights_dir()
                if weights is not None:
                    embed_model = convert_bert(weights, Path(tmp) / "minilm.q8_0.gguf", q8=True)
            for round_ in range(args.rounds):
                shift = round_ % len(configs)
                for threads, policy in configs[shift:] + configs[:shift]:
                    cmd = [sys.executable, __file__, "--worker", str(threads), "--policy", policy]
                    cmd += ["--model", str(args.model)]
                    cmd += ["--prompt-tokens", str(args.prompt_tokens), "--output-tokens", str(args.output_tokens)]
                    if embed_model is not None:
                        cmd += ["--embed-model", str(embed_model)]
                    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                    if policy == "passive":
                        env["OMP_WAIT_POLICY"] = "PASSIVE"
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                    if proc.returncode != 0:
                        raise SystemExit(f"worker failed: {' '.join(cmd)}\n{proc.stderr}")
                    results[(threads, policy)].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    elapsed = time.perf_counter() - started

    def median(config: tuple[int, str], what: str) -> float:
        return statistics.median(r[what] for r in results[config])

    measures = [("prompt", "prompt tok/s"), ("output", "output tok/s")]
    if results[baseline] and "embed" in results[baseline][0]:
        measures.append(("embed", "embed chunks/s"))
    print(f"\nmodel {args.model.name}; {args.rounds} rounds, medians; ratio = this / {baseline[0]} threads spinning")
    print(f"{'threads':>17}" + "".join(f"  {label:>14}  {'ratio':>5}" for _, label in measures))
    for config in configs:
        label = f"{config[0]} {config[1]}"
        cells = "".join(
            f"  {median(config, what):>14.1f}  {median(config, what) / median(baseline, what):>5.2f}"
            for what, _ in measures
        )
        mark = "  <- old default" if config == baseline else "  <- dsv2 default" if config == chosen else ""
        print(f"{label:>17}{cells}{mark}")
    print(f"load average now {os.getloadavg()[0]:.2f}; {elapsed:.0f} s")


if __name__ == "__main__":
    main()
