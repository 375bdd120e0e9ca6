"""Secret detection, measured: recall on generated keys of every known format (each with its real
label), false positives on ordinary source lines of installed packages, and tables of cases."""

from __future__ import annotations

import base64
import json
import random
import string
import sys
import sysconfig
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import pytest

from dsv2cli.sources.base import Document, Location, Segment
from dsv2cli.sources.secrets import find_secrets, is_secret_file, kinds, redact, redact_document, redact_name

# --- realistic fake keys, one generator per format --------------------------------------------------
# Random but in each issuer's real shape (prefix, alphabet, length). Seeded: the same keys each run.
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
DIGITS = string.digits
UPPER = string.ascii_uppercase + DIGITS


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _joined(rng: random.Random, *parts: str | tuple[str, int]) -> str:
    """Literal parts as they are, (alphabet, n) parts drawn at random."""
    return "".join(p if isinstance(p, str) else _pick(rng, *p) for p in parts)


def _b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


JWT_HEADER = _b64url({"alg": "HS256", "typ": "JWT"})
SLACK_HOOKS = "https://hooks.slack.com/services/"


def _pem(rng: random.Random, label: str) -> str:
    body = "\n".join(_pick(rng, B64, 64) for _ in range(6)) + "\n" + _pick(rng, B64, 20) + "=="
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


# (kind, generator). Every kind here must be found in every context, with this label.
FORMATS: list[tuple[str, Callable[[random.Random], str]]] = [
    ("aws-access-key-id", lambda r: "AKIA" + _pick(r, string.ascii_uppercase + "234567", 16)),
    ("aws-access-key-id", lambda r: "ASIA" + _pick(r, string.ascii_uppercase + "234567", 16)),
    ("github-token", lambda r: "ghp_" + _pick(r, ALNUM, 36)),
    ("github-token", lambda r: "gho_" + _pick(r, ALNUM, 36)),
    ("github-token", lambda r: "ghs_" + _pick(r, ALNUM, 36)),
    ("github-token", lambda r: "github_pat_11" + _pick(r, ALNUM.upper()[:36], 20) + "_" + _pick(r, ALNUM, 59)),
    ("gitlab-token", lambda r: "glpat-" + _pick(r, URLSAFE, 20)),
    ("gitlab-token", lambda r: "glrt-" + _pick(r, URLSAFE, 20)),
    ("slack-token", lambda r: _joined(r, "xoxb-", (DIGITS, 12), "-", (DIGITS, 13), "-", (ALNUM, 24))),
    ("slack-token", lambda r: _joined(r, "xoxp-", (DIGITS, 12), "-", (DIGITS, 12), "-", (DIGITS, 13), "-", (HEX, 32))),
    ("slack-webhook", lambda r: _joined(r, SLACK_HOOKS, "T", (UPPER, 8), "/B", (UPPER, 10), "/", (ALNUM, 24))),
    ("stripe-key", lambda r: "sk_live_" + _pick(r, ALNUM, 24)),
    ("stripe-key", lambda r: "rk_live_" + _pick(r, ALNUM, 24)),
    ("stripe-key", lambda r: "sk_test_51" + _pick(r, ALNUM, 96)),
    ("openai-key", lambda r: "sk-proj-" + _pick(r, URLSAFE, 74) + "T3BlbkFJ" + _pick(r, URLSAFE, 74)),
    ("openai-key", lambda r: "sk-" + _pick(r, ALNUM, 20) + "T3BlbkFJ" + _pick(r, ALNUM, 20)),
    ("openai-key", lambda r: "sk-svcacct-" + _pick(r, URLSAFE, 74) + "T3BlbkFJ" + _pick(r, URLSAFE, 74)),
    ("anthropic-key", lambda r: "sk-ant-api03-" + _pick(r, URLSAFE, 93) + "AA"),
    ("anthropic-key", lambda r: "sk-ant-admin01-" + _pick(r, URLSAFE, 93) + "AA"),
    ("huggingface-token", lambda r: "hf_" + _pick(r, string.ascii_letters, 34)),
    ("npm-token", lambda r: "npm_" + _pick(r, ALNUM, 36)),
    ("pypi-token", lambda r: "pypi-AgEIcHlwaS5vcmc" + _pick(r, URLSAFE, 150)),
    ("pypi-token", lambda r: "pypi-AgENdGVzdC5weXBpLm9yZw" + _pick(r, URLSAFE, 150)),
    ("sendgrid-key", lambda r: "SG." + _pick(r, URLSAFE, 22) + "." + _pick(r, URLSAFE, 43)),
    ("azure-storage-key", lambda r: "AccountKey=" + _pick(r, B64, 86) + "=="),
    ("azure-ad-client-secret", lambda r: _joined(r, (ALNUM, 3), (DIGITS, 1), "Q~", (ALNUM + "_~.-", 34))),
    ("google-api-key", lambda r: "AIza" + _pick(r, URLSAFE, 35)),
    ("jwt", lambda r: f"{JWT_HEADER}.{_b64url({'sub': _pick(r, DIGITS, 10)})}.{_pick(r, URLSAFE, 43)}"),
    ("mailchimp-key", lambda r: _pick(r, HEX, 32) + "-us" + str(r.randint(1, 21))),
    ("twilio-key", lambda r: "SK" + _pick(r, HEX, 32)),
    ("twilio-key", lambda r: "AC" + _pick(r, HEX, 32)),
    ("telegram-bot-token", lambda r: _pick(r, "123456789", 10) + ":AA" + _pick(r, URLSAFE, 33)),
    ("discord-bot-token", lambda r: _joined(r, "M", (ALNUM, 23), ".", (URLSAFE, 6), ".", (URLSAFE, 27))),
    ("square-oauth-secret", lambda r: "sq0csp-" + _pick(r, URLSAFE, 43)),
    ("databricks-token", lambda r: "dapi" + _pick(r, HEX, 32)),
    ("digitalocean-token", lambda r: "dop_v1_" + _pick(r, HEX, 64)),
    ("shopify-token", lambda r: "shpat_" + _pick(r, HEX, 32)),
    ("url-password", lambda r: "postgres://app:" + _pick(r, ALNUM, 20) + "@db.internal:5432/prod"),
    ("private-key", lambda r: _pem(r, "RSA PRIVATE KEY")),
    ("private-key", lambda r: _pem(r, "PRIVATE KEY")),
    ("private-key", lambda r: _pem(r, "EC PRIVATE KEY")),
    ("private-key", lambda r: _pem(r, "OPENSSH PRIVATE KEY")),
    ("private-key", lambda r: _pem(r, "PGP PRIVATE KEY BLOCK").replace("\n", "\nVersion: GnuPG v2\n\n", 1)),
]  # fmt: skip
# Where a key is written: prose, code, configuration, data. {k} is the key.
CONTEXTS = [
    "Use {k} for the deploy.",
    'CLIENT = make_client("{k}")',
    "value: {k}",
    '{{"value": "{k}", "region": "eu-west-1"}}',
    "VALUE={k}",
    "- `{k}`",
]
# Named values: the kind comes from the name, the value is random. (text, kind, which value is secret)
NAMED: list[tuple[str, str, str]] = [
    ("[default]\naws_access_key_id = {aws_id}\naws_secret_access_key = {b64_40}", "aws-secret-access-key", "b64_40"),
    ("Use `{aws_id}` with\n`{b64_40}` in eu-west-1.", "aws-secret-access-key", "b64_40"),  # beside its key id
    ("db:\n  user: app\n  password: hunter2-{alnum12}", "secret-assignment", "alnum12"),
    ("export DB_PASSWORD={alnum16}", "secret-assignment", "alnum16"),
    ('"client_secret": "{urlsafe24}",', "secret-assignment", "urlsafe24"),
    ("settings.api_key = '{alnum32}'", "secret-assignment", "alnum32"),
    ("SECRET_KEY = 'django-insecure-{urlsafe40}'", "secret-assignment", "urlsafe40"),
    ("mail:\n  smtp_password: '{alnum12}!'", "secret-assignment", "alnum12"),
]


def _named_cases(rng: random.Random) -> list[tuple[str, str, str]]:
    values = {
        "aws_id": "AKIA" + _pick(rng, string.ascii_uppercase + "234567", 16),
        "b64_40": _pick(rng, B64, 40),
        "alnum12": _pick(rng, ALNUM, 12),
        "alnum16": _pick(rng, ALNUM, 16),
        "alnum32": _pick(rng, ALNUM, 32),
        "urlsafe24": _pick(rng, URLSAFE, 24),
        "urlsafe40": _pick(rng, URLSAFE, 40),
    }
    return [(template.format(**values), kind, values[secret]) for template, kind, secret in NAMED]


def test_every_known_format_is_found_and_labelled_with_its_real_kind() -> None:
    """Recall on the known formats: every generated key, in every context, is redacted whole and
    labelled with its own kind (an Anthropic key is not an OpenAI key). Target: 0 misses."""
    rng = random.Random(20261130)
    cases: list[tuple[str, str, str]] = []
    for kind, make in FORMATS:
        for context in CONTEXTS:
            key = make(rng)
            if "\n" in key and context != CONTEXTS[0]:
                continue  # a key block stands on its own lines
            text = context.format(k=key) if "\n" not in key else f"Key:\n{key}\nEnd."
            cases.append((text, kind, key))
    for _ in range(20):  # named values: random values, many draws
        cases += _named_cases(rng)
    misses = []
    for text, kind, secret in cases:
        out, findings = redact(f"first line\n{text}\nlast line")
        found = [f.kind for f in findings]
        leaked = [part for part in secret.split("\n") if len(part) >= 8 and part in out]
        if kind not in found or leaked or len(set(found) - {kind, "aws-access-key-id"}) > 0:
            misses.append(f"{kind}: found {found} leaked {leaked} in {text[:80]!r}")
    recall = 1 - len(misses) / len(cases)
    message = f"recall {recall:.3f}: {len(misses)} of {len(cases)} keys missed or mislabelled: {misses[:5]}"
    print(message)
    assert not misses, message
    assert {kind for kind, _ in FORMATS} <= set(kinds())


# --- true negatives: ordinary source lines of installed packages -----------------------------------

# Standard-library modules that talk about passwords, tokens, keys and secrets all the time, and
# packages dsv2 installs (their modules, not their test data). Sorted files, whole: deterministic.
STDLIB = [
    "getpass.py", "hmac.py", "secrets.py", "netrc.py", "smtplib.py", "imaplib.py", "poplib.py", "ftplib.py",
    "configparser.py", "tokenize.py", "token.py", "keyword.py", "argparse.py", "ssl.py", "base64.py",
    "urllib/request.py", "urllib/parse.py", "http/client.py", "http/cookiejar.py", "email/utils.py",
    "email/_header_value_parser.py", "logging/config.py", "json/decoder.py", "json/encoder.py",
    "sqlite3/dump.py", "xmlrpc/client.py", "tomllib/_parser.py", "pydoc.py", "shlex.py", "uuid.py",
]  # fmt: skip
PACKAGES = ["httpx", "pathspec", "click", "typer", "rich", "charset_normalizer", "pyparsing", "yaml", "jsonschema"]
MAX_FP_PER_1000 = 1.0


def _ordinary_sources() -> list[tuple[str, str]]:
    files: list[Path] = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files += [stdlib / name for name in STDLIB if (stdlib / name).is_file()]
    for package in PACKAGES:
        spec = find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            files += sorted(p for p in Path(location).rglob("*.py") if "test" not in p.name)
    return [(str(p), p.read_text("utf-8", "replace")) for p in files]


def test_ordinary_source_lines_of_installed_packages_are_left_alone() -> None:
    """Precision: at most 1 false positive per 1,000 ordinary lines (stdlib modules about passwords
    and keys, and the packages dsv2 installs)."""
    sources = _ordinary_sources()
    lines = sum(len([line for line in text.splitlines() if line.strip()]) for _, text in sources)
    hits = []
    for path, text in sources:
        for start, _end, kind in find_secrets(text):
            line = text.count("\n", 0, start) + 1
            hits.append(f"{path}:{line} ({kind}): {text.splitlines()[line - 1].strip()[:100]}")
    rate = 1000 * len(hits) / max(lines, 1)
    message = (
        f"{len(hits)} false positives in {lines:,} non-empty source lines of {len(sources)} files "
        f"(python {sys.version_info.major}.{sys.version_info.minor}): {rate:.3f} per 1,000 lines; {hits[:5]}"
    )
    print(message)
    assert lines >= 1000, message
    assert rate <= MAX_FP_PER_1000, message


# --- tables of cases ---------------------------------------------------------------------------------

# Built by concatenation so this test file does not itself look like it leaks keys.
AWS = "AKIA" + "Z7QWERTYUIOPASDF"
GHP = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
GH_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
SLACK = "xoxb-" + "123456789012-abcdefghijKLMN"
OPENAI = "sk-" + "proj-Abcdefghijklmnopqrstuvwxyz012345"
ANTHROPIC = "sk-ant-" + "api03-" + "Ab3dEfGh1jKlMn0pQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrStUv-AA"
GOOGLE = "AIza" + "SyA1234567890abcdefghijklmnopqrstuv"
STRIPE = "sk_live_" + "51Habcdefghijklmnop"


@pytest.mark.parametrize(
    ("line", "kind", "secret"),
    [
        (f'aws_key = "{AWS}"', "aws-access-key-id", AWS),
        (f"token: {GHP}", "github-token", GHP),
        (f"GH={GH_PAT}", "github-token", GH_PAT),
        (f"slack = '{SLACK}'", "slack-token", SLACK),
        (f"OPENAI_API_KEY={OPENAI}", "openai-key", OPENAI),
        (f"ANTHROPIC_API_KEY={ANTHROPIC}", "anthropic-key", ANTHROPIC),
        (f"maps({GOOGLE!r})", "google-api-key", GOOGLE),
        (f"stripe.api_key = '{STRIPE}'", "stripe-key", STRIPE),
        ('api_key = "9f8e7d6c5b4a39281706"', "secret-assignment", "9f8e7d6c5b4a39281706"),
        ('"client_secret": "Zx81-qq0_AbCdEfGh"', "secret-assignment", "Zx81-qq0_AbCdEfGh"),
        ("PASSWORD='correct horse'.split()", None, None),  # spaces: not a key-like value
        ("export DB_PASSWORD=hunter2hunter2", "secret-assignment", "hunter2hunter2"),
        ("API_KEY=Zx81qq0AbCdEfGh77", "secret-assignment", "Zx81qq0AbCdEfGh77"),
        ("password: hunter2-rosebud-42", "secret-assignment", "hunter2-rosebud-42"),
        ("aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9q1W2e3R4", "aws-secret-access-key", None),
        ("api_key: str = 'k8s-9f8e7d6c5b4a'", "secret-assignment", "k8s-9f8e7d6c5b4a"),
        ("db = 'postgres://app:Xy7-pq9Lm2zz@db:5432/x'", "url-password", "Xy7-pq9Lm2zz"),
    ],
)
def test_key_like_values_are_redacted_in_place(line: str, kind: str | None, secret: str | None) -> None:
    text, findings = redact(f"first line\n{line}\nlast line")
    if kind is None:
        assert findings == []
        return
    assert [(f.line, f.kind) for f in findings] == [(2, kind)]
    assert secret is None or secret not in text
    assert f"[REDACTED:{kind}]" in text.splitlines()[1]


@pytest.mark.parametrize(
    "line",
    [
        'DEFAULT_KEYWORD_CHARS = alphanums + "_$"',  # pyparsing: the issue's own examples
        "BARE_KEY_CHARS = frozenset(ASCII_LETTERS + DIGITS + '-_')",
        "BARE_KEY_CHARS = alphanums + '-_'",
        'password = os.environ["DB_PASSWORD"]',
        "password = settings.DB_PASSWORD",
        'api_key = "${API_KEY}"',
        'token = "<your-token-here>"',
        'SECRET_KEY = "changeme-please"',
        "token_count = count_tokens(text)",
        'token_type = "bearer_token_v2"',
        'TOKEN_PATTERN = r"[A-Za-z0-9_]{8,}"',
        "secret = secrets.token_hex(16)",
        'password_hash = "pbkdf2_sha256$260000$abc$def123"',
        "api_key: Optional[str] = None",
        "    password: The password to use for the connection.",
        '"secret_ref": "V1SecretReference",',
        'key = "content-type"',
        '_SAR_APP_KEY = "serverlessrepo:applicationId"',
        'headers["X-Api-Key"] = api_key',
        "sk-learn is not a key",
        "AKIA is a prefix, AKIASHORT is not a key",
        'github_url = "https://github.com/owner/repo"',
        'url = "https://user:pass@example.com/"',
        'AWS_EXAMPLE = "AKIAIOSFODNN7EXAMPLE"',  # AWS's documented example key
        '_SK_START = b"-----BEGIN OPENSSH PRIVATE KEY-----"',  # code that looks for keys
    ],
)
def test_ordinary_code_is_left_alone(line: str) -> None:
    assert redact(line) == (line, [])


def test_a_private_key_block_keeps_its_line_count() -> None:
    block = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQUJD\n-----END OPENSSH PRIVATE KEY-----"
    text = f"a\n{block}\nz"
    out, findings = redact(text)
    assert out.splitlines() == ["a", "[REDACTED:private-key]", "", "", "", "z"]
    assert [(f.line, f.kind) for f in findings] == [(2, "private-key")]


def test_a_private_key_inside_a_json_string_is_redacted_whole() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    text = '{"private_key": "-----BEGIN PRIVATE KEY-----\\n' + body + '\\n-----END PRIVATE KEY-----\\n"}'
    out, findings = redact(text)
    assert body not in out and [f.kind for f in findings] == ["private-key"]


def test_a_token_in_a_file_name_is_redacted_from_the_name() -> None:
    name, found = redact_name(f"notes/{GHP}.txt")
    assert name == "notes/[REDACTED:github-token].txt" and found == ["github-token"]


def test_documents_read_directly_are_redacted_with_their_places() -> None:
    doc = Document(
        f"{GHP}.md",
        "markdown",
        [Segment(f"intro\nkey: {AWS}\n", Location(f"{GHP}.md", line_start=10))],
    )
    out = redact_document(doc)
    assert GHP not in out.source and all(GHP not in s.location.source for s in out.segments)
    assert AWS not in out.text
    assert [(r.line, r.kind) for r in out.redactions] == [(None, "github-token"), (11, "aws-access-key-id")]
    assert (
        out.redactions[1].note()
        == "[REDACTED:github-token].md:11: redacted a value that looks like a secret (aws-access-key-id)"
    )
    pdf = Document("r.pdf", "pdf", [Segment(f"a\nb {AWS}", Location("r.pdf", page=3))])
    assert [(r.where(), r.kind) for r in redact_document(pdf).redactions] == [("p. 3 line 2", "aws-access-key-id")]
    clean = Document("c.txt", "text", [Segment("nothing here", Location("c.txt", line_start=1))])
    assert redact_document(clean) is clean


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True),
        (".env.production", True),
        ("config/prod.env", True),
        ("deploy/server.pem", True),
        ("tls/private.key", True),
        ("home/.ssh/id_rsa", True),
        ("home/.ssh/id_ed25519.pub", True),
        ("credentials.json", True),
        (".aws/credentials", True),
        (".netrc", True),
        ("certs/client.p12", True),
        ("src/environment.py", False),
        ("docs/keys.md", False),
        ("src/credentials_check.py", False),
    ],
)
def test_secret_file_names(path: str, secret: bool) -> None:
    assert is_secret_file(path) is secret
