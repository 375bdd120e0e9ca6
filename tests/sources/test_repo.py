"""Directories as code repositories: ignore rules, default skips, symlinks, size cap, secrets."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from dsv2cli.errors import InputError
from dsv2cli.sources import load, load_inputs, load_repo

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"  # split so this file is not itself a finding
GH_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def _write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small git repository with every kind of thing the loader must leave out."""
    root = tmp_path / "proj"
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("outside the root\n")
    files = {
        "README.md": "# Proj\n\nA tiny project.\n",
        "src/app.py": "def main():\n    return 42\n",
        "src/util.py": f'TOKEN = "{GH_TOKEN}"\nAWS = "{AWS_KEY}"\nx = 1\n',
        "src/gen/.gitignore": "*.py\n!keep.py\n",
        "src/gen/auto.py": "generated = True\n",
        "src/gen/keep.py": "kept = True\n",
        ".gitignore": "*.log\nbuild/\n/secret_notes.txt\n",
        "debug.log": "log line\n",
        "secret_notes.txt": "do not send\n",
        "build/out.js": "console.log(1)\n",
        "node_modules/left-pad/index.js": "module.exports = 1\n",
        ".venv/lib/site.py": "x = 1\n",
        "package-lock.json": "{}\n",
        "static/app.min.js": "var a=1;\n",
        "static/bundle.js": "var b=" + "1+" * 1500 + "1;\n",
        ".env": "DB_PASSWORD=hunter2hunter2\n",
        "certs/server.pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "config/settings.py": (
            'DEBUG = True\napi_key = "9f8e7d6c5b4a39281706"\n'
            "KEY_PEM = '''\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n"
            "-----END RSA PRIVATE KEY-----\n'''\n"
            "after = 'still line 9'\n"
        ),
        "docs/.dsv2ignore": "drafts/\n",
        "docs/guide.md": "Guide.\n",
        "docs/drafts/wip.md": "WIP.\n",
        "data/big.txt": "y" * 1_500_000 + "\n",  # over the default 1 MB cap
        "empty.py": "",
    }
    for rel, content in files.items():
        _write(root, rel, content)
    _write(root, "assets/logo.bin", bytes(range(256)) * 4)
    _write(root, "assets/weird.dat.txt", b"text\x00with\x00nuls")
    (root / "link_out.txt").symlink_to(outside)
    (root / "link_in.py").symlink_to(root / "src" / "app.py")
    (root / "linked_dir").symlink_to(root / "src", target_is_directory=True)
    (root / "innocent.txt").symlink_to(root / ".env")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _rel(docs: list, root: Path) -> list[str]:  # type: ignore[type-arg]
    prefix = str(root).replace(os.sep, "/") + "/"
    return [d.source.removeprefix(prefix) for d in docs]


def test_repo_loads_only_source_files_in_path_order(repo: Path) -> None:
    docs, report = load_repo(str(repo))
    assert _rel(docs, repo) == [
        "README.md",
        "config/settings.py",
        "docs/guide.md",
        "link_in.py",
        "src/app.py",
        "src/gen/keep.py",
        "src/util.py",
    ]
    assert report.files == 7


def test_every_skip_is_reported_with_its_reason(repo: Path) -> None:
    _, report = load_repo(str(repo))
    reasons = {s.path.removeprefix(str(repo) + "/"): s.reason for s in report.skipped}
    assert reasons["debug.log"] == "ignored by .gitignore/.dsv2ignore"
    assert reasons["secret_notes.txt"] == "ignored by .gitignore/.dsv2ignore"
    assert reasons["build/"] == "build output (ignored by .gitignore/.dsv2ignore)"
    assert reasons["node_modules/"] == "vendored code"
    assert reasons[".venv/"] == "cache, tool or VCS folder"
    assert reasons[".git/"] == "cache, tool or VCS folder"
    assert reasons["src/gen/auto.py"] == "ignored by .gitignore/.dsv2ignore"  # nested .gitignore
    assert reasons["docs/drafts/"] == "ignored by .gitignore/.dsv2ignore"  # nested .dsv2ignore
    assert reasons["package-lock.json"] == "lockfile"
    assert reasons["static/app.min.js"] == "minified or generated"
    assert reasons["static/bundle.js"].startswith("minified or generated (a line of 3,0")
    assert reasons[".env"] == "looks like a secrets file"
    assert reasons["certs/server.pem"] == "looks like a secrets file"
    assert reasons["assets/logo.bin"] == "binary"
    assert reasons["assets/weird.dat.txt"] == "binary"
    assert reasons["data/big.txt"] == "larger than the 1,000,000-byte cap (1,500,001 bytes)"
    assert reasons["link_out.txt"] == "symlink pointing outside the root"
    assert reasons["linked_dir/"] == "symlinked folder (not followed)"
    assert reasons["innocent.txt"] == "symlink to a file that looks like a secrets file"
    assert reasons["empty.py"] == "empty"
    notes = report.notes()
    assert notes[0] == f"{repo}: 7 files, {report.bytes:,} bytes"
    assert "skipped" in notes[1] and "lockfile (" in notes[1]


def test_content_outside_the_root_never_appears(repo: Path) -> None:
    docs, _ = load_repo(str(repo))
    assert all("outside the root" not in d.text for d in docs)


def test_secrets_are_redacted_and_reported_with_path_and_line(repo: Path) -> None:
    docs, report = load_repo(str(repo))
    by_path = {d.source.removeprefix(str(repo) + "/"): d for d in docs}
    util = by_path["src/util.py"].text
    assert GH_TOKEN not in util and AWS_KEY not in util
    assert util.splitlines() == ['TOKEN = "[REDACTED:github-token]"', 'AWS = "[REDACTED:aws-access-key-id]"', "x = 1"]
    settings = by_path["config/settings.py"]
    assert "MIIEow" not in settings.text and "9f8e7d6c5b4a39281706" not in settings.text
    assert settings.text.splitlines()[8] == "after = 'still line 9'"  # line numbers survive redaction
    assert settings.segments[0].location.line_end == 9
    found = {(r.path.removeprefix(str(repo) + "/"), r.line, r.kind) for r in report.redactions}
    assert found == {
        ("src/util.py", 1, "github-token"),
        ("src/util.py", 2, "aws-access-key-id"),
        ("config/settings.py", 2, "secret-assignment"),
        ("config/settings.py", 4, "private-key"),
    }
    assert f"{repo}/src/util.py:1: redacted a value that looks like a secret (github-token)" in report.notes()


def test_code_files_are_one_segment_with_full_line_range(repo: Path) -> None:
    docs, _ = load_repo(str(repo))
    app = next(d for d in docs if d.source.endswith("src/app.py"))
    assert app.kind == "code"
    assert len(app.segments) == 1
    assert app.segments[0].location.cite() == f"{repo}/src/app.py:1-2"


def test_include_keeps_only_matching_files_but_never_drags_in_vendored_folders(repo: Path) -> None:
    docs, report = load_repo(str(repo), include=["*.py"])
    assert _rel(docs, repo) == ["config/settings.py", "link_in.py", "src/app.py", "src/gen/keep.py", "src/util.py"]
    assert any(s.reason == "not matched by --include" for s in report.skipped)


def test_include_naming_a_skipped_path_overrides_the_default(repo: Path) -> None:
    docs, _ = load_repo(str(repo), include=["package-lock.json", "node_modules/left-pad/**", "src/gen/auto.py"])
    assert _rel(docs, repo) == ["node_modules/left-pad/index.js", "package-lock.json", "src/gen/auto.py"]


def test_include_naming_a_secrets_file_still_redacts_it(repo: Path) -> None:
    docs, report = load_repo(str(repo), include=[".env"])
    assert _rel(docs, repo) == [".env"]
    assert docs[0].text == "DB_PASSWORD=[REDACTED:secret-assignment]"
    assert [(r.line, r.kind) for r in report.redactions] == [(1, "secret-assignment")]


def test_exclude_removes_files_and_folders(repo: Path) -> None:
    docs, report = load_repo(str(repo), exclude=["src/", "*.md"])
    assert _rel(docs, repo) == ["config/settings.py", "link_in.py"]
    assert {s.path.removeprefix(str(repo) + "/") for s in report.skipped if "--exclude" in s.reason} == {
        "src/", "README.md", "docs/guide.md"}  # fmt: skip


def test_a_folder_with_pyvenv_cfg_is_a_virtualenv_whatever_its_name(tmp_path: Path) -> None:
    _write(tmp_path, "myenv/pyvenv.cfg", "home = /usr\n")
    _write(tmp_path, "myenv/lib/mod.py", "x = 1\n")
    _write(tmp_path, "main.py", "y = 2\n")
    docs, report = load_repo(str(tmp_path))
    assert _rel(docs, tmp_path) == ["main.py"]
    assert report.skipped[0].reason == "virtual environment"


def test_a_directory_path_becomes_repo_documents_via_load_inputs(repo: Path, tmp_path: Path) -> None:
    notes_file = _write(tmp_path, "notes.txt", "Loose note.\n")
    docs, notes = load_inputs([str(notes_file), str(repo)], include=["src/**"])
    assert docs[0].source == str(notes_file)
    assert all(d.source.startswith(f"{repo}/src/") for d in docs[1:])
    assert notes[0].startswith(f"{repo}: 3 files")
    docs2, _ = load_inputs([], repo=str(repo))
    assert len(docs2) == 7


def test_load_of_a_directory_gives_one_document_with_a_segment_per_file(repo: Path) -> None:
    doc = load(str(repo))
    assert doc.kind == "repo"
    assert len(doc.segments) == 7
    assert any("skipped" in w for w in doc.warnings)
    assert doc.segments[0].location.source == f"{repo}/README.md"


def test_no_inputs_and_empty_directories_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no input"):
        load_inputs([])
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError, match="no files to read"):
        load_inputs([str(tmp_path / "nothing")])
    # load and load_inputs read a directory the same way: the same line, naming it as its notes do
    _write(tmp_path, "nothing/.env", "KEY=1\n")
    for read in (lambda p: load_inputs([p]), load):
        with pytest.raises(InputError) as caught:
            read(f"{tmp_path / 'nothing'}/")
        assert str(caught.value) == f"{tmp_path / 'nothing'}: no files to read (1 skipped)"


def test_relative_root_gives_relative_paths(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.parent)
    docs, report = load_repo("proj/")
    assert docs[0].source == "proj/README.md"
    monkeypatch.chdir(repo)
    docs, report = load_repo(".")
    assert docs[0].source == "README.md"
    assert report.root == "."


def test_sample_code_directory_loads() -> None:
    docs, report = load_repo(str(SAMPLES / "code"))
    assert len(docs) >= 3
    assert all(d.source.startswith(str(SAMPLES / "code")) for d in docs)
    assert report.redactions == []


def test_walking_a_hundred_file_package_is_fast(tmp_path: Path) -> None:
    body = "".join(f"def function_{i}(x):\n    return x * {i}  # {'comment ' * 8}\n\n" for i in range(160))
    for n in range(100):
        _write(tmp_path, f"pkg/sub{n % 7}/module_{n}.py", body)  # ~12 KB each, 1.2 MB in all
    _write(tmp_path, "pkg/node_modules/x/index.js", "x\n" * 10)
    started = time.perf_counter()
    docs, report = load_repo(str(tmp_path / "pkg"))
    elapsed = time.perf_counter() - started
    assert len(docs) == 100 and report.bytes > 1_100_000
    assert elapsed < 1.0, f"{elapsed:.2f} s"
