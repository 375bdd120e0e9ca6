"""Inputs -> Documents. ``load`` picks a reader by path; ``-`` is standard input."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from ..errors import InputError
from .base import Document, Location, Segment
from .text import MARKDOWN_SUFFIXES, text_document

__all__ = ["Document", "Location", "Segment", "load"]

STDIN_NAME = "<stdin>"


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff"))


def load(path: str, stdin: BinaryIO | None = None) -> Document:
    """Read one input. Raises InputError naming the file and the problem."""
    if path == "-":
        if stdin is None:
            raise InputError(f"{STDIN_NAME}: no standard input available")
        data = stdin.read()
        source = STDIN_NAME
        suffix = ""
    else:
        p = Path(path)
        source = path
        if not p.exists():
            raise InputError(f"{path}: no such file")
        if p.is_dir():
            raise InputError(f"{path}: is a directory (repository input is not supported yet)")
        suffix = p.suffix.lower()
        if suffix == ".pdf":
            raise InputError(f"{path}: PDF input is not supported yet")
        try:
            data = p.read_bytes()
        except PermissionError as exc:
            raise InputError(f"{path}: permission denied") from exc
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if not data.strip():
        raise InputError(f"{source}: input is empty")
    if _looks_binary(data):
        raise InputError(f"{source}: looks like a binary file, not text")
    kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
    return text_document(data, source, kind)
