"""Secret detection: file names and key-like values, as tables of cases."""

from __future__ import annotations

import pytest

from dsv2cli.sources.secrets import is_secret_file, redact

# Built by concatenation so this test file does not itself look like it leaks keys.
AWS = "AKIA" + "Z7QWERTYUIOPASDF"
GHP = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
GH_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
SLACK = "xoxb-" + "123456789012-abcdefghijKLMN"
OPENAI = "sk-" + "proj-Abcdefghijklmnopqrstuvwxyz012345"
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
        (f"maps({GOOGLE!r})", "google-api-key", GOOGLE),
        (f"stripe.api_key = '{STRIPE}'", "stripe-key", STRIPE),
        ('api_key = "9f8e7d6c5b4a39281706"', "secret-assignment", "9f8e7d6c5b4a39281706"),
        ('"client_secret": "Zx81-qq0_AbCdEfGh"', "secret-assignment", "Zx81-qq0_AbCdEfGh"),
        ("PASSWORD='correct horse'.split()", None, None),  # spaces: not a key-like value
        ("export DB_PASSWORD=hunter2hunter2", "secret-assignment", "hunter2hunter2"),
    ],
)
def test_key_like_values_are_redacted_in_place(line: str, kind: str | None, secret: str | None) -> None:
    text, findings = redact(f"first line\n{line}\nlast line")
    if kind is None:
        assert findings == []
        return
    assert [(f.line, f.kind) for f in findings] == [(2, kind)]
    assert secret is not None and secret not in text
    assert f"[REDACTED:{kind}]" in text.splitlines()[1]


@pytest.mark.parametrize(
    "line",
    [
        'password = os.environ["DB_PASSWORD"]',
        'api_key = "${API_KEY}"',
        'token = "<your-token-here>"',
        'SECRET_KEY = "changeme-please"',
        "token_count = count_tokens(text)",
        "sk-learn is not a key",
        "AKIA is a prefix, AKIASHORT is not a key",
        'github_url = "https://github.com/owner/repo"',
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
