"""Ingest benchmark: PDF extraction speed and repository packing speed, measured in one run.

    python bench/ingest.py [PDF ...] [--repo DIR] [--pages 150] [--repeat 3] [--repomix CMD]

PDF part: pages/s of pypdf vs pypdfium2 (raw text calls) and vs dsv2's own reader (pypdfium2
plus cleaning, header/footer stripping and section detection) on the PDFs in samples/, a
generated text PDF of ``--pages`` pages, and any PDFs given on the command line.

Repo part: wall time to pack one directory (default: a copy of the installed ``rich`` package,
~100 files, 1.2 MB, without __pycache__) with
- dsv2's loader + ``dsv2cli.packing.render_context``, in-process and as a fresh Python process;
- ``dsv2 pack --repo DIR``, when the CLI has that command;
- ``files-to-prompt DIR`` (PyPI), when installed;
- ``repomix`` (npm), only when already present: ``--repomix CMD``, ``repomix`` on PATH, or
  ``npx --no-install repomix``. Nothing is downloaded.
Subprocess timings include interpreter / node start-up, as a user would see them. Each figure
is the best of ``--repeat`` runs (for the repo, the tools take turns within each round, so a
slow spell of this noisy machine hits them all); ratios compare figures from this same run.

Needs the test extra (``pip install -e '.[test]'``) for pypdf and fpdf2.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsv2cli.packing import render_context  # noqa: E402 - after the path tweak, so a checkout runs
from dsv2cli.sources import load_repo  # noqa: E402
from dsv2cli.sources.pdf import pdf_document  # noqa: E402

T = TypeVar("T")


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    best = float("inf")
    result = fn()  # warm-up run: imports and file cache, not measured
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


# --------------------------------------------------------------------------------------------- PDF


def make_text_pdf(path: Path, pages: int) -> Path:
    """A plain text PDF: a running header, a page number footer, ~450 words per page."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    class Doc(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 6, "Benchmark Holdings plc - Annual Report (generated)", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 8, f"Page {self.page_no()}", align="C")

    words = [
        "revenue", "margin", "vessel", "harbour", "contract", "liability", "notice", "capital", "dividend",
        "forecast", "operating", "segment", "customer", "energy", "storage", "turbine", "regulation", "tariff",
    ]  # fmt: skip
    pdf = Doc()
    pdf.set_font("Helvetica", size=10)
    for n in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, f"{n + 1}. Section {n + 1}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", size=10)
        body = " ".join(words[(n * 7 + i * 3) % len(words)] for i in range(450))
        pdf.multi_cell(0, 5, body, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.output(str(path))
    return path


def pypdf_pages(path: Path) -> int:
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = pypdf.PdfReader(path)
    for page in reader.pages:
        page.extract_text()
    return len(reader.pages)


def pdfium_pages(path: Path) -> int:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        for i in range(len(doc)):
            page = doc[i]
            textpage = page.get_textpage()
            textpage.get_text_range()
            textpage.close()
            page.close()
        return len(doc)
    finally:
        doc.close()


def dsv2_pages(path: Path, cache: Path | None = None) -> int:
    """dsv2's PDF reader; with ``cache``, its text cache (sources/pdfcache.py), warmed first."""
    doc = pdf_document(path.read_bytes() if cache is not None else path, str(path), cache=cache)
    return len({s.location.page for s in doc.segments})


def bench_pdfs(paths: list[Path], repeat: int) -> None:
    print(f"PDF text extraction (pages/s, best of {repeat})")
    print(f"{'file':48} {'pages':>5} {'pypdf':>8} {'pdfium':>8} {'dsv2':>8} {'pdfium/pypdf':>13} {'dsv2/pypdf':>11}"
          f" {'dsv2 text cached':>17} {'uncached/cached':>16}")  # fmt: skip
    for path in paths:
        t_pypdf, n = best_of(repeat, lambda p=path: pypdf_pages(p))
        t_pdfium, _ = best_of(repeat, lambda p=path: pdfium_pages(p))
        t_dsv2, _ = best_of(repeat, lambda p=path: dsv2_pages(p))
        with tempfile.TemporaryDirectory() as cache:
            dsv2_pages(path, Path(cache))  # the first read fills the cache
            t_cached, _ = best_of(repeat, lambda p=path, c=Path(cache): dsv2_pages(p, c))
        name = path.name if len(path.name) <= 48 else "…" + path.name[-47:]
        print(f"{name:48} {n:5d} {n / t_pypdf:8.0f} {n / t_pdfium:8.0f} {n / t_dsv2:8.0f} "
              f"{t_pypdf / t_pdfium:12.1f}x {t_pypdf / t_dsv2:10.1f}x {n / t_cached:17.0f} "
              f"{t_dsv2 / t_cached:15.1f}x")  # fmt: skip


# -------------------------------------------------------------------------------------------- repo


def default_repo_dir(tmp: Path) -> Path:
    spec = importlib.util.find_spec("rich")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no --repo given and the `rich` package is not installed to copy")
    src = Path(next(iter(spec.submodule_search_locations)))
    dst = tmp / "rich"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def subprocess_env(tmp: Path) -> dict[str, str]:
    """Python children may write bytecode (to a private cache), as an installed dsv2 would have it.

    With PYTHONDONTWRITEBYTECODE set (as on our build machines) every run would recompile dsv2's
    modules, ~0.1 s that no user pays, while site-packages tools already have their .pyc files.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env["DSV2_HOME"] = str(tmp / "dsv2-home")  # token-count cache of this run only
    return env


SUBPROCESS_ENV: dict[str, str] | None = None


def run_quiet(cmd: list[str]) -> int:
    """Run, discard output, return the number of bytes written to stdout."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False, env=SUBPROCESS_ENV)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited with {proc.returncode}")
    return len(proc.stdout)


def find_files_to_prompt() -> str | None:
    here = Path(sys.executable).parent / "files-to-prompt"
    return str(here) if here.exists() else shutil.which("files-to-prompt")


def find_repomix(explicit: str | None) -> list[str] | None:
    if explicit:
        return shlex.split(explicit)
    found = shutil.which("repomix")
    if found:
        return [found]
    if shutil.which("npx"):
        probe = subprocess.run(["npx", "--no-install", "repomix", "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["npx", "--no-install", "repomix"]
    return None


def interleaved_best(repeat: int, runs: list[tuple[str, Callable[[], int]]]) -> list[tuple[str, float, int]]:
    """Best wall time of each run over ``repeat`` rounds, the runs taking turns within a round.

    These machines are noisy: a slow minute would otherwise land on whichever tool ran then.
    One warm-up round first (file cache, bytecode), not measured.
    """
    sizes = {name: fn() for name, fn in runs}
    best = dict.fromkeys(sizes, float("inf"))
    for _ in range(repeat):
        for name, fn in runs:
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return [(name, best[name], sizes[name]) for name, _ in runs]


def bench_repo(directory: Path, repeat: int, repomix: str | None) -> None:
    _, report = load_repo(str(directory))
    print(f"\nPacking {directory}: {report.files} files, {report.bytes:,} bytes, {len(report.skipped)} skipped "
          f"(best of {repeat}, the tools taking turns)")  # fmt: skip

    def in_process() -> int:
        d, _ = load_repo(str(directory))
        return len(render_context(d).encode())

    code = (
        "import sys; from dsv2cli.sources import load_repo; from dsv2cli.packing import render_context; "
        "d, _ = load_repo(sys.argv[1]); sys.stdout.write(render_context(d))"
    )
    cli = [sys.executable, "-m", "dsv2cli", "pack", "--repo", str(directory)]
    # --json adds exact token counts with the model's tokenizer. Cold: an empty DSV2_HOME
    # every run, so every file is tokenized; warm: counts come from the per-content cache.
    assert SUBPROCESS_ENV is not None
    home = Path(SUBPROCESS_ENV["DSV2_HOME"])

    def cold() -> int:
        shutil.rmtree(home, ignore_errors=True)
        return run_quiet([*cli, "--json"])

    runs: list[tuple[str, Callable[[], int]]] = [
        ("dsv2 loader + render_context (in-process)", in_process),
        ("dsv2 loader + render_context (new process)", lambda: run_quiet([sys.executable, "-c", code, str(directory)])),
        ("dsv2 pack --repo (CLI)", lambda: run_quiet(cli)),
        ("dsv2 pack --repo --json, cold count cache", cold),
        ("dsv2 pack --repo --json, warm count cache", lambda: run_quiet([*cli, "--json"])),
    ]
    ftp = find_files_to_prompt()
    if ftp:
        runs.append(("files-to-prompt (PyPI)", lambda: run_quiet([ftp, str(directory)])))
    else:
        print("  (files-to-prompt: not installed; pip install files-to-prompt)")
    rmx = find_repomix(repomix)
    out = tempfile.mkdtemp(prefix="dsv2-bench-repomix-")
    if rmx:
        cmd = [*rmx, str(directory), "--quiet", "--output", os.path.join(out, "repomix.xml")]

        def repomix_run() -> int:
            run_quiet(cmd)
            return os.path.getsize(os.path.join(out, "repomix.xml"))

        runs.append(("repomix (npm)", repomix_run))
    else:
        print("  (repomix: not present; pass --repomix CMD to include it)")
    try:
        rows = interleaved_best(repeat, runs)
    finally:
        shutil.rmtree(out, ignore_errors=True)

    print(f"  {'tool':44} {'wall s':>8} {'output bytes':>13}")
    for name, t, size in rows:
        print(f"  {name:44} {t:8.3f} {size:13,d}")
    ours = [(name, t) for name, t, _ in rows if name.startswith("dsv2") and "in-process" not in name]
    for other, t_other in ((name, t) for name, t, _ in rows if not name.startswith("dsv2")):
        for name, t in ours:
            print(f"  {name} / {other}: {t / t_other:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pdfs", nargs="*", type=Path, help="extra PDFs to measure")
    parser.add_argument("--repo", type=Path, help="directory to pack (default: a copy of the `rich` package)")
    parser.add_argument("--pages", type=int, default=150, help="pages of the generated text PDF (0: none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repomix", help="command that runs repomix, e.g. 'npx --no-install repomix'")
    parser.add_argument("--skip-pdf", action="store_true")
    parser.add_argument("--skip-repo", action="store_true")
    args = parser.parse_args()

    global SUBPROCESS_ENV
    with tempfile.TemporaryDirectory(prefix="dsv2-bench-") as tmp_name:
        tmp = Path(tmp_name)
        SUBPROCESS_ENV = subprocess_env(tmp)
        if not args.skip_pdf:
            pdfs = sorted((ROOT / "samples").glob("*.pdf"))
            if args.pages:
                pdfs.append(make_text_pdf(tmp / f"generated-{args.pages}-pages.pdf", args.pages))
            bench_pdfs([*pdfs, *args.pdfs], args.repeat)
        if not args.skip_repo:
            bench_repo(args.repo or default_repo_dir(tmp), args.repeat, args.repomix)


if __name__ == "__main__":
    main()
