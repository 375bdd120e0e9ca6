"""Secrets: files that look like secret stores, and key-like values inside ordinary files.

Nothing here is silent: every excluded file and every redacted value is reported by the caller
(path:line and kind), so a user sees what the model did not get. Redaction keeps the line count,
so line numbers in citations stay true.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pathspec

# Files never sent by default (gitignore syntax). `--include` naming one overrides this;
# its content is still redacted line by line.
SECRET_FILE_PATTERNS = [
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.asc", "*.gpg",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "credentials.json", "credentials", "client_secret*.json", "service-account*.json",
    ".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass", ".htpasswd", ".git-credentials",
    "secrets.json", "secrets.yaml", "secrets.yml", "secrets.toml",
]  # fmt: skip
SECRET_FILES = pathspec.GitIgnoreSpec.from_lines(SECRET_FILE_PATTERNS)

# (kind, pattern). Patterns start with a literal, not with \b: Python's re then scans for the
# literal and a pass over 1.2 MB of code takes ~1 ms instead of ~100 ms. Word boundaries are
# checked on each match instead (_bounded).
_TOKEN_PATTERNS: list[tuple[str, str]] = [
    ("aws-access-key-id", r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"),
    ("github-token", r"gh[pousr]_[A-Za-z0-9]{36,255}"),
    ("github-token", r"github_pat_[A-Za-z0-9_]{22,255}"),
    ("slack-token", r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"),
    ("openai-key", r"sk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"),
    ("google-api-key", r"AIza[0-9A-Za-z_-]{35}"),
    ("stripe-key", r"sk_(?:live|test)_[0-9A-Za-z]{16,}"),  # two patterns: one literal start each
    ("stripe-key", r"rk_(?:live|test)_[0-9A-Za-z]{16,}"),
    ("jwt", r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
]
_COMPILED = [(kind, re.compile(p)) for kind, p in _TOKEN_PATTERNS]
# Generic assignments: api_key = "...", "client_secret": "...", PASSWORD='...', token: "...".
# Find every quoted value of 8+ characters after = or :, then look at the name before it.
_QUOTED_VALUE = re.compile(r"""[=:][ \t]*(["'])([^"'\s]{8,})\1""")
_SECRET_NAME = re.compile(
    r"(?i)(?:api[_-]?key|secret|passw(?:or)?d|passwd|token|access[_-]?key|private[_-]?key|auth[_-]?key|credential)"
    r"""[\w.-]*["']?[ \t]*:?$"""
)
_NAME_WORDS = ("key", "secret", "passw", "token", "credential")
# .env style, unquoted: DB_PASSWORD=hunter2hunter2, export API_TOKEN=abc...
_ENV_ASSIGNMENT = re.compile(
    r"(?:KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL)[A-Z0-9_]*[ \t]*=[ \t]*(?P<v>[^\s\"'#]{8,})"
)
_ENV_NAME_START = re.compile(r"[ \t]*(?:export[ \t]+)?[A-Z0-9_]*$")
_ENV_WORDS = ("KEY", "SECRET", "PASSW", "TOKEN", "CREDENTIAL")  # without one, _ENV_ASSIGNMENT cannot match
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r".*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# Values that are obviously not secrets: placeholders and references.
_PLACEHOLDER = re.compile(
    r"(?i)^(?:\$\{?[\w.]+\}?|<[^>]*>|\{\{.*\}\}|%\(?\w+\)?s?|x{4,}|\*{4,}|\.{3,}|(?:your|my|some)[_-].*|"
    r"change[_-]?me.*|example.*|placeholder.*|dummy.*|\[?redacted.*|none|null|true|false)$"
)
_WORD = re.compile(r"[A-Za-z0-9_]")


@dataclass(frozen=True)
class Finding:
    line: int  # 1-based
    kind: str


def is_secret_file(rel_path: str) -> bool:
    return SECRET_FILES.match_file(rel_path)


def _bounded(text: str, start: int, end: int) -> bool:
    """The match is a whole token: no word character right before or after it."""
    before = start > 0 and _WORD.match(text[start - 1]) is not None
    after = end < len(text) and _WORD.match(text[end]) is not None
    return not before and not after


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans of secret values, in text order."""
    spans: list[tuple[int, int, str]] = [(m.start(), m.end(), "private-key") for m in _PRIVATE_KEY.finditer(text)]
    for kind, pattern in _COMPILED:
        spans.extend((m.start(), m.end(), kind) for m in pattern.finditer(text) if _bounded(text, *m.span()))
    for m in _QUOTED_VALUE.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        prefix = text[max(line_start, m.start() - 80) : m.start()]
        lowered = prefix.lower()
        if not any(word in lowered for word in _NAME_WORDS):
            continue  # _SECRET_NAME needs one of them; most quoted values have none before them
        if _SECRET_NAME.search(prefix) and not _PLACEHOLDER.match(m.group(2)):
            spans.append((m.start(2), m.end(2), "secret-assignment"))
    env_assignments = _ENV_ASSIGNMENT.finditer(text) if any(w in text for w in _ENV_WORDS) else ()
    for m in env_assignments:
        line_start = text.rfind("\n", 0, m.start()) + 1
        if not _ENV_NAME_START.match(text, line_start, m.start()):
            continue
        if not _PLACEHOLDER.match(m.group("v")):
            spans.append((m.start("v"), m.end("v"), "secret-assignment"))
    # At one position, a named kind beats the generic assignment, and the longer match wins.
    spans.sort(key=lambda span: (span[0], span[2] == "secret-assignment", -span[1]))
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            continue  # inside a span already found (a token inside an assignment, a key block)
        kept.append(span)
    return kept


def redact(text: str) -> tuple[str, list[Finding]]:
    """Replace secret values with ``[REDACTED:kind]``; a private key block keeps its line count."""
    spans = find_secrets(text)
    if not spans:
        return text, []
    out: list[str] = []
    findings: list[Finding] = []
    pos = 0
    line = 1
    for start, end, kind in spans:
        line += text.count("\n", pos, start)
        findings.append(Finding(line, kind))
        out.append(text[pos:start])
        out.append(f"[REDACTED:{kind}]" + "\n" * text.count("\n", start, end))
        line += text.count("\n", start, end)
        pos = end
    out.append(text[pos:])
    return "".join(out), findings
