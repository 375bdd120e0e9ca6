"""``dsv2 index ...`` and ``dsv2 cache ...``."""

from __future__ import annotations

import time

import typer

from .app import app
from .common import Env
from .options import INPUTS, RETRIEVAL, Flags, JsonOpt, PathsArg, RepoOpt, uses

cache_app = typer.Typer(help="Inspect or clear the prompt-prefix cache.", no_args_is_help=True)


app.add_typer(cache_app, name="cache")


@cache_app.command("status")
@uses()
def cache_status(json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """Entries and size of the prompt-prefix cache.

    Examples:

    \b
      dsv2 cache status
    """
    status = env.session(flags).prefix_cache().status().to_dict()
    if json_out:
        env.write_json(status)
    else:
        env.screen.write(
            f"prefix cache: {status['directory']}\nentries:      {status['entries']}\n"
            f"size:         {status['size_bytes'] / 1e6:,.1f} MB of {status['max_bytes'] / 1e6:,.0f} MB\n"
        )


@cache_app.command("clear")
@uses()
def cache_clear(*, flags: Flags, env: Env) -> None:
    """Delete every prompt-prefix cache entry.

    Examples:

    \b
      dsv2 cache clear
    """
    removed = env.session(flags).prefix_cache().clear()
    env.note(f"prefix cache cleared: {removed} entries removed")


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
    updated = status["updated_at"]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)) if updated else "never"
    env.screen.write(
        f"index:    {status['directory']} ({status['state']})\n"
        f"files:    {status['files']}\nchunks:   {status['chunks']}\n"
        f"size:     {status['size_bytes'] / 1e6:,.1f} MB\nupdated:  {when}\n"
        f"embedder: {status['embedder'] or 'none (BM25 only)'}\n"
    )


@index_app.command("rebuild")
@uses(INPUTS, RETRIEVAL)
def index_rebuild(paths: PathsArg = None, *, flags: Flags, env: Env) -> None:
    """Drop and rebuild a corpus's index from scratch.

    Examples:

    \b
      dsv2 index rebuild --repo ./src
    """
    session = env.session(flags)
    corpus = _corpus(paths, flags.repo)
    session.index(corpus)  # a corpus is named before anything is read
    status = session.rebuild_index(corpus, env.load(session, flags, paths))
    env.note(f"index rebuilt: {status.files} files, {status.chunks} chunks in {status.directory}")


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
