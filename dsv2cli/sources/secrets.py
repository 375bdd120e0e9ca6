"""Secrets: files that look like secret stores, and secret values inside any text.

Where the rules come from:
- Known key formats: the regular expressions of detect-secrets' plugins (Yelp, Apache-2.0, on
  PyPI), read from the installed package, so its maintained rules apply here: AWS, Azure storage,
  GitHub, GitLab, npm (``.npmrc``), OpenAI, PyPI, SendGrid, Slack, Stripe, JWT (with the plugin's
  own check that header and payload decode as JSON), Discord, Mailchimp, Square, Telegram,
  Twilio and URLs with a password. Not used: its high-entropy, keyword and public-IP plugins (on
  ordinary code they flag hashes, test data and addresses), and its IBM, Cloudant and SoftLayer
  keyword rules (each took ~1 s a 5 MB of code; the named-value rule below covers them).
- Formats detect-secrets 1.5 lacks, written here in the same way (``_EXTRA_RULES``): Anthropic
  (``sk-ant-``), OpenAI project / service keys (``sk-proj-``), Hugging Face (``hf_``), bare npm
  (``npm_``), Google API keys, Azure AD client secrets, GitHub fine-grained tokens, Stripe test
  keys, PEM / OpenSSH / PGP / PuTTY private keys as whole blocks.
- Everything else is a value assigned to a secret-looking name (``password: ...``,
  ``aws_secret_access_key = ...``, ``"client_secret": "..."``). The name is split into words and
  must end like a secret (``db_password``, ``api_key``; not ``token_type`` or ``BARE_KEY_CHARS``).
  The value must look like a literal, not code: quoted, or alone on its line after the name; no
  calls, references or placeholders (``os.environ[...]``, ``alphanums + "_$"``, ``${X}``); and
  random enough: letters mixed with digits or symbols, and at least ``MIN_ENTROPY`` bits a
  character.

Each finding is labelled with its real type (``anthropic-key``, ``gitlab-token``,
``aws-secret-access-key``, ... or ``secret-assignment`` for a named value). Nothing is silent: the
callers report every redacted value (path:line and kind) and every excluded file. Redaction keeps
the line count, so line numbers in citations stay true. tests/sources/test_secrets.py measures
recall on generated keys of every format and false positives on installed packages' source.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import import_module
from urllib.parse import unquote

import pathspec

from .base import Document, Redaction, Segment

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

GENERIC = "secret-assignment"  # the kind of a value found by its name alone
MIN_ENTROPY = 2.5  # bits per character (Shannon) of a named value; "hunter2hunter2" has 2.8


@dataclass(frozen=True)
class Finding:
    line: int  # 1-based
    kind: str


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    # Literals of which every match holds one (compared lowercased when ``fold``): a text without
    # any is not scanned with this pattern. Most texts hold none, so most rules cost one find().
    hints: tuple[str, ...] = ()
    fold: bool = False
    check: Callable[[str], bool] | None = None  # a value that fails it is not a secret
    anchor: tuple[re.Pattern[str], int, int] | None = None  # see _ANCHORS


# detect-secrets' plugins used, by module and class: the kind of each pattern in its
# ``denylist`` (in order) and the hints of each. Their patterns are compiled by the plugin.
_DETECT_SECRETS: list[tuple[str, str, list[tuple[str, tuple[str, ...]]]]] = [
    ("aws", "AWSKeyDetector", [
        ("aws-access-key-id", ("A3T", "ABIA", "ACCA", "AKIA", "ASIA")),
        ("aws-secret-access-key", ("aws",)),
    ]),
    ("azure_storage_key", "AzureStorageKeyDetector", [("azure-storage-key", ("AccountKey=",))]),
    ("github_token", "GitHubTokenDetector", [("github-token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"))]),
    ("gitlab_token", "GitLabTokenDetector", [
        ("gitlab-token", ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-")),
        ("gitlab-token", ("GR1348941",)),
        ("gitlab-token", ("glcbt-",)),
        ("gitlab-token", ("glimt-",)),
        ("gitlab-token", ("glptt-",)),
        ("gitlab-token", ("glagent-",)),
        ("gitlab-token", ("gloas-",)),
    ]),
    ("npm", "NpmDetector", [("npm-token", ("_authToken",))]),
    ("openai", "OpenAIDetector", [("openai-key", ("T3BlbkFJ",))]),
    ("pypi_token", "PypiTokenDetector", [("pypi-token", ("pypi-Ag",)), ("pypi-token", ("pypi-Ag",))]),
    ("sendgrid", "SendGridDetector", [("sendgrid-key", ("SG.",))]),
    ("slack", "SlackDetector", [("slack-token", ("xox",)), ("slack-webhook", ("hooks.slack.com",))]),
    ("stripe", "StripeDetector", [("stripe-key", ("k_live_",))]),
    ("jwt", "JwtTokenDetector", [("jwt", ("eyJ",))]),
    ("discord", "DiscordBotTokenDetector", [("discord-bot-token", ())]),
    ("mailchimp", "MailchimpDetector", [("mailchimp-key", ("-us",))]),
    ("square_oauth", "SquareOAuthDetector", [("square-oauth-secret", ("sq0csp-",))]),
    ("telegram_token", "TelegramBotTokenDetector", [("telegram-bot-token", (":",))]),
    ("twilio", "TwilioKeyDetector", [("twilio-key", ("AC",)), ("twilio-key", ("SK",))]),
    ("basic_auth", "BasicAuthDetector", [("url-password", ("://",))]),
]  # fmt: skip
# Rule sets are data: detect-secrets' case-insensitive patterns get lowercased hints.
_FOLDED = {"aws-secret-access-key", "slack-token", "slack-webhook"}
# Patterns that start with a character class are tried at every position of the text; these are
# found through a literal inside them instead, then checked with the plugin's own pattern around
# it: (anchor, characters before it, characters after it).
_ANCHORS = {
    "telegram-bot-token": (re.compile(r":[0-9A-Za-z_-]{35}"), 10, 0),
    "discord-bot-token": (re.compile(r"\.[a-zA-Z\d_-]{6}\."), 25, 27),
    "mailchimp-key": (re.compile(r"-us[0-9]"), 32, 1),
}

# Formats detect-secrets 1.5 lacks (its GitHub rule knows ghp_ but not github_pat_, its Stripe
# rule live keys only, its OpenAI rule only keys holding "T3BlbkFJ").
_EXTRA_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("anthropic-key", r"sk-ant-(?:api|admin|sid|oat|ort)\d\d-[A-Za-z0-9_-]{32,}", ("sk-ant-",)),
    ("openai-key", r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}", ("sk-",)),
    ("openai-key", r"sk-[A-Za-z0-9]{48}", ("sk-",)),
    ("huggingface-token", r"hf_[A-Za-z0-9]{34,40}", ("hf_",)),
    ("huggingface-token", r"api_org_[A-Za-z0-9]{34}", ("api_org_",)),
    ("npm-token", r"npm_[A-Za-z0-9]{36}", ("npm_",)),
    ("google-api-key", r"AIza[0-9A-Za-z_-]{35}", ("AIza",)),
    ("azure-ad-client-secret", r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}", ("Q~",)),
    ("github-token", r"github_pat_[A-Za-z0-9_]{22,255}", ("github_pat_",)),
    ("github-token", r"gh[pousr]_[A-Za-z0-9]{36,255}", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    ("stripe-key", r"[rs]k_(?:live|test)_[0-9A-Za-z]{16,}", ("k_live_", "k_test_")),
    ("slack-token", r"xox[abposr]-[A-Za-z0-9-]{10,}", ("xox",)),
    ("databricks-token", r"dapi[a-f0-9]{32}(?:-\d)?", ("dapi",)),
    ("digitalocean-token", r"do[opr]_v1_[a-f0-9]{64}", ("_v1_",)),
    ("shopify-token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", ("shp",)),
    ("private-key", r"PuTTY-User-Key-File-\d: .*?(?:\nPrivate-MAC: [0-9a-fA-F]+|\Z)", ("PuTTY-User-Key-File",)),
]
# A private key block with its body (base64 lines, after optional "Name: value" headers), up to its
# END line; lines may be real or written as "\n" inside a string (a service account's JSON). The
# header alone, as code that looks for keys writes it, is not a key.
_NL = r"(?:\r?\n|\\n)"
_PRIVATE_KEY = _Rule(
    "private-key",
    re.compile(
        rf"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[ \t]*{_NL}(?:[A-Za-z-]+: [^\n]*{_NL})*"
        rf"(?:[ \t]*{_NL})?[ \t]*[A-Za-z0-9+/=]{{16,}}(?:[ \t]*{_NL}[ \t]*[A-Za-z0-9+/=]+)*"
        rf"(?:[ \t]*{_NL}[ \t]*-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?"
    ),
    ("PRIVATE KEY",),
)
_WORD = re.compile(r"[A-Za-z0-9_]")
# Formats with no distinctive prefix (or a short one): a match must also look random. Formats with
# a long prefix (ghp_, glpat-, sk-ant-, ...) are trusted as they are, placeholders included.
_WEAK_FORMATS = {"twilio-key", "mailchimp-key", "telegram-bot-token", "discord-bot-token",
                 "azure-ad-client-secret", "aws-secret-access-key", "huggingface-token"}  # fmt: skip
_WEAK_FORMAT_ENTROPY = 3.0
# detect-secrets patterns whose groups hold the value (elsewhere a group is part of the prefix:
# (ghp|gho|...)_ ; detect-secrets itself then reports "ghp" as the secret).
_VALUE_GROUP_KINDS = {"aws-secret-access-key", "npm-token", "url-password"}
_JWT_TAIL = re.compile(r"[A-Za-z0-9_.+/=-]*")


def _jwt_check() -> Callable[[str], bool]:
    jwt = import_module("detect_secrets.plugins.jwt")
    valid: Callable[[str], bool] = jwt.JwtTokenDetector.is_formally_valid
    return valid


@cache
def _rules() -> tuple[_Rule, ...]:
    """Every format rule, detect-secrets' first. Built on first use: importing detect-secrets
    takes ~0.2 s, which commands that read no input (``--help``, ``models``) never pay."""
    rules = [_PRIVATE_KEY]
    for module, cls, kinds in _DETECT_SECRETS:
        plugin = getattr(import_module(f"detect_secrets.plugins.{module}"), cls)
        patterns = list(plugin.denylist)
        if len(patterns) != len(kinds):  # a new detect-secrets release changed the plugin
            raise RuntimeError(f"detect-secrets {cls} has {len(patterns)} patterns, expected {len(kinds)}")
        for pattern, (kind, hints) in zip(patterns, kinds, strict=True):
            fold = kind in _FOLDED
            check = _jwt_check() if kind == "jwt" else None
            hints = tuple(h.lower() for h in hints) if fold else hints
            rules.append(_Rule(kind, pattern, hints, fold, check, _ANCHORS.get(kind)))
    for kind, pattern, hints in _EXTRA_RULES:
        rules.append(_Rule(kind, re.compile(pattern, re.DOTALL), hints))
    return tuple(rules)


# --- values by the name they are assigned to ----------------------------------------------------

# name, optional closing quote or bracket, optional type annotation, operator, value. The value is
# quoted, or a run of characters that code would not put in a literal.
# After a name: an optional closing quote or bracket, an optional type annotation, the operator, and
# the value: quoted, or a run of characters that code would not put in a literal. Matched at the
# end of each name that holds a secret word, not tried at every position of a line.
_AFTER_NAME = re.compile(
    r"""["'\]]?[ \t]*"""
    r"""(?:(?::[ \t]*[A-Za-z_][\w.\[\]| ,]*?[ \t]*)?(?<![=!<>:])(?:=|:=|=>)(?![=>])|:(?![:=/]))[ \t]*"""
    r"""(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s"'`,;&()\[\]{}<>]+)"""
)
_NAME_RUN = re.compile(r"[\w.$@-]+")
MAX_NAME = 100  # characters: a longer run is not a name
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$@-")
_NAME_SPLIT = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SECRET_WORDS = {
    "password", "passwd", "pwd", "passphrase", "pass", "secret", "secrets", "token", "apikey",
    "credential", "credentials", "privatekey", "secretkey", "accesskey", "authkey", "passcode",
}  # fmt: skip
# "key" counts after one of these: api_key, signingKey, ACCESS_KEY; not key, keyword, BARE_KEY_CHARS.
_KEY_QUALIFIERS = {
    "api", "access", "secret", "private", "auth", "signing", "encryption", "master", "client", "app",
    "application", "account", "storage", "service", "license", "subscription", "consumer", "webhook",
    "shared", "session", "deploy", "ssh", "hmac", "jwt", "bearer", "x",
}  # fmt: skip
# A name that ends in one of these describes a secret, it does not hold one: token_type, PASSWORD_FIELD.
_NOT_SECRET_ENDINGS = {
    "file", "files", "path", "paths", "dir", "url", "uri", "name", "names", "type", "types", "env",
    "var", "vars", "length", "len", "size", "count", "chars", "char", "field", "fields", "header",
    "headers", "prefix", "suffix", "pattern", "patterns", "regex", "re", "format", "fmt", "template",
    "prompt", "label", "message", "msg", "error", "errors", "class", "cls", "id", "ids", "kind",
    "mode", "hash", "hashed", "index", "idx", "pos", "position", "start", "end", "offset", "limit",
    "timeout", "expiry", "expires", "expiration", "ttl", "policy", "required", "enabled", "source",
    "location", "provider", "manager", "store", "cache", "endpoint", "host", "port", "user",
    "username", "method", "methods", "func", "fn", "callback", "handler", "parser", "validator",
    "list", "map", "dict", "spec", "schema", "version", "alg", "algorithm", "algorithms", "scheme",
    "encoding", "charset", "help", "description", "desc", "doc", "title", "placeholder", "hint",
    "option", "options", "flag", "arg", "args", "param", "params", "attr", "attribute", "column",
    "table", "keys", "parts", "set", "sep", "separator", "delimiter", "regexp",
    "reset", "change", "changed", "reuse", "confirm", "confirmation", "check", "input", "widget",
    "validation", "strength", "min", "max", "digits", "lifetime", "age", "bytes", "bits", "entropy",
    "generator", "counter", "iter", "iterator", "stream", "reader", "writer", "lexer", "tokens",
    "ref", "refs", "reference", "references", "function", "variable", "number", "string", "magic",
}  # fmt: skip
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x{3,}.*|\*{3,}.*|\.{3,}|(?:your|my|some|the|a|an|enter|insert|replace|fake|dummy|test|sample)[_-].*|"
    r".*change[_-]?me.*|.*example.*|placeholder.*|dummy.*|\[?redacted.*|none|null|nil|true|false|"
    r"undefined|required|optional|string|str|secret|password|passwd|token|.*[_-]here)$"
)
# References, interpolation and code, not literals: ${X}, {{ x }}, %(x)s, <x>, f(x), a[b], /path, http://
_REFERENCE = re.compile(r"\$\{|\$\(|^\$|\{[^}]*\}|%\(|^%|<[^>]*>|[()\[\]`\\]|^[@!|>&*~/#.]|^[a-z][\w+.-]*://|\.\.\.|…")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # settings.API_KEY2
# Words with a short number, class names: password1, parent_10, V1SecretReference.
_WORDS_NUMBERED = re.compile(r"[A-Za-z]+(?:[_-][A-Za-z]+)*[_-]?\d{1,4}|(?:[A-Z]\d+)?(?:[A-Z][a-z]{2,}){2,}")
_CAMEL = re.compile(r"(?:[A-Z]?[a-z]+|[A-Z]+)+(?:[-_.:/](?:[A-Z]?[a-z]+|[A-Z]+)+)*")  # serverlessrepo:applicationId


@lru_cache(maxsize=4096)  # the same names come back line after line
def _name_is_secret(name: str) -> bool:
    words = [w.lower() for w in _NAME_SPLIT.findall(name)]
    if not words or words[-1] in _NOT_SECRET_ENDINGS or "public" in words:
        return False
    for i, word in enumerate(words):
        if word in _SECRET_WORDS:
            return True
        if word == "key" and i > 0 and words[i - 1] in _KEY_QUALIFIERS:
            return True
    return False


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _value_is_secret(value: str) -> bool:
    """A literal that is random enough to be a key or a password, not a word, reference or placeholder."""
    if not 8 <= len(value) <= 256 or any(c.isspace() for c in value):
        return False
    if _PLACEHOLDER.match(value) or _REFERENCE.search(value) or "EXAMPLE" in value:
        return False
    if _DOTTED.fullmatch(value) or _WORDS_NUMBERED.fullmatch(value):
        return False
    digits = any(c.isdigit() for c in value)
    letters = any(c.isalpha() for c in value)
    symbols = any(not c.isalnum() and c not in "-_.:/" for c in value)
    upper_lower = any(c.isupper() for c in value) and any(c.islower() for c in value)
    if not letters and not symbols:
        return False  # a number
    if not (digits or symbols or (upper_lower and not _CAMEL.fullmatch(value))):
        return False  # words: "content-type", "AccessToken"
    return entropy(value) >= MIN_ENTROPY


_AWS_SECRET_VALUE = re.compile(r"[A-Za-z0-9/+]{40}")
_REST_IS_EMPTY = re.compile(r"[ \t]*(?:#|//|;|$)", re.MULTILINE)  # after an unquoted value: nothing, or a comment


def _named_values(text: str) -> Iterator[tuple[int, int, str]]:
    """Values assigned to secret-looking names: each name around an occurrence of a secret word."""
    lowered = text.lower()
    seen: set[int] = set()
    for word in ("pass", "pwd", "secret", "token", "key", "credential"):
        pos = lowered.find(word)
        while pos != -1:
            start, limit = pos, max(pos - MAX_NAME - 1, 0)
            while start > limit and text[start - 1] in _NAME_CHARS:
                start -= 1
            run = _NAME_RUN.match(text, pos)
            end = run.end() if run is not None else pos + len(word)
            if start not in seen:
                seen.add(start)
                found = _named_value(text, start, end)
                if found is not None:
                    yield found
            pos = lowered.find(word, max(end, pos + 1))


def _named_value(text: str, start: int, end: int) -> tuple[int, int, str] | None:
    """The secret value assigned to the name at text[start:end], if there is one."""
    if end - start > MAX_NAME or (start > 0 and text[start - 1] in _NAME_CHARS):
        return None  # a run of name characters too long to be a name
    if start > 0 and text[start - 1] == ":":  # AWS::SecretsManager::Secret
        return None
    m = _AFTER_NAME.match(text, end)  # first: most names in prose have no operator after them
    if m is None:
        return None
    name = text[start:end]
    if (not name[0].isalpha() and name[0] not in "_@$") or not _name_is_secret(name):
        return None
    value = m.group("value")
    v_start, v_end = m.span("value")
    if value[0] in "\"'":
        value, v_start, v_end = value[1:-1], v_start + 1, v_end - 1
    elif not _REST_IS_EMPTY.match(text, v_end):
        return None  # an expression: alphanums + "_$", get(token) or ...
    if not _value_is_secret(value):
        return None
    aws = "aws" in name.lower() and _AWS_SECRET_VALUE.fullmatch(value)
    return v_start, v_end, "aws-secret-access-key" if aws else GENERIC


# An AWS secret access key has no prefix: 40 characters of base64. Next to an access key id (within
# AWS_CONTEXT_LINES lines) such a run is taken as its secret, as detect-secrets' AWS plugin reads the
# lines around a key id for its secret; it must look random (mixed case and digits, entropy).
AWS_CONTEXT_LINES = 3
_AWS_SECRET_NEARBY = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _aws_secrets_near_key_ids(text: str, key_ids: list[tuple[int, int, str]]) -> Iterator[tuple[int, int, str]]:
    for start, end, _kind in key_ids:
        lo = start
        for _ in range(AWS_CONTEXT_LINES + 1):
            lo = text.rfind("\n", 0, max(lo - 1, 0)) + 1 if lo > 0 else 0
        hi = end
        for _ in range(AWS_CONTEXT_LINES + 1):
            nxt = text.find("\n", hi + 1)
            hi = len(text) if nxt == -1 else nxt
        for m in _AWS_SECRET_NEARBY.finditer(text, lo, hi):
            value = m.group()
            mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
            if mixed and any(c.isdigit() for c in value) and entropy(value) >= 4.0 and "EXAMPLE" not in value:
                yield m.start(), m.end(), "aws-secret-access-key"


# --- finding and redacting ------------------------------------------------------------------------


def is_secret_file(rel_path: str) -> bool:
    return SECRET_FILES.match_file(rel_path)


def _bounded(text: str, start: int, end: int) -> bool:
    """The match is a whole token: no word character right before or after it."""
    before = start > 0 and _WORD.match(text[start - 1]) is not None and _WORD.match(text[start]) is not None
    after = end < len(text) and _WORD.match(text[end]) is not None and _WORD.match(text[end - 1]) is not None
    return not before and not after


def _matches(rule: _Rule, text: str) -> Iterator[re.Match[str]]:
    if rule.anchor is None:
        yield from rule.pattern.finditer(text)
        return
    anchor, before, after = rule.anchor
    last = 0
    for a in anchor.finditer(text):
        m = rule.pattern.search(text, max(last, a.start() - before), a.end() + after)
        if m is not None and m.end() >= a.end():
            last = m.end()
            yield m


def _format_matches(rule: _Rule, text: str) -> Iterator[tuple[int, int]]:
    """Spans of the secret in each match: the whole match, or for the patterns that match a name
    or a URL around the value, the value's group."""
    for m in _matches(rule, text):
        spans = [m.span(i) for i in range(1, (m.re.groups or 0) + 1) if m.group(i)]
        if rule.kind in _VALUE_GROUP_KINDS and spans:
            start, end = min(s for s, _ in spans), max(e for _, e in spans)
        else:
            start, end = m.span()
        if rule.kind == "jwt":
            end = _JWT_TAIL.match(text, end).end()  # type: ignore[union-attr]  # matches the empty string too
        if not _bounded(text, start, end):
            continue
        value = text[start:end]
        if "EXAMPLE" in value:  # AWS's documented example keys, and others written like them
            continue
        if rule.kind == "url-password" and not _value_is_secret(unquote(value)):
            continue
        if rule.kind in _WEAK_FORMATS and entropy(value) < _WEAK_FORMAT_ENTROPY:
            continue
        if rule.check is not None and not rule.check(text[start:end]):
            continue
        yield start, end


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans of secret values, in text order."""
    spans: list[tuple[int, int, str]] = []
    lowered: str | None = None
    for rule in _rules():
        if rule.hints:
            if rule.fold:
                lowered = text.lower() if lowered is None else lowered
                if not any(h in lowered for h in rule.hints):
                    continue
            elif not any(h in text for h in rule.hints):
                continue
        spans.extend((s, e, rule.kind) for s, e in _format_matches(rule, text))
    spans.extend(_named_values(text))
    spans.extend(_aws_secrets_near_key_ids(text, [sp for sp in spans if sp[2] == "aws-access-key-id"]))
    # At one position a named format beats a named value, and the longer match wins.
    spans.sort(key=lambda span: (span[0], span[2] == GENERIC, -span[1]))
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            if span[1] > kept[-1][1] and span[2] != GENERIC:  # overlapping formats: cover both
                kept[-1] = (kept[-1][0], span[1], kept[-1][2])
            continue
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


def redact_name(name: str) -> tuple[str, list[str]]:
    """A file name or path with secret values replaced, and their kinds: a token can be a name."""
    text, findings = redact(name)
    return text, [f.kind for f in findings]


def redact_document(doc: Document) -> Document:
    """``doc`` with secrets taken out of its name and its text, each recorded in ``redactions``
    (a file named directly, standard input: the same treatment as a repository's files)."""
    source, name_kinds = redact_name(doc.source)
    found = [Redaction(source, None, kind) for kind in name_kinds]
    segments: list[Segment] = []
    for seg in doc.segments:
        text, findings = redact(seg.text)
        loc = seg.location
        if name_kinds:  # a segment names its document (a page, a section), seldom another file
            loc = replace(loc, source=source if loc.source == doc.source else redact_name(loc.source)[0])
        first = loc.line_start if loc.line_start is not None else 1
        found += [Redaction(source, first + f.line - 1, f.kind, loc.page) for f in findings]
        segments.append(Segment(text, loc) if findings or loc is not seg.location else seg)
    if not found:
        return doc
    return replace(doc, source=source, segments=segments, redactions=doc.redactions + found)


def kinds() -> list[str]:
    """Every kind a finding can have, sorted (for documentation and tests)."""
    return sorted({r.kind for r in _rules()} | {GENERIC, "aws-secret-access-key"})
