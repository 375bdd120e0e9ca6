"""A directory (usually a code repository) -> one Document per file, and a report of what was left out.

The walk uses ``os.scandir`` and prunes ignored folders before entering them, so node_modules or
a virtual environment costs one directory entry, not thousands of files.

Precedence, per path:
1. never: symlinks that resolve outside the root, symlinked folders (not followed: cycles and
   duplicates), unreadable files, binary content, files over ``max_file_bytes``;
2. ``exclude`` globs (gitignore syntax) remove what they match;
3. ``include`` globs, when given, keep only files they match, and override the default skips
   below for a path whose name they spell out (``--include poetry.lock``,
   ``--include 'node_modules/left-pad/**'``): a wildcard such as ``*.py`` alone never drags a
   virtual environment's thousands of files in;
4. default skips: .gitignore / .dsv2ignore rules, vendored code and cache folders at any depth,
   build output (``build``/``dist``/``out``/``target``/``_build`` when ignored by the rules or,
   at the root, holding artefacts; never when it holds source files its siblings import: see
   ignore.py), lockfiles, minified or generated files, files that look like secret stores.
Every file that is read has key-like values redacted, each one reported (path:line, kind).
The report's notes list every vendored folder left out, with the ``--include`` that reads it.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

import pathspec

from ..errors import InputError, UsageError
from .base import Document, Location, Redaction, Segment
from .encoding import decode, looks_binary, normalize_newlines
from .ignore import (
    BUILD_DIRS,
    BUILD_REASON,
    IGNORE_FILES,
    VENDORED_REASON,
    RulesFile,
    build_dir_is_source,
    compile_patterns,
    file_name_reason,
    git_info_exclude,
    holds_build_artefacts,
    ignored_by,
    long_line_reason,
    read_rules,
    vendored_dir_reason,
)
from .secrets import is_secret_file, redact, redact_name

DEFAULT_MAX_FILE_BYTES = 1_000_000
_LIST_VENDORED = 20  # vendored folders named one by one on stderr
_MASK = "\ue000"  # a private-use character: no ignore pattern names it


@dataclass(frozen=True)
class Skipped:
    path: str  # display path; folders end with "/"
    reason: str


@dataclass
class RepoReport:
    root: str
    files: int = 0
    bytes: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    redactions: list[Redaction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def notes(self, *, examples: int = 3) -> list[str]:
        """Lines for stderr: what was packed, what was skipped (grouped by reason), what was redacted."""
        lines = [f"{self.root}: {self.files} files, {self.bytes:,} bytes"]
        if self.skipped:
            by_reason: dict[str, list[str]] = {}
            for s in self.skipped:
                by_reason.setdefault(s.reason, []).append(s.path)
            parts = []
            for reason, paths in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                shown = ", ".join(paths[:examples]) + (", …" if len(paths) > examples else "")
                parts.append(f"{len(paths)} {reason} ({shown})")
            lines.append(f"{self.root}: skipped {len(self.skipped)} paths: " + "; ".join(parts))
        vendored = [s.path for s in self.skipped if s.reason == VENDORED_REASON]
        if vendored:
            shown = ", ".join(vendored[:_LIST_VENDORED]) + (", …" if len(vendored) > _LIST_VENDORED else "")
            first = vendored[0] if self.root == "." else vendored[0].removeprefix(self.root.rstrip("/") + "/")
            hint = f"to read it too: --include '**' --include '{first}**'"
            lines.append(f"{self.root}: left out vendored code: {shown} ({hint})")
        for r in self.redactions:
            lines.append(r.note())
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "files": self.files,
            "bytes": self.bytes,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "redactions": [{"path": r.path, "line": r.line, "kind": r.kind} for r in self.redactions],
        }


@dataclass(frozen=True)
class _Filters:
    include: pathspec.GitIgnoreSpec | None
    include_patterns: tuple[str, ...]
    exclude: pathspec.GitIgnoreSpec | None

    def excluded(self, rel: str, is_dir: bool) -> bool:
        return self.exclude is not None and self.exclude.match_file(rel + "/" if is_dir else rel)

    def named(self, rel: str) -> bool:
        """An include pattern spells out this path's name: it overrides the default skips."""
        name = rel.rsplit("/", 1)[-1]
        return any(name in pattern for pattern in self.include_patterns)

    def keeps_file(self, rel: str) -> bool:
        return self.include is None or self.include.match_file(rel)


def load_repo(
    root: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> tuple[list[Document], RepoReport]:
    """Documents (kind "code", one segment per file with lines 1..N) in path order, and the report."""
    if not os.path.isdir(root):
        raise InputError(f"{root}: not a directory")
    walk = _Walk(root, include, exclude, max_file_bytes)
    walk.run()
    walk.docs.sort(key=lambda d: d.source)  # full-path order, like `git ls-files`
    return walk.docs, walk.report


class _Walk:
    def __init__(self, root: str, include: Sequence[str], exclude: Sequence[str], max_file_bytes: int) -> None:
        self.root = root
        self.root_display = posixpath.normpath(root.replace(os.sep, "/"))
        self.real_root = os.path.realpath(root)
        try:
            self.filters = _Filters(
                include=compile_patterns(include, "--include") if include else None,
                include_patterns=tuple(include),
                exclude=compile_patterns(exclude, "--exclude") if exclude else None,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.max_file_bytes = max_file_bytes
        self.root_shown = redact_name(self.root_display)[0]
        self.report = RepoReport(self.root_display)
        self.docs: list[Document] = []
        # Folders entered although a rule matches their name: source named like build output
        # ("a/build/"), or a folder --include spells out.
        self.source_dirs: list[str] = []

    def ignored(self, rules: list[RulesFile], rel: str, is_dir: bool) -> bool:
        """Do the rules ignore ``rel``? Inside a folder entered although a rule matches its name
        (``source_dirs``), a rule that matches by that folder's name ("build/") does not count:
        the name is masked with characters no pattern spells (same length, so nested rules files
        still line up)."""
        for folder in self.source_dirs:
            if rel.startswith(folder):
                start = folder.rstrip("/").rfind("/") + 1
                rel = rel[:start] + _MASK * (len(folder) - 1 - start) + rel[len(folder) - 1 :]
        return ignored_by(rules, rel, is_dir) is not None

    def name(self, rel: str) -> tuple[str, list[str]]:
        """The path as shown, and the kinds of the tokens taken out of ``rel``: a token in a
        file name is not shown either, and is reported as a redaction when the file is read.
        ``rel`` is scanned once; the root part (the user named it: not reported) once per walk."""
        shown, kinds = redact_name(rel)
        return (shown if self.root_display == "." else posixpath.join(self.root_shown, shown)), kinds

    def display(self, rel: str) -> str:
        return self.name(rel)[0]

    def skip(self, rel: str, reason: str, is_dir: bool = False) -> None:
        self.report.skipped.append(Skipped(self.display(rel) + ("/" if is_dir else ""), reason))

    def run(self) -> None:
        # Depth-first, entries sorted by name: a deterministic order.
        warnings = self.report.warnings
        shown = self.display("")
        stack: list[tuple[str, str, list[RulesFile]]] = [(self.root, "", git_info_exclude(self.root, warnings, shown))]
        while stack:
            dir_path, rel_dir, rules = stack.pop()
            try:
                with os.scandir(dir_path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.skip(rel_dir.rstrip("/") or ".", f"unreadable folder ({exc.strerror})", is_dir=True)
                continue
            names = [e.name for e in entries]
            rules = rules + read_rules(dir_path, rel_dir, names, warnings, self.display(rel_dir))
            subdirs: list[tuple[str, str, list[RulesFile]]] = []
            for entry in entries:
                rel = rel_dir + entry.name
                if self.enter(entry, rel, rules):
                    subdirs.append((entry.path, rel + "/", rules))
            stack.extend(reversed(subdirs))

    def enter(self, entry: os.DirEntry[str], rel: str, rules: list[RulesFile]) -> bool:
        """Handle one entry: load a file, or return True for a folder to walk into."""
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            return False
        if is_link:
            target = os.path.realpath(entry.path)
            if os.path.commonpath([self.real_root, target]) != self.real_root:
                self.skip(rel, "symlink pointing outside the root")
                return False
            if os.path.isdir(target):
                self.skip(rel, "symlinked folder (not followed)", is_dir=True)
                return False
            if not os.path.isfile(target):
                self.skip(rel, "broken or special symlink")
                return False
            target_rel = os.path.relpath(target, self.real_root).replace(os.sep, "/")
            if is_secret_file(target_rel) and not self.filters.named(rel):
                self.skip(rel, "symlink to a file that looks like a secrets file")
                return False
        if is_dir:
            return self.enter_dir(entry, rel, rules)
        if not is_link and not entry.is_file(follow_symlinks=False):
            return False  # sockets, fifos, devices
        if entry.name in IGNORE_FILES and not self.filters.named(rel):
            return False  # rules, not content
        doc = self.load_file(entry, rel, rules)
        if doc is not None:
            self.docs.append(doc)
        return False

    def enter_dir(self, entry: os.DirEntry[str], rel: str, rules: list[RulesFile]) -> bool:
        if self.filters.excluded(rel, True):
            self.skip(rel, "excluded by --exclude", is_dir=True)
            return False
        reason = vendored_dir_reason(entry.name)
        if reason is None and entry.name in BUILD_DIRS:
            if build_dir_is_source(entry.path, os.path.dirname(entry.path)):
                self.source_dirs.append(rel + "/")
                return True  # source its siblings import, whatever a broad "build/" rule says
            if self.ignored(rules, rel, True):
                reason = f"{BUILD_REASON} (ignored by .gitignore/.dsv2ignore)"
            elif "/" not in rel and holds_build_artefacts(entry.path):
                reason = BUILD_REASON
        if reason is None and self.ignored(rules, rel, True):
            reason = "ignored by .gitignore/.dsv2ignore"
        if reason is None and os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):
            reason = "virtual environment"
        if reason is not None and not self.filters.named(rel):
            self.skip(rel, reason, is_dir=True)
            return False
        if reason is not None:  # --include spelled it out: its files are judged by their own names
            self.source_dirs.append(rel + "/")
        return True

    def load_file(self, entry: os.DirEntry[str], rel: str, rules: list[RulesFile]) -> Document | None:
        reason = self.file_skip_reason(entry, rel, rules)
        if reason is not None:
            self.skip(rel, reason)
            return None
        try:
            with open(entry.path, "rb") as fh:
                data = fh.read(self.max_file_bytes + 1)
        except OSError as exc:
            self.skip(rel, f"unreadable ({exc.strerror})")
            return None
        if len(data) > self.max_file_bytes:  # grew since stat
            self.skip(rel, f"larger than the {self.max_file_bytes:,}-byte cap")
            return None
        if not data.strip():
            self.skip(rel, "empty")
            return None
        if looks_binary(data):
            self.skip(rel, "binary")
            return None
        display, name_kinds = self.name(rel)
        text = normalize_newlines(decode(data, display, self.report.warnings))
        if not self.filters.named(rel):
            long_reason = long_line_reason(entry.name, text)
            if long_reason:
                self.skip(rel, long_reason)
                return None
        text, findings = redact(text)
        found = [Redaction(display, None, kind) for kind in name_kinds]
        found += [Redaction(display, f.line, f.kind) for f in findings]
        self.report.redactions.extend(found)
        text = text.rstrip("\n")
        self.report.files += 1
        self.report.bytes += len(data)
        segment = Segment(text, Location(display, line_start=1, line_end=text.count("\n") + 1))
        return Document(display, "code", [segment], redactions=found)

    def file_skip_reason(self, entry: os.DirEntry[str], rel: str, rules: list[RulesFile]) -> str | None:
        if self.filters.excluded(rel, False):
            return "excluded by --exclude"
        if not self.filters.keeps_file(rel):
            return "not matched by --include"
        reason = file_name_reason(entry.name)
        if reason == "binary":
            return reason
        if reason is None and self.ignored(rules, rel, False):
            reason = "ignored by .gitignore/.dsv2ignore"
        if reason is None and is_secret_file(rel):
            reason = "looks like a secrets file"
        if reason is not None and not self.filters.named(rel):
            return reason
        try:
            size = entry.stat().st_size  # follows a symlink inside the root to its file
        except OSError as exc:
            return f"unreadable ({exc.strerror})"
        if size > self.max_file_bytes:
            return f"larger than the {self.max_file_bytes:,}-byte cap ({size:,} bytes)"
        return None
