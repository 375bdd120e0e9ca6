"""How much input is read: a cap per file and one for all inputs together, checked while reading.

Without a cap, ``dsv2 pack /dev/zero`` or ``yes | dsv2 pack -`` would read until memory ran out.
The defaults (64 MiB per file, 256 MiB in total) are far above what any context window holds
(a 128k-token window is about half a megabyte of text; a 300-page annual report is 1-2 MB of
text, a 2,400-page PDF manual about 10 MB of file) and low enough that a pathological input
(``yes | head -c 200M``: 100 million one-letter lines, which cost ~5 microseconds and ~30 bytes
of memory each in heading detection and packing) is refused within a second instead of taking
gigabytes and a quarter of an hour. Set them with ``max_input_file`` / ``max_input_total`` in ``config.toml`` or the
``DSV2_MAX_INPUT_FILE`` / ``DSV2_MAX_INPUT_TOTAL`` variables (sizes like ``64M``, ``2G``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from ..errors import InputError

DEFAULT_MAX_INPUT_FILE = 64 * 1024**2
DEFAULT_MAX_INPUT_TOTAL = 256 * 1024**2

# Read in blocks of this size: an input over the cap stops at most one block past it.
_BLOCK = 1 << 20


def human_size(n: int) -> str:
    """``268435456`` -> ``256 MiB``; whole units where they are whole, else one decimal."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


@dataclass
class InputLimits:
    """Bytes per input and for all inputs of one run together; ``used`` counts what was read."""

    file_bytes: int = DEFAULT_MAX_INPUT_FILE
    total_bytes: int = DEFAULT_MAX_INPUT_TOTAL
    used: int = 0

    def file_error(self, name: str) -> InputError:
        return InputError(
            f"{name}: larger than the {human_size(self.file_bytes)} input limit per file (reading stopped there); "
            "raise it with DSV2_MAX_INPUT_FILE or max_input_file in config.toml"
        )

    def total_error(self, name: str) -> InputError:
        return InputError(
            f"{name}: the inputs together pass the {human_size(self.total_bytes)} total input limit "
            "(reading stopped there); raise it with DSV2_MAX_INPUT_TOTAL or max_input_total in config.toml"
        )

    def take_total(self, n: int, name: str) -> None:
        """Count ``n`` bytes read elsewhere (a repository walk, whose files have their own cap)."""
        self.used += n
        if self.used > self.total_bytes:
            raise self.total_error(name)


def read_capped(stream: BinaryIO, name: str, limits: InputLimits) -> bytes:
    """All of ``stream``, read in blocks; raises InputError (exit 3) naming the limit as soon as
    the file's or the run's cap is passed, without reading the rest (``/dev/zero`` never ends)."""
    room = min(limits.file_bytes, limits.total_bytes - limits.used)
    data = bytearray()
    while True:
        block = stream.read(min(_BLOCK, room + 1 - len(data)))
        if not block:
            break
        data += block
        if len(data) > room:
            if len(data) > limits.file_bytes:
                raise limits.file_error(name)
            raise limits.total_error(name)
    limits.used += len(data)
    return bytes(data)
