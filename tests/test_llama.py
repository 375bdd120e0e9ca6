"""The llama-cpp-python adapter: the version it accepts, and that it loads the library lazily."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from dsv2cli import llama
from dsv2cli.errors import ExitCode, ModelError

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
