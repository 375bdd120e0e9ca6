"""Named prompt templates: the user's, in the config directory, and the shipped ones (built-ins).

A template is a text file ``NAME.txt`` with ``{{ name }}`` placeholders; what it is for follows
from the placeholders a command fills in (table :data:`USES`): ``{{ document }}`` and ``{{
question }}`` for ask and chat, ``{{ document }}`` for summarize, ``{{ prompt }}`` and/or ``{{
input }}`` for prompt. A template is checked against the command that uses it, and a placeholder
the command needs but the template lacks is refused (exit 2), as for the shipped prompts.
A user template named like a built-in one is used in its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import prompts
from .errors import UsageError

# command -> (placeholders it requires, placeholders it may fill)
USES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "ask": (frozenset({"document", "question"}), prompts.FILLED["ask"]),
    "chat": (frozenset({"document", "question"}), prompts.FILLED["ask"]),
    "summarize": (frozenset({"document"}), frozenset({"document"})),
    "prompt": (frozenset(), frozenset({"prompt", "input"})),
}
KNOWN = frozenset().union(*(allowed for _, allowed in USES.values()), *prompts.FILLED.values())


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    builtin: bool

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{self.path}: cannot read template {self.name!r} ({exc})") from exc

    def commands(self) -> list[str]:
        """The commands this template can serve, from its placeholders."""
        found = prompts.placeholders(self.text())
        fits = [c for c, (required, allowed) in USES.items() if required <= found <= allowed]
        return [c for c in fits if c != "prompt"] if self.builtin else fits  # "system" is no prompt


def template_dir(environ: Mapping[str, str]) -> Path:
    """``templates/`` beside the config file (``$DSV2_HOME/templates`` when DSV2_HOME is set)."""
    from .settings import config_files, default_home

    files = config_files(environ)
    base = files[0].path.parent if files else default_home(environ)
    return base / "templates"


def _valid_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith(".") or name.endswith(".txt"):
        raise UsageError(f"template name {name!r}: use a plain name such as 'review' (no path, no .txt)")
    return name


def all_templates(environ: Mapping[str, str]) -> list[Template]:
    """The user's templates, then the built-ins they do not replace; each group by name."""
    folder = template_dir(environ)
    mine = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    names = {p.stem for p in mine}
    found = [Template(p.stem, p, False) for p in mine]
    builtin_dir = prompts.prompt_dir()
    found += [Template(n, builtin_dir / f"{n}.txt", True) for n in prompts.template_names() if n not in names]
    return found


def find(name: str, environ: Mapping[str, str]) -> Template:
    _valid_name(name)
    for template in all_templates(environ):
        if template.name == name:
            return template
    known = ", ".join(t.name for t in all_templates(environ))
    raise UsageError(f"no template named {name!r} (dsv2 templates list): {known}")


def load_for(name: str, command: str, environ: Mapping[str, str]) -> str:
    """The text of template ``name``, checked for what ``command`` fills in."""
    template = find(name, environ)
    text = template.text()
    required, allowed = USES[command]
    prompts.check(text, required, allowed, where=f"template {name!r} ({template.path}) for {command}")
    return text


def user_path(name: str, environ: Mapping[str, str]) -> Path:
    return template_dir(environ) / f"{_valid_name(name)}.txt"


def check_any(text: str, where: str) -> None:
    """A template being saved: every placeholder must be one some command fills."""
    unknown = prompts.placeholders(text) - KNOWN
    if unknown:
        raise UsageError(
            f"{where}: unknown placeholder(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN))}"
        )
