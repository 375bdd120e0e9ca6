"""The llama-cpp-python adapter: the version it accepts, and that it loads the library lazily."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from dsv2cli import llama
from dsv2cli.errors import ExitCode, ModelError
from dsv2cli.kvcache import CACHE_TYPES

from .test_architecture import absolute_imports

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("accepted", ["0.3.17", "0.3.36", "0.3.99", "0.3.36+cu124"])
def test_versions_in_the_tested_range_are_accepted(accepted: str) -> None:
    llama.check_version(accepted)


@pytest.mark.parametrize("refused", ["0.3.16", "0.2.90", "0.4.0", "0.4", "0.4.0rc1", "1.0.0"])
def test_a_version_outside_the_tested_range_is_one_clear_line(refused: str) -> None:
    with pytest.raises(ModelError) as caught:
        llama.check_version(refused)
    assert str(caught.value) == (
        f"llama-cpp-python {refused} is outside the tested range 0.3.17..0.4: "
        "pip install 'llama-cpp-python>=0.3.17,<0.4'"
    )
    assert caught.value.exit_code == ExitCode.MODEL == 4


def test_the_installed_version_is_in_range_and_pyproject_asks_for_the_same() -> None:
    llama.check_version(version("llama-cpp-python"))
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"{llama.REQUIREMENT}"' in pyproject


def test_importing_the_adapter_does_not_import_llama_cpp() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, dsv2cli.llama, dsv2cli.tokens; print('llama_cpp' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "False"


def _llama_cpp_uses(path: Path) -> list[str]:
    """Imports of llama_cpp (outside ``if TYPE_CHECKING:``) and ``._model`` / ``._ctx`` reads in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if any(n == "llama_cpp" or n.startswith("llama_cpp.") for n in absolute_imports(node)):
            found.append(f"{path.name}:{node.lineno}: imports llama_cpp")
        if isinstance(node, ast.Attribute) and node.attr in ("_model", "_ctx"):
            found.append(f"{path.name}:{node.lineno}: reads .{node.attr}")
    return found


def test_only_the_adapter_reaches_into_llama_cpp() -> None:
    """Every other module goes through dsv2cli/llama.py (type-only imports aside)."""
    package = ROOT / "dsv2cli"
    found = [use for path in sorted(package.rglob("*.py")) if path.name != "llama.py" for use in _llama_cpp_uses(path)]
    assert not found, found
    assert _llama_cpp_uses(package / "llama.py")  # the check sees what it looks for


def test_every_cache_type_has_its_ggml_id() -> None:
    import gguf

    assert llama.cache_type_ids() == {name: int(gguf.GGMLQuantizationType[name.upper()]) for name in CACHE_TYPES}
