"""``dsv2 index ...`` and ``dsv2 cache ...``."""

from __future__ import annotations

import time

import typer

from .app import app
from .common import Env
from .options import INPUTS, RETRIEVAL, Flags, GpuLayersOpt, JsonOpt, PathsArg, RepoOpt, ThreadsOpt, uses

cache_app = typer.Typer(help="Inspect or clear the prompt-prefix and PDF-text caches.", no_args_is_help=True)


app.add_typer(cache_app, name="cache")


@cache_app.command("status")
@uses()
def cache_status(json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """Entries and size of the prompt-prefix cache, and of the text kept from PDFs
    (`pdf_text` in --json).

    Examples:

    \b
      dsv2 cache status
    """
    session = env.session(flags)
    status = session.prefix_cache().status().to_dict()
    pdf_text = session.pdf_text_cache().status()
    if json_out:
        env.write_json({**status, "pdf_text": pdf_text})
    else:
        env.screen.write(
            f"prefix cache: {status['directory']}\nentries:      {status['entries']}\n"
            f"size:         {status['size_bytes'] / 1e6:,.1f} MB of {status['max_bytes'] / 1e6:,.0f} MB\n"
            f"pdf text:     {pdf_text['directory']}\nentries:      {pdf_text['entries']}\n"
            f"size:         {pdf_text['size_bytes'] / 1e6:,.1f} MB of {pdf_text['max_bytes'] / 1e6:,.0f} MB\n"
        )


@cache_app.command("clear")
@uses()
def cache_clear(*, flags: Flags, env: Env) -> None:
    """Delete every prompt-prefix cache entry and the text kept from PDFs.

    Examples:

    \b
      dsv2 cache clear
    """
    session = env.session(flags)
    removed = session.prefix_cache().clear()
    env.note(f"prefix cache cleared: {removed} entries removed")
    env.note(f"pdf text cache cleared: {session.pdf_text_cache().clear()} entries removed")


index_app = typer.Typer(help="Inspect or manage the retrieval index of a corpus.", no_args_is_help=True)


app.add_typer(index_app, name="index")


@index_app.command("status")
@uses()
def index_status(
    paths: PathsArg = None, repo: RepoOpt = None, json_out: JsonOpt = False, *, flags: Flags, env: Env
) -> None:
    """Size, chunks, files and last update of a corpus's index.

    Examples:

    \b
      dsv2 index status --repo ./src
      dsv2 index status report.pdf
    """
    status = env.session(flags).index(_corpus(paths, repo)).status().to_dict()
    if json_out:
        env.write_json(status)
        return
    embedded = status["embedded_chunks"]
    vectors = f" ({embedded:,}/{status['chunks_to_embed']:,} chunks embedded)" if embedded is not None else ""
    env.screen.write(
        f"index:    {status['directory']} ({status['state']})\n"
        f"state:    {status['summary']}\n"
        f"files:    {status['files']}\nchunks:   {status['chunks']}\n"
        f"size:     {status['size_bytes'] / 1e6:,.1f} MB\nupdated:  {_when(status['updated_at'])}\n"
        f"embedder: {status['embedder'] or 'none (BM25 only)'}{vectors}\n"
    )


@index_app.command("list")
@uses()
def index_list(json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """Every index under DSV2_HOME: corpus, files, chunks, size, embedder, last update, complete or not.

    Examples:

    \b
      dsv2 index list
      dsv2 index list --json
    """
    found = [status.to_dict() for status in env.session(flags).indexes()]
    if json_out:
        env.write_json({"indexes": found})
        return
    if not found:
        env.screen.write("no index yet: `dsv2 ask` builds one for each corpus it retrieves from\n")
        return
    rows = [("corpus", "files", "chunks", "size", "embedder", "updated", "state")]
    for s in found:
        state = s["state"]
        if s["embedded_chunks"] is not None and state != "ready":
            state += f" ({s['embedded_chunks']:,}/{s['chunks_to_embed']:,})"
        rows.append(
            (
                ", ".join(s["roots"]) or f"({s['corpus_id']})",
                f"{s['files']:,}",
                f"{s['chunks']:,}",
                f"{s['size_bytes'] / 1e6:,.1f} MB",
                s["embedder"] or "none (BM25)",
                _when(s["updated_at"]),
                state,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    env.screen.write(
        "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows)
    )


def _when(updated: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)) if updated else "never"


@index_app.command("rebuild")
@uses(INPUTS, RETRIEVAL)
def index_rebuild(
    paths: PathsArg = None,
    gpu_layers: GpuLayersOpt = None,
    threads: ThreadsOpt = None,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Drop and rebuild a corpus's index from scratch. --gpu-layers and --threads apply to the
    embedding model, as they do when `dsv2 ask` builds the index.

    Examples:

    \b
      dsv2 index rebuild --repo ./src
      dsv2 index rebuild report.pdf --gpu-layers 0 --threads 2
    """
    flags.gpu_layers, flags.threads = gpu_layers, threads
    session = env.session(flags)
    corpus = _corpus(paths, flags.repo)
    session.index(corpus)  # a corpus is named before anything is read
    status = session.rebuild_index(corpus, env.load(session, flags, paths))
    from ..render import counted

    files, chunks = counted(status.files, "files"), counted(status.chunks, "chunks")
    env.note(f"index rebuilt: {files}, {chunks} in {status.directory}")


@index_app.command("drop")
@uses()
def index_drop(paths: PathsArg = None, repo: RepoOpt = None, *, flags: Flags, env: Env) -> None:
    """Delete a corpus's index.

    Examples:

    \b
      dsv2 index drop --repo ./src
    """
    index = env.session(flags).index(_corpus(paths, repo))
    env.note(f"index {'dropped' if index.drop() else 'not found'}: {index.directory}")


def _corpus(paths: list[str] | None, repo: str | None) -> list[str]:
    """The corpus as `dsv2 ask` names it: its paths, then --repo."""
    return list(paths or []) + ([repo] if repo else [])
