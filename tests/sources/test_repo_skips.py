"""Which folders a repository walk reads: vendored code and build output are left out, source is
not, whatever its folder is called; ignore patterns that git would refuse are skipped, not fatal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.errors import UsageError
from dsv2cli.sources import load_repo
from dsv2cli.sources.ignore import PATTERN_BACKEND

runner = CliRunner()


def _write(root: Path, rel: str, content: str | bytes = "x = 1\n") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def _read(root: Path, **kwargs: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    docs, report = load_repo(str(root), **kwargs)  # type: ignore[arg-type]
    prefix = f"{root}/"
    skipped = {s.path.removeprefix(prefix): s.reason for s in report.skipped}
    return [d.source.removeprefix(prefix) for d in docs], skipped, report.notes()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """pip's layout in small: vendored code, a source folder called build/ that a sibling imports,
    and the git-ignored build/ that setuptools leaves at the root. The .gitignore's ``build/``
    is unanchored, as in GitHub's Python template: git leaves the source folder alone only
    because it is tracked."""
    root = tmp_path / "proj"
    _write(root, ".gitignore", "build/\n*.log\n")
    _write(root, "pkg/__init__.py", "")
    _write(root, "pkg/_vendor/lib.py", "def vendored():\n    return 1\n")
    _write(root, "pkg/_vendor/six/six.py", "PY3 = True\n")
    _write(root, "pkg/internal/runner.py", "from .build.step import run_step\n\nrun_step()\n")
    _write(root, "pkg/internal/build/step.py", "def run_step():\n    return 'built'\n")
    _write(root, "pkg/internal/build/sdist.py", "def make_sdist():\n    return 'sdist'\n")
    _write(root, "build/lib/pkg/__init__.py", "")
    _write(root, "build/lib/pkg/internal/runner.py", "from .build.step import run_step\n")
    _write(root, "build/bdist.linux-x86_64/marker.txt", "output\n")
    _write(root, "debug.log", "log line\n")
    _git(root, "init", "-q")
    _git(root, "add", "-f", ".gitignore", "pkg")
    return root


def test_vendored_code_is_left_out_at_any_depth_and_listed(project: Path) -> None:
    read, skipped, notes = _read(project)
    assert not [p for p in read if "_vendor" in p]
    assert skipped["pkg/_vendor/"] == "vendored code"
    listed = [n for n in notes if "left out vendored code" in n]
    assert listed == [f"{project}: left out vendored code: {project}/pkg/_vendor/ "
                      "(to read it too: --include '**' --include 'pkg/_vendor/**')"]  # fmt: skip
    read_too, _, _ = _read(project, include=["**", "pkg/_vendor/**"])  # the hint works
    assert set(read_too) - set(_read(project)[0]) == {"pkg/_vendor/lib.py", "pkg/_vendor/six/six.py"}


def test_a_source_folder_named_build_is_read_and_the_build_output_is_not(project: Path) -> None:
    read, skipped, _ = _read(project)
    assert "pkg/internal/build/step.py" in read and "pkg/internal/build/sdist.py" in read
    assert "pkg/internal/build/" not in skipped
    assert skipped["build/"] == "build output (ignored by .gitignore/.dsv2ignore)"
    assert not [p for p in read if p.startswith("build/")]


def test_what_is_read_is_what_git_would_take_less_vendored_code(project: Path) -> None:
    read, _, _ = _read(project)
    git_files = _git(project, "ls-files", "--cached", "--others", "--exclude-standard").split()
    expected = sorted(p for p in git_files if "/_vendor/" not in p and p != ".gitignore" and p != "pkg/__init__.py")
    assert read == expected  # pkg/__init__.py is empty: skipped as such
    ignored = _git(project, "ls-files", "--others", "--ignored", "--exclude-standard", "--directory").split()
    assert sorted(ignored) == ["build/", "debug.log"]


def test_include_overrides_vendored_and_build_skips(project: Path) -> None:
    read, _, _ = _read(project, include=["pkg/_vendor/**", "build/**"])
    assert read == ["build/bdist.linux-x86_64/marker.txt", "build/lib/pkg/internal/runner.py",
                    "pkg/_vendor/lib.py", "pkg/_vendor/six/six.py"]  # fmt: skip


def test_build_folders_at_the_root_are_output_only_when_they_hold_artefacts(tmp_path: Path) -> None:
    _write(tmp_path, "dist/proj-1.0-py3-none-any.whl", b"PK\x03\x04")
    _write(tmp_path, "out/obj/main.o", b"\x7fELF")
    _write(tmp_path, "target/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")
    _write(tmp_path, "target/debug/app.d", "app: src/main.rs\n")
    _write(tmp_path, "build/make_docs.py", "print('docs')\n")  # build scripts, not output
    _write(tmp_path, "docs/out/notes.md", "# Notes\n")  # not at the root, not ignored
    _write(tmp_path, "main.py", "print(1)\n")
    read, skipped, _ = _read(tmp_path)
    assert read == ["build/make_docs.py", "docs/out/notes.md", "main.py"]
    assert {p: r for p, r in skipped.items() if r == "build output"} == {
        "dist/": "build output", "out/": "build output", "target/": "build output"}  # fmt: skip


def test_a_package_inside_a_package_is_source_whatever_it_is_called(tmp_path: Path) -> None:
    _write(tmp_path, ".gitignore", "dist/\n")
    _write(tmp_path, "tool/__init__.py", "")
    _write(tmp_path, "tool/dist/__init__.py", "")
    _write(tmp_path, "tool/dist/wheel.py", "def wheel():\n    return 1\n")
    read, _, _ = _read(tmp_path)
    assert read == ["tool/dist/wheel.py"]


# -- ignore patterns git would refuse ----------------------------------------------------------


def test_invalid_lines_in_ignore_files_are_skipped_with_a_warning_naming_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, ".gitignore", "!\n*.log\nfoo\\\n[z-a]\n")
    _write(tmp_path, "sub/.dsv2ignore", "# drafts\n[z-a].md\ndrafts/\n")
    _write(tmp_path, "a.log", "log\n")
    _write(tmp_path, "main.py", "x = 1\n")
    _write(tmp_path, "sub/drafts/wip.md", "wip\n")
    _write(tmp_path, "sub/keep.md", "kept\n")
    read, skipped, notes = _read(tmp_path)
    assert read == ["main.py", "sub/keep.md"]  # the valid lines still apply
    assert skipped["a.log"] == skipped["sub/drafts/"] == "ignored by .gitignore/.dsv2ignore"
    warnings = [n for n in notes if n.startswith("warning:")]
    assert warnings == [
        f"warning: {tmp_path}/.gitignore:1: invalid pattern '!' skipped (a lone '!')",
        f"warning: {tmp_path}/.gitignore:3: invalid pattern 'foo\\\\' skipped (a trailing backslash)",
        f"warning: {tmp_path}/.gitignore:4: invalid pattern '[z-a]' skipped (bad character range z-a)",
        f"warning: {tmp_path}/sub/.dsv2ignore:2: invalid pattern '[z-a].md' skipped (bad character range z-a)",
    ]


@pytest.mark.parametrize(("flag", "pattern"), [("--exclude", "[z-a]"), ("--include", "!"), ("--exclude", "x\\")])
def test_an_invalid_include_or_exclude_is_a_usage_error(tmp_path: Path, flag: str, pattern: str) -> None:
    _write(tmp_path, "main.py", "x = 1\n")
    with pytest.raises(UsageError, match=r"not a valid pattern"):
        load_repo(str(tmp_path), **{flag.lstrip("-"): [pattern]})  # type: ignore[arg-type]
    result = runner.invoke(app, ["pack", "--repo", str(tmp_path), flag, pattern])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "not a valid pattern" in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_a_pattern_that_backtracks_catastrophically_does_not_hang(tmp_path: Path) -> None:
    # With Python's re this pattern takes ~5 s on a 30-letter name and grows like len ** 12;
    # RE2 is linear. The walk runs in a child process so a regression fails at the timeout
    # instead of hanging the suite.
    assert PATTERN_BACKEND == "re2"
    pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*b"
    _write(tmp_path, ".gitignore", pattern + "\n")
    _write(tmp_path, "a" * 200 + ".py", "x = 1\n")
    _write(tmp_path, "sub/" + "a" * 120, "y = 2\n")
    code = (
        "import sys; from dsv2cli.sources import load_repo; "
        f"docs, _ = load_repo(sys.argv[1], exclude=[{pattern!r}], include=[{pattern!r} + '*', '*']); "
        "print(len(docs))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"
