"""Paths and settings that crashed (issue 20, part 3): DSV2_HOME that is a file, under a file or not
creatable; config values of the wrong type; ``extract --out`` that cannot be written, checked
before any model work. Each is one stderr line and exit 2 (or 3), never "unexpected error"."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dsv2cli.errors import ConfigError, ExitCode
from dsv2cli.fsutil import write_problem
from dsv2cli.settings import resolve

from .conftest import dsv2_cmd


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, env=env, timeout=120)


def _doc(tmp_path: Path) -> Path:
    doc = tmp_path / "notes.txt"
    doc.write_text("The ferry leaves at noon.\n")
    return doc


def test_dsv2_home_that_is_a_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder")
    proc = _run(["pack", str(_doc(tmp_path))], {**os.environ, "DSV2_HOME": str(home)})
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == f"dsv2: error: DSV2_HOME {home}: is a file, not a folder; point DSV2_HOME at a folder\n"


def test_dsv2_home_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    home = blocker / "deeper" / "home"
    proc = _run(["plan", str(_doc(tmp_path)), "--tokenizer", "deepseek-v2"], {**os.environ, "DSV2_HOME": str(home)})
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == f"dsv2: error: DSV2_HOME {home}: cannot be created: {blocker} is a file, not a folder\n"


def test_dsv2_home_that_cannot_be_created(tmp_path: Path) -> None:
    """As root, permission bits do not stop a mkdir: /proc does (the cache is then done without,
    and what must be written fails in one line naming DSV2_HOME)."""
    if os.geteuid() == 0:
        home = Path("/proc/dsv2-home-test")
        env = {**os.environ, "DSV2_HOME": str(home)}
        pack = _run(["pack", str(_doc(tmp_path)), "--json", "--tokenizer", "deepseek-v2"], env)
        assert pack.returncode == 0, pack.stderr
        assert "counting without it" in pack.stderr and "unexpected error" not in pack.stderr
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        home = locked / "home"
        proc = _run(["pack", str(_doc(tmp_path))], {**os.environ, "DSV2_HOME": str(home)})
        assert proc.returncode == ExitCode.USAGE
        assert proc.stderr == f"dsv2: error: DSV2_HOME {home}: cannot be created: {locked} is not writable\n"
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ctx = 4096.5", "ctx must be a whole number, not 4096.5"),
        ("max_tokens = 12.0", "max_tokens must be a whole number, not 12.0"),
        ("threads = true", "threads must be a whole number, not True"),
        ("model = 5", "model must be a string, not 5"),
        ("temperature = [1, 2]", "invalid value [1, 2] for temperature"),
        ("ctx = { a = 1 }", "invalid value {'a': 1} for ctx"),
        ('max_input_file = "lots"', "invalid value 'lots' for max_input_file"),
    ],
)
def test_config_values_of_the_wrong_type_name_key_and_file(dsv2_home: Path, line: str, message: str) -> None:
    dsv2_home.mkdir(parents=True, exist_ok=True)
    config = dsv2_home / "config.toml"
    config.write_text(line + "\n")
    with pytest.raises(ConfigError) as caught:
        resolve({}, {"DSV2_HOME": str(dsv2_home)})
    assert str(caught.value) == f"{config}: {message}"


def test_a_float_ctx_in_the_config_is_exit_2_on_the_command_line(dsv2_home: Path, tmp_path: Path) -> None:
    dsv2_home.mkdir(parents=True, exist_ok=True)
    (dsv2_home / "config.toml").write_text("ctx = 4096.5\n")
    proc = _run(["plan", str(_doc(tmp_path)), "--tokenizer", "deepseek-v2"])
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr == f"dsv2: error: {dsv2_home / 'config.toml'}: ctx must be a whole number, not 4096.5\n"


def test_input_limits_come_from_config_and_environment(dsv2_home: Path) -> None:
    dsv2_home.mkdir(parents=True, exist_ok=True)
    (dsv2_home / "config.toml").write_text('max_input_file = "64M"\nmax_input_total = "2G"\n')
    assert resolve({}, {"DSV2_HOME": str(dsv2_home)}).input_limits == (64 * 1024**2, 2 * 1024**3)
    env = {"DSV2_HOME": str(dsv2_home), "DSV2_MAX_INPUT_FILE": "1M"}
    assert resolve({}, env).input_limits == (1024**2, 2 * 1024**3)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda tmp: tmp, "is a directory; give a file name"),
        (lambda tmp: tmp / "missing" / "out.json", "folder {tmp}/missing does not exist"),
        (lambda tmp: tmp / "notes.txt" / "out.json", "{tmp}/notes.txt is not a folder"),
    ],
)
def test_extract_out_that_cannot_be_written_fails_before_any_model_work(
    tmp_path: Path, make: Callable[[Path], Path], problem: str
) -> None:
    doc = _doc(tmp_path)
    out = make(tmp_path)
    # --model names a file that does not exist: had the model been touched first, this would be exit 4
    proc = _run(["extract", str(doc), "--out", str(out), "--model", str(tmp_path / "absent.gguf")])
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert proc.stderr == f"dsv2: error: --out {out}: {problem.format(tmp=tmp_path)}\n"


def test_write_problem_tries_a_real_file(tmp_path: Path) -> None:
    assert write_problem(tmp_path / "fine.json") is None
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    if os.geteuid() == 0:
        assert write_problem(Path("/proc/out.json")) == "cannot write in /proc (No such file or directory)"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert write_problem(locked / "out.json") == f"cannot write in {locked} (Permission denied)"
        finally:
            locked.chmod(0o700)
