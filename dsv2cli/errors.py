"""User-facing errors. Each subclass carries the process exit code the CLI uses.

Core code raises these; only the ``cli`` package turns them into a message and an exit code.
"""

from __future__ import annotations

import re
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (README, "Exit codes")."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    INPUT = 3
    MODEL = 4
    CONTEXT_OVERFLOW = 5
    REMOTE = 6
    REFUSED = 7
    CITATION = 8
    INTERRUPTED = 130


# Characters that would break a one-line message: C0/C1 controls, DEL, line and paragraph separators.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def quote_name(name: str) -> str:
    """A file name as an error line shows it: as it is when printable, else quoted the way Python's
    ``repr`` quotes it (``'a\\nb.txt'``), so a name with a newline cannot split the line."""
    return repr(name) if _UNPRINTABLE.search(name) or name != name.strip() else name


def one_line(message: str) -> str:
    """``message`` with every control character escaped (``\\n``, ``\\x1b``): one line on stderr."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], message)


class Dsv2Error(Exception):
    """Base class: a problem the user can act on, reported as one line."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class UsageError(Dsv2Error):
    """Flags or settings that do not make sense together."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A config file or DSV2_* variable that cannot be used."""


class InputError(Dsv2Error):
    """An input document that is missing, unreadable or malformed."""

    exit_code = ExitCode.INPUT


class ModelError(Dsv2Error):
    """A model file that is missing, not a GGUF, or fails to load or run."""

    exit_code = ExitCode.MODEL


class ContextOverflowError(Dsv2Error):
    """The prompt plus the reserved output does not fit the context window."""

    exit_code = ExitCode.CONTEXT_OVERFLOW

    def __init__(self, message: str, *, input_tokens: int, window: int, budget: int) -> None:
        super().__init__(message)
        self.input_tokens = input_tokens
        self.window = window
        self.budget = budget

    @classmethod
    def no_room(
        cls, *, window: int, output: int, prompt: int, room: int, what: str, input_tokens: int, source: str = ""
    ) -> ContextOverflowError:
        """The window leaves ``room`` tokens (or none) for the input, ``what`` it is ("per chunk"),
        once ``output`` tokens are reserved and the ``prompt`` template's are taken."""
        room = max(room, 0)
        return cls(
            f"{source + ': ' if source else ''}the {window}-token window leaves {room} tokens {what} after "
            f"{output} reserved for output and a {prompt}-token prompt: use a larger --ctx or a smaller --max-tokens",
            input_tokens=input_tokens,
            window=window,
            budget=room,
        )


class RemoteError(Dsv2Error):
    """A remote backend that cannot be reached, rejects the key, or keeps failing after retries."""

    exit_code = ExitCode.REMOTE


class RefusedError(Dsv2Error):
    """Sending was refused: content that looks like a secret, or the user said no."""

    exit_code = ExitCode.REFUSED


class CitationError(Dsv2Error):
    """``ask --strict-citations``: an answer cites a passage that was not sent, or quotes what
    the cited passage does not say. The answer and its Sources block are written first."""

    exit_code = ExitCode.CITATION


# Errors that belong to one input of a batch: reported, that input skipped, the batch goes on.
# Anything else (no model, a rejected key, a server that is down) stops the batch.
PER_INPUT_ERRORS: tuple[type[Dsv2Error], ...] = (InputError, ContextOverflowError, RefusedError)
