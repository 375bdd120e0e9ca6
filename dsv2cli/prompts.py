"""Prompt templates are data files (``prompts/*.txt``) with ``{{ name }}`` placeholders.

They ship inside the wheel as ``dsv2cli/prompts``; in a source checkout they are read from
the repository's ``prompts/`` folder.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from .errors import UsageError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# What the code fills in, per template; tests check every template against this table.
FILLED: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "summarize_brief": frozenset({"document"}),
    "summarize_detailed": frozenset({"document"}),
    "summarize_bullets": frozenset({"document"}),
    "summarize_packed": frozenset({"document", "count", "style"}),  # summarize --each --pack (batch.py)
    "map": frozenset({"document", "part", "parts"}),
    "reduce": frozenset({"document"}),
    "ask": frozenset({"document", "question", "example"}),
    "extract": frozenset({"document", "fields"}),
}


def _prompt_dir() -> Path:
    packaged = resources.files("dsv2cli") / "prompts"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "prompts"


def prompt_dir() -> Path:
    """Where the shipped templates are (``dsv2 templates`` lists them as built-ins)."""
    return _prompt_dir()


def template_names() -> list[str]:
    return sorted(p.stem for p in _prompt_dir().glob("*.txt"))


def load(name: str) -> str:
    path = _prompt_dir() / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:  # a packaging bug, not a user error
        raise RuntimeError(f"prompt template {name!r} missing from {path.parent}") from exc


def load_user_template(path: Path, required: frozenset[str]) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read prompt file ({exc})") from exc
    check(text, required, allowed=required, where=str(path))
    return text


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def check(text: str, required: frozenset[str], allowed: frozenset[str], where: str) -> None:
    found = placeholders(text)
    missing, unknown = required - found, found - allowed
    if missing:
        raise UsageError(f"{where}: prompt template lacks {', '.join('{{ ' + m + ' }}' for m in sorted(missing))}")
    if unknown:
        raise UsageError(
            f"{where}: unknown placeholder(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )


def fill_stable(text: str, values: dict[str, str], stable: str = "document") -> tuple[str, int | None]:
    """``fill``, plus how many leading characters do not depend on anything after ``{{ stable }}``.

    The prefix is reusable when the template puts the documents first (ours all do).
    """
    match = next((m for m in PLACEHOLDER.finditer(text) if m.group(1) == stable), None)
    if match is None:
        return fill(text, values), None
    head = fill(text[: match.end()], values)
    return head + fill(text[match.end() :], values), len(head)


def user_message(template: str, values: dict[str, str]) -> tuple[str, int | None]:
    """The filled, stripped user message and the length of its stable (documents) prefix."""
    text, stable = fill_stable(template, values)
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    if stable is not None:
        stable = min(max(stable - lead, 0), len(text))
    return text, stable


def fill(text: str, values: dict[str, str]) -> str:
    """Substitute placeholders in one pass: filled-in text is never re-scanned."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
