"""What a repository walk leaves out by default, and .gitignore / .dsv2ignore rules.

Rules files use gitignore syntax (pathspec's GitIgnoreSpec). As in git, each file applies to
paths below its own directory, a deeper file overrides a shallower one (including ``!``
re-includes), and a path inside an ignored directory stays ignored: the walk never enters it.
The repository's ``.git/info/exclude`` counts as a root rules file; ignore files above the root
and the user's global excludes do not (a packed directory should not depend on who packs it).

Like git, an invalid line in a rules file (a lone ``!``, a trailing backslash, a range such as
``[z-a]``) is skipped, with a warning naming the file and line; an invalid ``--include`` /
``--exclude`` pattern is a usage error. Patterns become regular expressions matched by RE2
(google-re2, through pathspec's "re2" backend), which runs in time linear in the path: a
pattern such as ``*a*a*a*a*a*a*a*a*a*a*a*a*b`` takes 5 s against a 30-letter name with
Python's backtracking ``re`` and microseconds with RE2. Where google-re2 cannot be imported,
pathspec's own backend is used and a pattern with more than ``MAX_WILDCARDS`` single-star
wildcards is refused the same way as an invalid one.

Folders left out by name, at any depth: vendored code (``_vendor``, ``vendor``, ``third_party``,
``node_modules`` ...) and caches, tool and VCS folders (``.git``, ``__pycache__``, ``.venv`` ...).
``build``, ``dist``, ``out``, ``target`` and ``_build`` are left out only as build output: when
the rules ignore them, or at the root holding artefacts (wheels, object files, ``*.egg-info``,
setuptools' ``lib``/``bdist.*`` folders, CMake or Cargo markers). A folder of that name that
holds source files its siblings import (pip's ``pip/_internal/operations/build/``) is source and
always read (``repo.py`` decides, with ``build_dir_is_source`` and ``holds_build_artefacts``).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pathspec
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

# RE2 matches in linear time; without google-re2 (a dependency) pathspec's own backend is used.
PATTERN_BACKEND = "re2" if importlib.util.find_spec("re2") is not None else "simple"

IGNORE_FILES = (".gitignore", ".dsv2ignore")
MAX_WILDCARDS = 6  # only without RE2: backtracking grows like len(name) ** wildcards

# Dependencies copied into the tree: never the project's own code.
VENDOR_DIRS = frozenset({
    "_vendor", "vendor", "vendored", "_vendored", "third_party", "third-party", "thirdparty", "3rdparty",
    "node_modules", "bower_components", "jspm_packages", "site-packages", "Pods", "Carthage", "elm-stuff", "deps",
})  # fmt: skip
# Caches, tool state, virtual environments, VCS metadata.
CACHE_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".tox", ".nox", ".eggs", ".hypothesis", ".next", ".nuxt", ".svelte-kit", ".parcel-cache",
    ".gradle", ".terraform", ".serverless", "DerivedData", "coverage", "htmlcov", ".coverage_html", ".idea",
    ".cache", ".turbo", ".yarn", ".pnpm-store",
})  # fmt: skip
# Names that are build output only when the rules ignore them or, at the root, they hold artefacts.
BUILD_DIRS = frozenset({"build", "dist", "out", "target", "_build"})
BUILD_SUFFIXES = (".egg-info", ".dist-info")
VENDORED_REASON = "vendored code"
CACHE_REASON = "cache, tool or VCS folder"
BUILD_REASON = "build output"

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
    found by its pyvenv.cfg when repo.py walks the tree: ``_Walk.enter_dir``). Build folder
    names are not decided here: see the module doc."""
    if name in VENDOR_DIRS:
        return VENDORED_REASON
    if name in CACHE_DIRS:
        return CACHE_REASON
    if name.endswith(BUILD_SUFFIXES):
        return BUILD_REASON
    return None


# -- build/, dist/, out/: output or source? ---------------------------------------------------

SOURCE_SUFFIXES = frozenset({
    ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".go", ".rs", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".cxx", ".java", ".kt", ".scala", ".rb", ".php", ".cs", ".swift", ".m", ".lua", ".sh",
})  # fmt: skip
ARTEFACT_SUFFIXES = (
    ".whl", ".egg", ".tar.gz", ".tgz", ".zip", ".o", ".obj", ".so", ".a", ".lib", ".dylib", ".dll", ".exe",
    ".pyc", ".pyd", ".class", ".jar", ".war", ".wasm", ".rlib", ".rmeta", ".js.map", ".min.js",
)  # fmt: skip
ARTEFACT_MARKERS = frozenset({"CACHEDIR.TAG", ".rustc_info.json", "CMakeCache.txt", "CMakeFiles", ".ninja_log"})
SETUPTOOLS_PREFIXES = ("lib.", "bdist.", "temp.", "scripts-")
_SCAN_ENTRIES = 2000  # directory entries looked at to find artefacts
_SCAN_SIBLINGS = 200  # sibling files read to find an import of the folder
_SCAN_BYTES = 65536  # of each


def holds_build_artefacts(path: str) -> bool:
    """Wheels, object files, egg-info, setuptools' build layout, CMake/Cargo markers within 3 levels."""
    seen = 0
    stack = [(path, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > _SCAN_ENTRIES:
                return False
            name = e.name
            if name in ARTEFACT_MARKERS or name.endswith(BUILD_SUFFIXES):
                return True
            if depth == 0 and (name.startswith(SETUPTOOLS_PREFIXES) or name == "lib"):
                return True
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if depth < 2:
                    stack.append((e.path, depth + 1))
            elif name.lower().endswith(ARTEFACT_SUFFIXES):
                return True
    return False


def _import_pattern(name: str) -> re.Pattern[str]:
    n = re.escape(name)
    return re.compile(
        rf"^\s*(?:from\s+\.*[\w.]*\b{n}\b|import\s+[\w.]*\b{n}\b|from\s+\.+\s+import\s+.*\b{n}\b)"  # Python
        rf"|(?:require\(|import\s*\(|from\s+|import\s+)['\"]\.{{1,2}}/(?:[\w.-]+/)*{n}(?:/|['\"])"  # JS / TS
        rf"|#\s*include\s*[\"<](?:[\w.-]+/)*{n}/"  # C / C++
        rf"|^\s*(?:use|mod)\s+(?:crate::|super::|self::)?(?:\w+::)*{n}\b"  # Rust
        rf"|\"[\w./-]*/{n}\"",  # Go import paths
        re.MULTILINE,
    )


def build_dir_is_source(path: str, parent: str) -> bool:
    """A folder named like build output that holds source files its siblings import.

    Source files directly inside it, and either a Python package inside a package
    (``__init__.py`` in both) or a source file beside it importing it by name.
    """
    try:
        with os.scandir(path) as it:
            names = {e.name for e in it if e.is_file(follow_symlinks=False)}
    except OSError:
        return False
    if not any(os.path.splitext(n)[1] in SOURCE_SUFFIXES for n in names):
        return False
    if "__init__.py" in names and os.path.isfile(os.path.join(parent, "__init__.py")):
        return True
    pattern = _import_pattern(os.path.basename(path))
    try:
        with os.scandir(parent) as it:
            siblings = [e.path for e in it if os.path.splitext(e.name)[1] in SOURCE_SUFFIXES and e.is_file()]
    except OSError:
        return False
    for sibling in sorted(siblings)[:_SCAN_SIBLINGS]:
        try:
            with open(sibling, encoding="utf-8", errors="replace") as fh:
                text = fh.read(_SCAN_BYTES)
        except OSError:
            continue
        if pattern.search(text):
            return True
    return False


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


def pattern_problem(line: str) -> str | None:
    """Why a gitignore-syntax pattern cannot be used, or None when it can (blank lines and
    comments can)."""
    try:
        pattern = GitIgnoreSpecPattern(line)
    except re.error as exc:
        return exc.msg if hasattr(exc, "msg") else str(exc)
    except ValueError as exc:  # pathspec's GitIgnorePatternError
        if line.strip() == "!":
            return "a lone '!'"
        return "a trailing backslash" if line.endswith("\\") else str(exc)
    if PATTERN_BACKEND != "re2" and pattern.regex is not None:
        body = line.replace("**", "")
        if body.count("*") > MAX_WILDCARDS:
            return f"more than {MAX_WILDCARDS} wildcards (install google-re2 to match it in bounded time)"
    return None


def compile_rules(lines: Iterable[str], where: str, warnings: list[str]) -> pathspec.GitIgnoreSpec:
    """A rules file's patterns; each invalid line is skipped with a warning ``where:N: ...``, as git does."""
    valid: list[str] = []
    for number, line in enumerate(lines, 1):
        problem = pattern_problem(line)
        if problem is None:
            valid.append(line)
        else:
            warnings.append(f"{where}:{number}: invalid pattern {line.strip()!r} skipped ({problem})")
    return pathspec.GitIgnoreSpec.from_lines(valid, backend=PATTERN_BACKEND)


def compile_patterns(patterns: Iterable[str], flag: str) -> pathspec.GitIgnoreSpec:
    """``--include`` / ``--exclude`` patterns; an invalid one raises ValueError with a one-line reason."""
    listed = list(patterns)
    for pattern in listed:
        problem = pattern_problem(pattern)
        if problem is None and "\n" in pattern:
            problem = "a pattern is one line"
        if problem is not None:
            raise ValueError(f"{flag} {pattern!r}: not a valid pattern ({problem})")
    return pathspec.GitIgnoreSpec.from_lines(listed, backend=PATTERN_BACKEND)


def read_rules(
    dir_path: str, base: str, names: Iterable[str], warnings: list[str] | None = None, shown: str = ""
) -> list[RulesFile]:
    """The .gitignore and .dsv2ignore in one directory (given the names it contains). Invalid
    lines are skipped with a warning in ``warnings`` naming ``shown`` + the file and the line."""
    found: list[RulesFile] = []
    present = set(names)
    sink = warnings if warnings is not None else []
    for name in IGNORE_FILES:
        if name not in present:
            continue
        try:
            with open(os.path.join(dir_path, name), encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        spec = compile_rules(lines, shown + name, sink)
        if len(spec):
            found.append(RulesFile(base, spec))
    return found


def git_info_exclude(root: str, warnings: list[str] | None = None, shown: str = "") -> list[RulesFile]:
    path = os.path.join(root, ".git", "info", "exclude")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    spec = compile_rules(lines, shown + ".git/info/exclude", warnings if warnings is not None else [])
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
