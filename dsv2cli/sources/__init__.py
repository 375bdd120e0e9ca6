"""Inputs -> Documents. ``load`` reads one path (``-`` is standard input); ``load_inputs`` reads many.

Readers by kind: PDF (``pdf.py``), HTML (``html.py``), text and markdown (``text.py``), and a
directory as a code repository (``repo.py``). Every reader returns Documents made of located
Segments, or raises InputError naming the input; none prints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError
from .base import Document, Location, Segment
from .encoding import looks_binary
from .repo import DEFAULT_MAX_FILE_BYTES, RepoReport, load_repo
from .text import MARKDOWN_SUFFIXES, text_document

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "Document",
    "Location",
    "RepoReport",
    "Segment",
    "load",
    "load_inputs",
    "load_repo",
]

STDIN_NAME = "<stdin>"


def _read_stdin(stdin: BinaryIO | None) -> bytes:
    if stdin is None:
        raise InputError(f"{STDIN_NAME}: no standard input available")
    return stdin.read()


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc


HTML_SUFFIXES = {".html", ".htm", ".xhtml"}


def document_from_bytes(data: bytes, source: str, suffix: str = "", password: str | None = None) -> Document:
    """Pick a reader by suffix, or by content for standard input (``%PDF-``, ``<html``).
    The PDF and HTML readers are imported when needed (a repository of code needs neither)."""
    head = data[:1024].lstrip().lower()
    if suffix == ".pdf" or (not suffix and data.startswith(b"%PDF-")):
        from .pdf import pdf_document

        return pdf_document(data, source, password)
    if not data.strip():
        raise InputError(f"{source}: input is empty")
    if looks_binary(data):
        raise InputError(f"{source}: looks like a binary file, not text")
    if suffix in HTML_SUFFIXES or (not suffix and head.startswith((b"<!doctype html", b"<html"))):
        from .html import html_document

        return html_document(data, source)
    kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
    return text_document(data, source, kind)


def load(path: str, stdin: BinaryIO | None = None, *, password: str | None = None) -> Document:
    """Read one input. A directory becomes one Document (kind "repo") with a segment per file,
    its skip/redaction report in ``warnings``. Raises InputError naming the file and the problem."""
    if path == "-":
        return document_from_bytes(_read_stdin(stdin), STDIN_NAME, password=password)
    if os.path.isdir(path):
        docs, report = load_repo(path)
        if not docs:
            raise InputError(f"{path}: no files to read ({len(report.skipped)} skipped)")
        segments = [s for d in docs for s in d.segments]
        return Document(report.root, "repo", segments, report.notes())
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    return document_from_bytes(_read_file(path), path, Path(path).suffix.lower(), password)


def load_inputs(
    paths: Sequence[str],
    stdin: BinaryIO | None = None,
    *,
    repo: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    password: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> tuple[list[Document], list[str]]:
    """Every input as Documents, in the order given, plus notes for stderr.

    A directory (in ``paths`` or ``repo``) is walked as a repository with ``include`` /
    ``exclude`` / ``max_file_bytes``; files are read by kind. Notes are complete lines ready to
    print: per repository what was read, skipped (with reasons) and redacted; then every
    document warning prefixed with ``warning:``.
    """
    targets = list(paths) + ([repo] if repo is not None else [])
    if not targets:
        raise InputError("no input: give a file, a directory, - for standard input, or --repo DIR")
    if targets.count("-") > 1:
        raise InputError(f"{STDIN_NAME}: standard input can be read only once")
    docs: list[Document] = []
    notes: list[str] = []
    for target in targets:
        if target != "-" and os.path.isdir(target):
            repo_docs, report = load_repo(target, include, exclude, max_file_bytes)
            if not repo_docs:
                raise InputError(f"{report.root}: no files to read ({len(report.skipped)} skipped)")
            docs.extend(repo_docs)
            notes.extend(report.notes())
            continue
        doc = load(target, stdin, password=password)
        docs.append(doc)
        notes.extend(f"warning: {w}" for w in doc.warnings)
    return docs, notes
