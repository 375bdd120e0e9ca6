"""What a repository walk leaves out by default, and .gitignore / .dsv2ignore rules.

Rules files use gitignore syntax (pathspec's GitIgnoreSpec). As in git, each file applies to
paths below its own directory, a deeper file overrides a shallower one (including ``!``
re-includes), and a path inside an ignored directory stays ignored: the walk never enters it.
The repository's ``.git/info/exclude`` counts as a root rules file; ignore files above the root
and the user's global excludes do not (a packed directory should not depend on who packs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import pathspec

IGNORE_FILES = (".gitignore", ".dsv2ignore")

# Folders of dependencies, build output, caches and VCS metadata.
VENDORED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", "node_modules", "bower_components", "jspm_packages", ".venv", "venv",
    "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".eggs", ".hypothesis",
    "dist", "build", "target", "vendor", "third_party", "out", ".next", ".nuxt", ".svelte-kit", ".parcel-cache",
    ".gradle", ".terraform", ".serverless", "Pods", "DerivedData", "coverage", "htmlcov", ".coverage_html",
    "site-packages", ".idea", ".cache", ".turbo", ".yarn", ".pnpm-store", "elm-stuff", "_build", "deps",
})  # fmt: skip
VENDORED_SUFFIXES = (".egg-info", ".dist-info")

LOCKFILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock",
    "poetry.lock", "uv.lock", "Pipfile.lock", "pdm.lock", "pylock.toml", "Cargo.lock", "Gemfile.lock",
    "composer.lock", "go.sum", "flake.lock", "packages.lock.json", "mix.lock", "pubspec.lock", "Podfile.lock",
    "Package.resolved", "gradle.lockfile", "conda-lock.yml",
})  # fmt: skip

MINIFIED_SUFFIXES = (".min.js", ".min.mjs", ".min.css", ".bundle.js", ".js.map", ".css.map", ".map")

# Known binary formats: skipped without reading them.
BINARY_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff", ".psd", ".heic",
    ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar", ".war", ".whl", ".egg",
    ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".lib", ".obj", ".class", ".pyc", ".pyo", ".pyd", ".wasm",
    ".bin", ".dat", ".db", ".sqlite", ".sqlite3", ".parquet", ".npy", ".npz", ".pkl", ".pickle", ".pt", ".pth",
    ".onnx", ".gguf", ".safetensors", ".h5", ".ttf", ".otf", ".woff", ".woff2", ".eot", ".mp3", ".mp4", ".wav",
    ".ogg", ".flac", ".mov", ".avi", ".mkv", ".webm", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx",
    ".odt", ".ods", ".odp", ".dmg", ".iso", ".img", ".deb", ".rpm", ".msi", ".apk", ".ipa",
})  # fmt: skip

# Prose may have long unwrapped paragraphs; elsewhere a line this long means generated or minified.
PROSE_SUFFIXES = (".md", ".markdown", ".rst", ".txt", ".adoc", ".org", ".tex")
MAX_LINE_CHARS = 2000


def vendored_dir_reason(name: str) -> str | None:
    """A reason to skip a folder by its name alone (a virtual environment under another name is
    found by its pyvenv.cfg when repo.py walks the tree: ``_Walk.enter_dir``)."""
    if name in VENDORED_DIRS or name.endswith(VENDORED_SUFFIXES):
        return "vendored, build or cache folder"
    return None


def file_name_reason(name: str) -> str | None:
    """A reason to skip a file by its name alone (lockfile, minified, known binary format)."""
    if name in LOCKFILES:
        return "lockfile"
    lower = name.lower()
    if lower.endswith(MINIFIED_SUFFIXES):
        return "minified or generated"
    _, ext = os.path.splitext(lower)
    if ext in BINARY_SUFFIXES:
        return "binary"
    return None


def long_line_reason(name: str, text: str) -> str | None:
    if name.lower().endswith(PROSE_SUFFIXES) or len(text) <= MAX_LINE_CHARS:
        return None
    longest = max(map(len, text.split("\n")))
    if longest > MAX_LINE_CHARS:
        return f"minified or generated (a line of {longest:,} characters)"
    return None


@dataclass(frozen=True)
class RulesFile:
    base: str  # directory of the rules file, relative to the root, "" for the root, else ending in "/"
    spec: pathspec.GitIgnoreSpec


def read_rules(dir_path: str, base: str, names: Iterable[str]) -> list[RulesFile]:
    """The .gitignore and .dsv2ignore in one directory (given the names it contains)."""
    found: list[RulesFile] = []
    present = set(names)
    for name in IGNORE_FILES:
        if name not in present:
            continue
        try:
            with open(os.path.join(dir_path, name), encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        if len(spec):
            found.append(RulesFile(base, spec))
    return found


def git_info_exclude(root: str) -> list[RulesFile]:
    path = os.path.join(root, ".git", "info", "exclude")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            spec = pathspec.GitIgnoreSpec.from_lines(fh.read().splitlines())
    except OSError:
        return []
    return [RulesFile("", spec)] if len(spec) else []


def ignored_by(rules: Iterable[RulesFile], rel_path: str, is_dir: bool) -> RulesFile | None:
    """The rules file that excludes ``rel_path`` (the deepest one that decides), else None."""
    decided: RulesFile | None = None
    for rule in rules:
        sub = rel_path[len(rule.base) :]
        result = rule.spec.check_file(sub + "/" if is_dir else sub)
        if result.include is True:
            decided = rule
        elif result.include is False:
            decided = None
    return decided
