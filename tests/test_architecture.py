"""The package's shape: layers that only look down, and terminal libraries only where things are drawn.

    sources -> tokens -> packing -> strategies, index -> engines -> tasks -> api -> render -> cli

Every import in every module (top level, inside functions, under TYPE_CHECKING alike) is read
from the source with ``ast``; a module may import from its own layer or a lower one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dsv2cli"

# Lowest first. A module's layer is the first prefix of its dotted name (without "dsv2cli.") listed.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # what every layer may use: errors, typed settings, file and thread helpers, the llama.cpp adapter
    ("foundation", ("errors", "settings", "kvcache", "fsutil", "parallel", "llama", "ggufmeta", "data")),
    ("sources", ("sources",)),
    ("tokens", ("bpe", "tokens", "chat", "prompts", "templates")),
    # with packing: the Backend protocol and its data types, an interface over the packed prompt
    # (strategies such as map-reduce call a backend they are handed; implementations are engines)
    ("packing", ("packing", "engines.base")),
    ("strategies", ("strategies", "index")),
    ("engines", ("engines", "memory", "models", "remote", "hub")),
    ("tasks", ("summarize", "ask", "citations", "extract", "planning", "chat_session", "logs", "batch")),
    ("api", ("api",)),
    ("render", ("render",)),
    ("cli", ("cli", "__main__")),
]


def layer_of(module: str) -> int:
    name = module.removeprefix("dsv2cli").lstrip(".")
    if not name or name == "__init__":
        return 0
    parts = name.split(".")
    for length in range(len(parts), 0, -1):  # the longest listed prefix decides
        prefix = ".".join(parts[:length])
        for rank, (_, prefixes) in enumerate(LAYERS):
            if prefix in prefixes:
                return rank
    raise AssertionError(f"dsv2cli.{name} is in no layer: add it to LAYERS in {__file__}")


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported dsv2cli module, line) for every import statement in the file."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("dsv2cli")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("dsv2cli"):
                if not node.module or target == package:  # from . import x: x may be a module
                    out += [(_submodule(target, alias.name), node.lineno) for alias in node.names]
                else:
                    out.append((target, node.lineno))
    return out


def absolute_imports(node: ast.AST) -> list[str]:
    """The modules an ``import`` / absolute ``from ... import`` statement names (else nothing)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level:
        return [node.module or ""]
    return []


def _submodule(package: str, name: str) -> str:
    """``package.name`` when that is a module, else ``package`` (a name defined in its __init__)."""
    folder = PACKAGE.parent.joinpath(*package.split("."))
    if (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists():
        return f"{package}.{name}"
    return package


def test_every_module_has_a_layer() -> None:
    for module, _ in modules():
        layer_of(module)


def test_no_module_imports_from_a_layer_above_it() -> None:
    upward = []
    for module, path in modules():
        mine = layer_of(module)
        for target, line in imports(module, path):
            if layer_of(target) > mine:
                upward.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {module} ({LAYERS[mine][0]}) imports "
                    f"{target} ({LAYERS[layer_of(target)][0]})"
                )
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


@pytest.mark.parametrize("library", ["typer", "rich", "click"])
def test_terminal_libraries_only_in_cli_and_render(library: str) -> None:
    found = []
    for module, path in modules():
        if layer_of(module) >= layer_of("dsv2cli.render"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if any(n == library or n.startswith(library + ".") for n in absolute_imports(node)):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not found, f"{library} imported outside cli/ and render.py: {found}"


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a source module importing the CLI is caught."""
    bad = tmp_path / "dsv2cli" / "sources" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from ..cli import app\nimport dsv2cli.api\n")
    found = imports("dsv2cli.sources.bad", bad)
    assert ("dsv2cli.cli", 1) in found and ("dsv2cli.api", 2) in found
    assert all(layer_of(t) > layer_of("dsv2cli.sources.bad") for t, _ in found)
