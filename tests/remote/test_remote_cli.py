"""The CLI on a remote backend, end to end: real subprocesses, the real llama.cpp server on loopback
(`llama_server`), and a scripted stub server where a test must control the answers or count requests.

SmolLM2 on 2 CPU threads: calls are few and short (max 24-40 output tokens).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ..conftest import dsv2_cmd
from ..extract.conftest import INVOICE_A, INVOICE_SCHEMA

pytestmark = pytest.mark.slow

REPORT = """# Harbor Light Ferries: annual report 2025

## 1. Operations
Harbor Light ran 14,200 crossings in 2025 on three routes, 4 % more than in 2024. The new
electric ferry Kittiwake entered service in May and now carries a third of the passengers.

## 2. Finance
Revenue was 38.2 million euros, up from 35.9 million. Fuel costs fell 11 % because of the
electric ferry. The board proposes a dividend of 0.40 euros a share.
"""


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def dsv2(args: list[str], home: Path, **env_extra: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSV2_")}
    env.update(DSV2_HOME=str(home), NO_COLOR="1", **env_extra)
    proc = subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, env=env, timeout=600)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.md"
    path.write_text(REPORT, encoding="utf-8")
    return path


# --- a stub endpoint that records requests and answers with scripted text ----------------------


@dataclass
class Stub:
    url: str
    replies: list[str]
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _sse(text: str) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub("", ["not json at all"])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.bodies.append(body)
            reply = state.replies[min(len(state.bodies), len(state.replies)) - 1]
            payload = _sse(reply)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def remote(url: str, *more: str) -> list[str]:
    return ["--backend", "openai", "--base-url", url, "--api-model", "smollm2", "--ctx", "4096", *more]


# --- end to end on the real server -------------------------------------------------------------


def test_summarize_streams_from_the_server_and_reports_usage_and_cost(
    llama_server: str, report: Path, tmp_path: Path
) -> None:
    run = dsv2(
        ["summarize", str(report), *remote(llama_server, "--max-tokens", "32"), "--json"],
        tmp_path / "home",
        DSV2_PRICE_INPUT="2.0",
        DSV2_PRICE_OUTPUT="4.0",
    )
    assert run.rc == 0, run.stderr
    out = run.json()
    assert out["summary"] and out["strategy"] == "whole" and out["calls"] == 1
    assert out["backend"]["base_url"] == llama_server and out["backend"]["counting"] == "estimate"
    assert out["model_path"] is None and out["model"] == "smollm2"
    assert out["input_tokens"] > 100 and 0 < out["output_tokens"] <= 40
    assert out["cost_usd"] == round((out["input_tokens"] * 2.0 + out["output_tokens"] * 4.0) / 1e6, 6)
    # what left the process, on stderr: the endpoint, the input and the tokens
    assert f"sending to {llama_server} (smollm2): 1 input(s) [{report}]" in run.stderr


def test_map_reduce_chunks_go_out_in_parallel_and_come_back_in_order(
    llama_server: str, report: Path, tmp_path: Path
) -> None:
    long = tmp_path / "long.md"
    paragraph = "Two more electric ferries are planned for 2027, and the Galway route opens in spring. " * 6
    long.write_text(REPORT + "\n\n## 3. Outlook\n" + "\n\n".join([paragraph] * 6))
    args = ["summarize", str(long), *remote(llama_server), "--ctx", "700", "--max-tokens", "24", "--concurrency", "3"]
    run = dsv2([*args, "--json"], tmp_path / "home")
    assert run.rc == 0, run.stderr
    out = run.json()
    assert out["strategy"] == "map-reduce" and len(out["chunks"]) >= 2
    assert out["calls"] >= len(out["chunks"]) + 1
    starts = [int(c["source"].split(":")[1].split("-")[0]) for c in out["chunks"]]
    assert starts == sorted(starts)  # chunk order is input order


def test_ask_escalates_a_complex_question_and_says_why(llama_server: str, report: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[profiles.bigger]\nbase_url = "{llama_server}"\napi_model = "bigger-model"\nwindow = 4096\n'
        "price_input = 1.0\nprice_output = 1.0\n"
    )
    question = "Why did fuel costs fall, compared with 2024?"
    run = dsv2(["ask", question, str(report), *remote(llama_server, "--max-tokens", "32"), "--escalate-to", "bigger",
                "--json"], home)  # fmt: skip
    assert run.rc == 0, run.stderr
    out = run.json()
    assert out["answer"] and out["model"] == "bigger-model"
    assert out["answered_by"] == {"backend": "bigger", "escalated": True, "reason": "asks for reasoning ('why')"}
    assert out["cost_usd"] == round((out["input_tokens"] + out["output_tokens"]) / 1e6, 6)
    assert "escalating to bigger" in run.stderr
    simple = dsv2(["ask", "What was revenue?", str(report), *remote(llama_server), "--escalate-to", "bigger",
                   "--dry-run", "--json"], home)  # fmt: skip
    assert simple.rc == 0, simple.stderr
    assert simple.json()["answered_by"]["escalated"] is False


def test_extract_gets_schema_valid_json_from_the_server(llama_server: str, tmp_path: Path) -> None:
    invoice = tmp_path / "invoice.txt"
    invoice.write_text(INVOICE_A)
    schema = tmp_path / "invoice.schema.json"
    schema.write_text(json.dumps(INVOICE_SCHEMA))
    run = dsv2(["extract", str(invoice), "--schema", str(schema), *remote(llama_server, "--max-tokens", "300")],
               tmp_path / "home")  # fmt: skip
    assert run.rc == 0, run.stderr
    rec = run.json()
    assert list(rec["fields"]) == ["invoice_number", "due_date", "total"]
    from dsv2cli.extract import fields_from_schema

    jsonschema.validate(rec["fields"], fields_from_schema(INVOICE_SCHEMA, "invoice").result_schema())


def test_extract_escalates_when_the_first_answer_is_unusable(llama_server: str, stub: Stub, tmp_path: Path) -> None:
    """The first backend (the stub) answers prose instead of JSON; the second (the real server) extracts."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[profiles.real]\nbase_url = "{llama_server}"\napi_model = "real"\nwindow = 4096\n'
    )
    invoice = tmp_path / "invoice.txt"
    invoice.write_text(INVOICE_A)
    schema = tmp_path / "invoice.schema.json"
    schema.write_text(json.dumps(INVOICE_SCHEMA))
    run = dsv2(["extract", str(invoice), "--schema", str(schema), *remote(stub.url, "--max-tokens", "300"),
                "--escalate-to", "real"], home)  # fmt: skip
    assert run.rc == 0, run.stderr
    rec = run.json()
    assert len(stub.bodies) >= 1  # the first backend was asked first
    assert rec["answered_by"]["backend"] == "real" and rec["answered_by"]["escalated"] is True
    assert rec["answered_by"]["reason"].startswith("first answer unusable")
    assert rec["model"] == "real"


# --- the privacy guard --------------------------------------------------------------------------


def test_content_that_looks_like_a_secret_is_not_sent(stub: Stub, report: Path, tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.md"
    leaky.write_text(REPORT + "\nDeploy key: AKIAIOSFODNN7EXAMPLQ\n")
    run = dsv2(["summarize", str(leaky), *remote(stub.url)], tmp_path / "home")
    assert run.rc == 7 and stub.bodies == []
    assert f"{leaky} line 11: aws-access-key-id" in run.stderr and "--allow-secrets" in run.stderr
    assert "AKIAIOSFODNN7EXAMPLQ" not in run.stderr
    stub.replies = ["A short summary."]
    allowed = dsv2(["summarize", str(leaky), *remote(stub.url), "--allow-secrets"], tmp_path / "home")
    assert allowed.rc == 0, allowed.stderr
    assert allowed.stdout.strip() == "A short summary."
    # --allow-secrets lets the input go; the value itself was redacted as the file was read
    sent = json.dumps(stub.bodies[0]["messages"])
    assert "AKIAIOSFODNN7EXAMPLQ" not in sent and "[REDACTED:aws-access-key-id]" in sent


def test_a_secret_in_the_question_is_not_sent_either(stub: Stub, report: Path, tmp_path: Path) -> None:
    question = "Is ghp_" + "x" * 36 + " the deploy token?"
    run = dsv2(["ask", question, str(report), *remote(stub.url)], tmp_path / "home")
    assert run.rc == 7 and stub.bodies == [] and "the question: github-token" in run.stderr


def test_repository_secrets_are_redacted_before_anything_is_sent(stub: Stub, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text('API_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"\nprint("hi")\n')
    (repo / ".env").write_text("PASSWORD=hunter2hunter2\n")
    stub.replies = ["It prints hi."]
    refused = dsv2(["ask", "What does it print?", "--repo", str(repo), *remote(stub.url)], tmp_path / "home")
    assert refused.rc == 7 and stub.bodies == [], refused.stderr  # secrets were found: nothing is sent
    assert f"{repo}/app.py line 1: openai-key" in refused.stderr
    run = dsv2(
        ["ask", "What does it print?", "--repo", str(repo), *remote(stub.url), "--allow-secrets"], tmp_path / "home"
    )
    assert run.rc == 0, run.stderr
    sent = json.dumps(stub.bodies[0]["messages"])
    assert "sk-proj-abcdefghijklmnopqrstuvwxyz123456" not in sent and "hunter2" not in sent
    assert "REDACTED" in sent


def test_off_machine_endpoints_need_confirmation_or_yes(report: Path, tmp_path: Path) -> None:
    """192.0.2.1 (TEST-NET-1) is not this machine: with no terminal to ask on, nothing is sent without --yes."""
    run = dsv2(["summarize", str(report), *remote("http://192.0.2.1:9/v1")], tmp_path / "home")
    assert run.rc == 7 and "pass --yes" in run.stderr
    assert "sending to http://192.0.2.1:9/v1 (smollm2): 1 input(s)" in run.stderr


def test_summarize_each_sends_documents_in_parallel_and_prints_them_in_order(
    llama_server: str, report: Path, tmp_path: Path
) -> None:
    second = tmp_path / "memo.txt"
    second.write_text("Memo: the Kittiwake ferry will be serviced in January; crossings move to the Tern.\n")
    third = tmp_path / "notice.txt"
    third.write_text("Notice: the Galway route timetable changes on 1 March 2026.\n")
    args = ["summarize", "--each", str(report), str(second), str(third), *remote(llama_server, "--max-tokens", "24")]
    run = dsv2([*args, "--concurrency", "3", "--json"], tmp_path / "home")
    assert run.rc == 0, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["source"] for r in records] == [str(report), str(second), str(third)]
    assert all(r["summary"] and r["backend"]["base_url"] == llama_server for r in records)
    assert run.stderr.count("sending to") == 1 and "3 input(s)" in run.stderr


def test_llama_cpp_python_server_does_not_state_its_window_so_ctx_is_asked_for(
    llama_server: str, report: Path, tmp_path: Path
) -> None:
    """llama-cpp-python's server has no /props and no max_model_len: dsv2 says what it asked."""
    args = ["--backend", "openai", "--base-url", llama_server, "--api-model", "smollm2"]
    run = dsv2(["summarize", str(report), *args, "--dry-run"], tmp_path / "home")
    assert run.rc == 2 and run.stdout == ""
    assert "the context window of 'smollm2' is unknown and the server does not say" in run.stderr
    assert "pass --ctx N" in run.stderr and "Traceback" not in run.stderr


def test_an_unreachable_server_is_a_remote_error(report: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    run = dsv2(["summarize", str(report), *remote(url)], tmp_path / "home", DSV2_RETRIES="1")
    assert run.rc == 6 and run.stdout == ""
    assert f"{url}" in run.stderr and "gave up after 2 attempts" in run.stderr
    assert "retrying in" in run.stderr  # the retry was announced on stderr
    assert "Traceback" not in run.stderr


def test_ctrl_c_during_parallel_requests_exits_at_once(report: Path, tmp_path: Path) -> None:
    """Requests stuck on a server that takes 60 s: SIGINT ends the process in seconds with 130."""
    import signal
    import time

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            time.sleep(60)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    second = tmp_path / "b.md"
    second.write_text("A second document.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSV2_")}
    env.update(DSV2_HOME=str(tmp_path / "home"), NO_COLOR="1")
    proc = subprocess.Popen(
        [*dsv2_cmd(), "summarize", "--each", str(report), str(second), *remote(url), "--concurrency", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(3)  # both requests are out and waiting
        proc.send_signal(signal.SIGINT)
        begun = time.monotonic()
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - begun < 10
    finally:
        proc.kill()
        server.shutdown()
        server.server_close()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_a_batch_off_this_machine_needs_yes_before_anything_is_read_out(tmp_path: Path) -> None:
    invoice = tmp_path / "invoice.txt"
    invoice.write_text(INVOICE_A)
    run = dsv2(["extract", str(invoice), *remote("http://192.0.2.1:9/v1")], tmp_path / "home")
    assert run.rc == 7 and run.stdout == "" and "pass --yes" in run.stderr
