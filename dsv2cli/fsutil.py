"""Files replaced whole: a reader sees the old file or the new one, never a part of either.

The new content goes to a temporary file beside the target (same folder, so the same file
system), which then takes the target's name in one ``os.replace``. Every file dsv2 rewrites in
place (the speed cache, an index manifest, extract's ``--out`` JSON, a converted embedding
model, a prefix-cache entry) is written this way.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_beside(path: Path) -> Path:
    """An unused name in ``path``'s folder for the file that will replace it: hidden, ending in
    ``.tmp`` (so a leftover from an interrupted write is easy to find), unique per process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write the new ``path`` to; when the block ends, it replaces ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    tmp = temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        # name the file being written, not its temporary (a failed flush names no file at all)
        if exc.filename == str(tmp) or (exc.filename is None and exc.errno == errno.ENOSPC):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8) in one step.

    ``durable``: the data reaches the disk (fsync) before the rename, so that a crash right after
    cannot leave the new name on an empty file.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with replacing(path) as tmp, open(tmp, "xb") as handle:
        handle.write(payload)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())


def write_problem(path: Path) -> str | None:
    """Why ``path`` could not be written as a file, or None: checked before any long work (a model
    run) so that its result is not lost at the end. The folder is tried with a real temporary file
    (removed at once): permission bits say nothing for root, nor for a read-only or full file system."""
    if path.is_dir():
        return "is a directory; give a file name"
    folder = path.parent
    if not folder.exists():
        return f"folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if path.exists() and not path.is_file():
        return "is not a regular file"
    probe = temp_beside(path)
    try:
        with open(probe, "xb") as handle:
            handle.write(b"\0")
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror})"
    finally:
        probe.unlink(missing_ok=True)
    return None
