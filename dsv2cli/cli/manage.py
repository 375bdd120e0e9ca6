"""``dsv2 index ...`` and ``dsv2 cache ...``."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from .app import app
from .common import Env, handle_errors, load_inputs, resolve_settings
from .options import DebugOpt, EmbedModelOpt, ExcludeOpt, IncludeOpt, JsonOpt, PasswordOpt, PathsArg, RepoOpt
from .session import prefix_cache_store

cache_app = typer.Typer(help="Inspect or clear the prompt-prefix cache.", no_args_is_help=True)


app.add_typer(cache_app, name="cache")


@cache_app.command("status")
def cache_status(json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """Entries and size of the prompt-prefix cache.

    Examples:

    \b
      dsv2 cache status
    """
    env = Env()
    with handle_errors(env, debug):
        status = prefix_cache_store(resolve_settings(env, {})).status().to_dict()
        if json_out:
            env.stdout.write(json.dumps(status) + "\n")
        else:
            env.stdout.write(
                f"prefix cache: {status['directory']}\nentries:      {status['entries']}\n"
                f"size:         {status['size_bytes'] / 1e6:,.1f} MB of {status['max_bytes'] / 1e6:,.0f} MB\n"
            )


@cache_app.command("clear")
def cache_clear(debug: DebugOpt = False) -> None:
    """Delete every prompt-prefix cache entry.

    Examples:

    \b
      dsv2 cache clear
    """
    env = Env()
    with handle_errors(env, debug):
        removed = prefix_cache_store(resolve_settings(env, {})).clear()
        env.note(f"prefix cache cleared: {removed} entries removed")


index_app = typer.Typer(help="Inspect or manage the retrieval index of a corpus.", no_args_is_help=True)


app.add_typer(index_app, name="index")


def _open_index(env: Env, paths: list[str] | None, repo: str | None) -> tuple[Any, Any, list[str]]:
    from ..index import open_index

    settings = resolve_settings(env, {})
    corpus = list(paths or []) + ([repo] if repo else [])
    if not corpus:
        from ..errors import UsageError

        raise UsageError("name the corpus: the same paths or --repo DIR given to `dsv2 ask`")
    return open_index(settings.home, corpus), settings, corpus


@index_app.command("status")
def index_status(
    paths: PathsArg = None, repo: RepoOpt = None, json_out: JsonOpt = False, debug: DebugOpt = False
) -> None:
    """Size, chunks, files and last update of a corpus's index.

    Examples:

    \b
      dsv2 index status --repo ./src
      dsv2 index status report.pdf
    """
    env = Env()
    with handle_errors(env, debug):
        index, _, _ = _open_index(env, paths, repo)
        status = index.status().to_dict()
        if json_out:
            env.stdout.write(json.dumps(status) + "\n")
            return
        updated = status["updated_at"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)) if updated else "never"
        env.stdout.write(
            f"index:    {status['directory']} ({status['state']})\n"
            f"files:    {status['files']}\nchunks:   {status['chunks']}\n"
            f"size:     {status['size_bytes'] / 1e6:,.1f} MB\nupdated:  {when}\n"
            f"embedder: {status['embedder'] or 'none (BM25 only)'}\n"
        )


@index_app.command("rebuild")
def index_rebuild(
    paths: PathsArg = None,
    repo: RepoOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    password: PasswordOpt = None,
    embed_model: EmbedModelOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Drop and rebuild a corpus's index from scratch.

    Examples:

    \b
      dsv2 index rebuild --repo ./src
    """
    env = Env()
    with handle_errors(env, debug):
        from ..index import resolve_embedder

        index, settings, _ = _open_index(env, paths, repo)
        docs = load_inputs(env, paths, repo, include, exclude, password)
        choice = resolve_embedder(settings.home, embed_model or settings.embed_model, threads=settings.threads)
        if choice.notice:
            env.note(choice.notice)
        with env.screen.progress():
            index.rebuild(docs, choice.embedder, progress=env.screen.on_index)
        status = index.status()
        env.note(f"index rebuilt: {status.files} files, {status.chunks} chunks in {status.directory}")


@index_app.command("drop")
def index_drop(paths: PathsArg = None, repo: RepoOpt = None, debug: DebugOpt = False) -> None:
    """Delete a corpus's index.

    Examples:

    \b
      dsv2 index drop --repo ./src
    """
    env = Env()
    with handle_errors(env, debug):
        index, _, _ = _open_index(env, paths, repo)
        env.note(f"index {'dropped' if index.drop() else 'not found'}: {index.directory}")
