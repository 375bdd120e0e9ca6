"""Inputs -> Documents. ``load`` reads one path (``-`` is standard input); ``load_inputs`` reads many.

Readers by kind: PDF (``pdf.py``), HTML (``html.py``), text and markdown (``text.py``), and a
directory as a code repository (``repo.py``). Every reader returns Documents made of located
Segments, or raises InputError naming the input; none prints.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError, quote_name
from .base import Document, Location, Segment
from .encoding import looks_binary
from .limits import DEFAULT_MAX_INPUT_FILE, DEFAULT_MAX_INPUT_TOTAL, InputLimits, read_capped
from .neutral import neutralise
from .repo import DEFAULT_MAX_FILE_BYTES, RepoReport, load_repo
from .secrets import redact_document
from .text import MARKDOWN_SUFFIXES, text_document

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_INPUT_FILE",
    "DEFAULT_MAX_INPUT_TOTAL",
    "Document",
    "InputLimits",
    "Location",
    "RepoReport",
    "Segment",
    "load",
    "load_inputs",
    "load_repo",
]

STDIN_NAME = "<stdin>"


def _read_stdin(stdin: BinaryIO | None, limits: InputLimits) -> bytes:
    if stdin is None:
        raise InputError(f"{STDIN_NAME}: no standard input available")
    return read_capped(stdin, STDIN_NAME, limits)


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _is_stdin(st: os.stat_result, stdin: BinaryIO | None) -> bool:
    """Whether ``st`` is the process's standard input (``/dev/stdin``, ``/dev/fd/0``)."""
    try:
        fd = stdin.fileno() if stdin is not None else 0
        own = os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return False
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


def _read_file(path: str, limits: InputLimits, stdin: BinaryIO | None = None) -> bytes:
    """The bytes of a regular file, read up to the limits. A FIFO, device or socket is refused
    before it is opened (opening a FIFO without a writer would wait forever; ``/dev/zero``
    never ends), unless it is this process's standard input."""
    name = quote_name(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) and not _is_stdin(st, stdin):
            kind = next((what for test, what in _SPECIAL_KINDS if test(st.st_mode)), "not a regular file")
            raise InputError(f"{name}: {kind}, not a regular file; pipe a stream in as standard input (-)")
        with open(path, "rb") as handle:
            return read_capped(handle, name, limits)
    except FileNotFoundError as exc:
        raise InputError(f"{name}: no such file") from exc
    except PermissionError as exc:
        raise InputError(f"{name}: permission denied") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{name}: is a directory") from exc
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror})") from exc


HTML_SUFFIXES = {".html", ".htm", ".xhtml"}


def document_from_bytes(
    data: bytes, source: str, suffix: str = "", password: str | None = None, pdf_cache: Path | None = None
) -> Document:
    """Pick a reader by suffix, or by content for standard input (``%PDF-``, ``<html``).
    The PDF and HTML readers are imported when needed (a repository of code needs neither).
    ``pdf_cache``: a folder keeping the text extracted from PDFs by content (``pdfcache.py``)."""
    head = data[:1024].lstrip().lower()
    if suffix == ".pdf" or (not suffix and data.startswith(b"%PDF-")):
        from .pdf import pdf_document

        return pdf_document(data, source, password, pdf_cache)
    if not data.strip():
        raise InputError(f"{source}: input is empty")
    if looks_binary(data):
        raise InputError(f"{source}: looks like a binary file, not text")
    if suffix in HTML_SUFFIXES or (not suffix and head.startswith((b"<!doctype html", b"<html"))):
        from .html import html_document

        return html_document(data, source)
    kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
    return text_document(data, source, kind)


def _read_repo(
    path: str,
    limits: InputLimits,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> tuple[list[Document], RepoReport]:
    """A directory walked as a repository (``load_repo``): its documents, not yet made inert, and
    its report. Nothing read is an InputError; the bytes read count towards ``limits``' total."""
    docs, report = load_repo(path, include, exclude, max_file_bytes)
    if not docs:
        raise InputError(f"{quote_name(report.root)}: no files to read ({len(report.skipped)} skipped)")
    limits.take_total(report.bytes, report.root)
    return docs, report


def load(
    path: str,
    stdin: BinaryIO | None = None,
    *,
    password: str | None = None,
    limits: InputLimits | None = None,
    pdf_cache: Path | None = None,
) -> Document:
    """Read one input. A directory becomes one Document (kind "repo") with a segment per file,
    its skip/redaction report in ``warnings``. Raises InputError naming the file and the problem.
    ``limits``: bytes per file and in total (default: ``InputLimits()``), checked while reading.
    ``pdf_cache``: a folder keeping the text extracted from PDFs by content (none: not kept)."""
    limits = InputLimits() if limits is None else limits
    if path == "-":
        document = document_from_bytes(_read_stdin(stdin, limits), STDIN_NAME, password=password, pdf_cache=pdf_cache)
        return neutralise(redact_document(document))
    if os.path.isdir(path):
        docs, report = _read_repo(path, limits)
        segments = [s for d in docs for s in d.segments]
        return neutralise(
            Document(report.root, "repo", segments, report.notes(), [r for d in docs for r in d.redactions])
        )
    data = _read_file(path, limits, stdin)
    return neutralise(redact_document(document_from_bytes(data, path, Path(path).suffix.lower(), password, pdf_cache)))


def load_inputs(
    paths: Sequence[str],
    stdin: BinaryIO | None = None,
    *,
    repo: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    password: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    limits: InputLimits | None = None,
    pdf_cache: Path | None = None,
) -> tuple[list[Document], list[str]]:
    """Every input as Documents, in the order given, plus notes for stderr.

    A directory (in ``paths`` or ``repo``) is walked as a repository with ``include`` /
    ``exclude`` / ``max_file_bytes``; files are read by kind. Notes are complete lines ready to
    print: per repository what was read, skipped (with reasons) and redacted; then every
    document warning prefixed with ``warning:``. ``limits`` caps the bytes read per file and
    for all inputs together (``InputLimits``; a repository's files count when its walk ends).
    ``pdf_cache``: a folder keeping the text extracted from PDFs by content (none: not kept).
    """
    limits = InputLimits() if limits is None else limits
    targets = list(paths) + ([repo] if repo is not None else [])
    if not targets:
        raise InputError("no input: give a file, a directory, - for standard input, or --repo DIR")
    if targets.count("-") > 1:
        raise InputError(f"{STDIN_NAME}: standard input can be read only once")
    docs: list[Document] = []
    notes: list[str] = []
    for target in targets:
        if target != "-" and os.path.isdir(target):
            repo_docs, report = _read_repo(target, limits, include, exclude, max_file_bytes)
            inert = [neutralise(d) for d in repo_docs]
            docs.extend(inert)
            notes.extend(report.notes())
            notes.extend(
                f"warning: {w}"
                for d, was in zip(inert, repo_docs, strict=True)
                for w in d.warnings[len(was.warnings) :]
            )
            continue
        doc = load(target, stdin, password=password, limits=limits, pdf_cache=pdf_cache)
        docs.append(doc)
        notes.extend(r.note() for r in doc.redactions)
        notes.extend(f"warning: {w}" for w in doc.warnings)
    return docs, notes
