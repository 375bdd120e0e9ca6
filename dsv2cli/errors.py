"""User-facing errors. Each subclass carries the process exit code the CLI uses.

Core code raises these; only the ``cli`` package turns them into a message and an exit code.
"""

from __future__ import annotations

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
    INTERRUPTED = 130


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


# Errors that belong to one input of a batch: reported, that input skipped, the batch goes on.
# Anything else (no model, a rejected key, a server that is down) stops the batch.
PER_INPUT_ERRORS: tuple[type[Dsv2Error], ...] = (InputError, ContextOverflowError, RefusedError)
