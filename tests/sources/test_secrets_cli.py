"""Secrets through the real CLI: every input kind is redacted before anything is printed, and
nothing is sent to a remote backend while secrets were found (exit 7, zero requests).

The cases are the ones a hardening run found leaking: AWS credentials in an INI file with lowercase
keys, an unquoted YAML password, a GitHub token in a file name, a ``.env`` read through
``--include``, a markdown file named directly, standard input.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app

from ..conftest import dsv2_cmd
from .pdfs import write_pdf

# Fake keys in their real formats, built by concatenation so this file does not look like a leak.
AWS_ID = "AKIA" + "QX4TZP7WJ2NB5K3M"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYq9W2e3R4t5"  # 40 characters, as AWS writes them
GITHUB = "ghp_" + "R7nD2kLq9XwZ4vB8mT1sY6cH3jF5gP0aE9uK"
PASSWORD = "hunter2-" + "Qm8v!x2Lr"
ENV_KEY = "sk-ant-api03-" + "Xq7Lm2Nv8Rt4Wz1Kp6Hs3Jd9Fb5Gc0Yy" * 3 + "AA"
ENV_PASSWORD = "Zx81qq0" + "AbCdEfGh77"

runner = CliRunner()


def _repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "config").mkdir(parents=True)
    (repo / "config" / "aws.ini").write_text(
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\nregion = eu-west-1\n"
    )
    (repo / "config" / "app.yaml").write_text(f"db:\n  host: db.internal\n  user: app\n  password: {PASSWORD}\n")
    (repo / "notes").mkdir()
    (repo / "notes" / f"{GITHUB}.txt").write_text("the deploy token, kept here for now\n")
    (repo / "main.py").write_text('print("hello")\n')
    (repo / ".env").write_text(f"ANTHROPIC_API_KEY={ENV_KEY}\nDB_PASSWORD={ENV_PASSWORD}\nDEBUG=1\n")
    return repo


def _notes(root: Path) -> Path:
    path = root / "deploy.md"
    path.write_text(f"# Deploy\n\nUse `{AWS_ID}` with `{AWS_SECRET}`.\n\nThe bot pushes with {GITHUB}.\n")
    return path


# (case, arguments given the temp dir, the secrets that must not appear, kinds reported on stderr)
CASES: list[tuple[str, Any, list[str], list[str]]] = [
    (
        "aws-ini-lowercase-keys",
        lambda tmp: ["--repo", str(_repo(tmp) / "config"), "--include", "aws.ini"],
        [AWS_ID, AWS_SECRET],
        ["aws-access-key-id", "aws-secret-access-key"],
    ),
    (
        "unquoted-yaml-password",
        lambda tmp: ["--repo", str(_repo(tmp) / "config"), "--include", "app.yaml"],
        [PASSWORD, PASSWORD.split("-")[1]],
        ["secret-assignment"],
    ),
    ("token-in-a-file-name", lambda tmp: ["--repo", str(_repo(tmp))], [GITHUB], ["github-token"]),
    (
        "env-through-include",
        lambda tmp: ["--repo", str(_repo(tmp)), "--include", ".env"],
        [ENV_KEY, ENV_PASSWORD],
        ["anthropic-key", "secret-assignment"],
    ),
    (
        "markdown-named-directly",
        lambda tmp: [str(_notes(tmp))],
        [AWS_ID, AWS_SECRET, GITHUB],
        ["aws-access-key-id", "github-token"],
    ),
]
COMMANDS = [["pack"], ["pack", "--json"], ["summarize", "--dry-run", "--json"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
@pytest.mark.parametrize(("case", "args", "secrets", "kinds"), CASES, ids=[c[0] for c in CASES])
def test_secrets_never_reach_the_output(
    case: str, args: Any, secrets: list[str], kinds: list[str], command: list[str], tmp_path: Path
) -> None:
    result = runner.invoke(app, [*command, *args(tmp_path)])
    assert result.exit_code == 0, result.output
    for secret in secrets:
        assert secret not in result.stdout, f"{case}: leaked to stdout"
        assert secret not in result.stderr, f"{case}: leaked to stderr"
    for kind in kinds:
        assert f"looks like a secret ({kind})" in result.stderr, result.stderr
        if command == ["pack"]:  # the text as the model reads it (the JSON forms carry counts and places)
            assert f"[REDACTED:{kind}]" in result.stdout, result.stdout
    if command[-1] == "--json":
        json.loads(result.stdout)  # still one valid JSON document


def test_an_explicit_include_reads_the_env_file_but_not_its_values(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    without = runner.invoke(app, ["pack", "--repo", str(repo)])
    assert ".env" not in without.stdout and "looks like a secrets file (" in without.stderr
    included = runner.invoke(app, ["pack", "--repo", str(repo), "--include", ".env"])
    assert "DEBUG=1" in included.stdout  # the file is read ...
    assert "ANTHROPIC_API_KEY=[REDACTED:anthropic-key]" in included.stdout  # ... its values are not
    assert "DB_PASSWORD=[REDACTED:secret-assignment]" in included.stdout


def _dsv2(args: list[str], home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSV2_")}
    env.update(DSV2_HOME=str(home), NO_COLOR="1")
    return subprocess.run(
        [*dsv2_cmd(), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_standard_input_is_redacted(tmp_path: Path) -> None:
    run = _dsv2(["pack", "-"], tmp_path / "home", stdin=f"deploy with {GITHUB}\naws_secret_access_key={AWS_SECRET}\n")
    assert run.returncode == 0, run.stderr
    assert GITHUB not in run.stdout + run.stderr and AWS_SECRET not in run.stdout + run.stderr
    assert "[REDACTED:github-token]" in run.stdout and "[REDACTED:aws-secret-access-key]" in run.stdout
    assert "<stdin>:1: redacted a value that looks like a secret (github-token)" in run.stderr


def test_a_pdf_named_directly_is_redacted_with_its_page(tmp_path: Path) -> None:
    pdf = write_pdf(
        tmp_path / "handover.pdf",
        ["Handover notes for the platform team.", f"Staging access: key {AWS_ID} and token {GITHUB} until May."],
    )
    result = runner.invoke(app, ["pack", str(pdf)])
    assert result.exit_code == 0, result.output
    assert AWS_ID not in result.stdout + result.stderr and GITHUB not in result.stdout + result.stderr
    assert "[REDACTED:aws-access-key-id]" in result.stdout and "[REDACTED:github-token]" in result.stdout
    note = rf"{re.escape(str(pdf))} p\. 2:\d+: redacted a value that looks like a secret \(github-token\)"
    assert re.search(note, result.stderr), result.stderr  # the page, and the line within it


# --- a remote backend: refused before any connection ----------------------------------------------


@dataclass
class Server:
    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method and path, body)


def _sse(text: str) -> bytes:
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


@pytest.fixture
def server() -> Iterator[Server]:
    """A loopback OpenAI-compatible endpoint that records every request, whatever its method."""
    state = Server("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append((f"{self.command} {self.path}", self.rfile.read(length).decode()))
            payload = _sse("It prints hello.")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = _record

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _remote(url: str, *, ctx: bool = True) -> list[str]:
    window = ["--ctx", "4096"] if ctx else []  # without it, the server would be asked for its window
    return ["--backend", "openai", "--base-url", url, "--api-model", "stub", *window, "--max-tokens", "16"]


def test_secrets_in_the_inputs_refuse_a_remote_backend_before_any_request(server: Server, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    asked = _dsv2(["ask", "What does main.py print?", "--repo", str(repo), *_remote(server.url)], tmp_path / "home")
    assert asked.returncode == 7, asked.stderr
    assert server.requests == []
    assert "config/aws.ini line 3: aws-secret-access-key" in asked.stderr and "--allow-secrets" in asked.stderr
    assert "name: github-token" in asked.stderr  # the token in a file name counts too
    assert all(s not in asked.stderr for s in (AWS_ID, AWS_SECRET, GITHUB, PASSWORD))
    notes = _notes(tmp_path)
    named = _dsv2(["summarize", str(notes), *_remote(server.url)], tmp_path / "home")
    assert named.returncode == 7 and server.requests == [], named.stderr
    assert "deploy.md line 3: aws-access-key-id" in named.stderr
    schema = tmp_path / "owner.schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"owner": {"type": "string"}}}))
    extracted = _dsv2(["extract", str(notes), "--schema", str(schema), *_remote(server.url)], tmp_path / "home")
    assert extracted.returncode == 7 and server.requests == [], extracted.stderr
    assert "deploy.md line 3: aws-access-key-id" in extracted.stderr
    # no window given: refused before the server is asked for one (GET /v1/models, /props, ...)
    for command in (["summarize", str(notes)], ["ask", "Which key?", "--repo", str(repo)]):
        run = _dsv2([*command, *_remote(server.url, ctx=False)], tmp_path / "home")
        assert run.returncode == 7 and server.requests == [], (command, run.stderr)


def test_allow_secrets_sends_the_inputs_with_their_values_still_redacted(server: Server, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    args = ["ask", "What does main.py print?", "--repo", str(repo), "--include", "**", "--include", ".env"]
    run = _dsv2([*args, *_remote(server.url), "--allow-secrets"], tmp_path / "home")
    assert run.returncode == 0, run.stderr
    assert server.requests, "nothing was sent"
    sent = " ".join(body for _, body in server.requests)
    assert "[REDACTED:aws-secret-access-key]" in sent and "[REDACTED:github-token]" in sent
    for secret in (AWS_ID, AWS_SECRET, GITHUB, PASSWORD, ENV_KEY, ENV_PASSWORD):
        assert secret not in sent
