"""The ``dsv2`` command: the only package that parses flags, prints and picks exit codes.

One module per command (summarize, ask, extract; pack/plan/models in inspect; index and cache in
manage; config; completion) over what they share (options, common, session). Importing the package registers every
command on ``app``.
"""

from __future__ import annotations

from . import (  # noqa: F401 - registers the commands
    ask,
    chat,
    completion,
    config,
    extract,
    inspect,
    logs,
    manage,
    models,
    prompt,
    summarize,
    templates,
)
from .app import app, main

__all__ = ["app", "main"]
