"""Remote backends without a server: profiles and precedence, windows and counting, cost, the
privacy checks, the escalation heuristic, and map-reduce concurrency keeping input order."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli import remote
from dsv2cli.chat import ChatPrompt
from dsv2cli.cli import app
from dsv2cli.engines.base import Capabilities, GenerationParams, PromptProgress, Usage
from dsv2cli.errors import ConfigError, RefusedError, UsageError
from dsv2cli.settings import resolve, with_backend
from dsv2cli.sources.base import Document, Location, Segment
from dsv2cli.strategies.map_reduce import MapReduce
from dsv2cli.tokens import EstimateTokenizer, Tokenizer

from .conftest import SAMPLES

runner = CliRunner()


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_a_profile_fills_what_flags_and_env_leave_open(dsv2_home: Path) -> None:
    s = resolve({"backend": "deepseek"}, {"DSV2_HOME": str(dsv2_home)})
    assert s.remote and s.base_url == "https://api.deepseek.com/v1" and s.api_model == "deepseek-chat"
    assert s.ctx == 128_000 and s.api_key_env == "DEEPSEEK_API_KEY" and s.origin("ctx") == "profile deepseek"
    env = {"DSV2_HOME": str(dsv2_home), "DSV2_API_MODEL": "deepseek-reasoner"}
    s = resolve({"backend": "deepseek", "ctx": 64_000}, env)
    assert s.ctx == 64_000 and s.origin("ctx") == "flag"
    assert s.api_model == "deepseek-reasoner" and s.origin("api_model") == "env DSV2_API_MODEL"
    assert s.parallel == 4 and resolve({}, {"DSV2_HOME": str(dsv2_home)}).parallel == 1


def test_config_profiles_override_and_add(dsv2_home: Path) -> None:
    write_config(
        dsv2_home,
        'api_model = "top-level"\n'
        "[profiles.deepseek]\nprice_input = 0.5\n"
        '[profiles.lab]\nbase_url = "http://10.0.0.5:8000/v1"\napi_model = "ds-v2"\nwindow = 32768\n',
    )
    env = {"DSV2_HOME": str(dsv2_home)}
    s = resolve({"backend": "deepseek"}, env)
    assert s.price_input == 0.5 and s.price_output == 1.10  # the rest of the built-in profile stays
    assert s.api_model == "deepseek-chat"  # the profile beats a top-level config value
    lab = resolve({"backend": "lab"}, env)
    assert lab.base_url == "http://10.0.0.5:8000/v1" and lab.ctx == 32768 and lab.price_input is None


@pytest.mark.parametrize(
    ("config", "flags", "message"),
    [
        ("[profiles.x]\nbase_urll = 'http://a'\n", {"backend": "x"}, r"unknown key\(s\) base_urll"),
        ("", {"backend": "nosuch"}, "unknown backend or profile 'nosuch'"),
        ("", {"backend": "openai"}, "needs --base-url"),
        ("[profiles.local]\nbase_url = 'http://a'\n", {}, "is a backend, not a profile name"),
        ("", {"backend": "deepseek", "concurrency": 0}, "concurrency"),
        ("", {"backend": "openai", "base_url": "http://a/v1", "json_mode": "xml"}, "json_mode"),
    ],
)
def test_bad_remote_settings_name_the_problem(
    dsv2_home: Path, config: str, flags: dict[str, object], message: str
) -> None:
    write_config(dsv2_home, config)
    with pytest.raises(ConfigError, match=message):
        resolve(flags, {"DSV2_HOME": str(dsv2_home)})


def test_escalation_settings_use_the_other_profile_and_keep_run_flags(dsv2_home: Path) -> None:
    env = {"DSV2_HOME": str(dsv2_home), "DSV2_BASE_URL": "http://127.0.0.1:1/v1"}
    first = resolve({"backend": "openai", "max_tokens": 64, "ctx": 4096}, env)
    second = with_backend(first, "deepseek", env)
    assert second.base_url == "https://api.deepseek.com/v1"  # the first backend's DSV2_BASE_URL is not carried over
    assert second.max_tokens == 64 and second.ctx == 128_000


def test_window_and_counting_of_a_remote_target(dsv2_home: Path) -> None:
    env = {"DSV2_HOME": str(dsv2_home), "MY_KEY": "sk-secret-value"}
    s = resolve({"backend": "deepseek", "api_key_env": "MY_KEY"}, env)
    target, key = remote.target(s, env)
    assert key == "sk-secret-value" and target.key_env == "MY_KEY" and "sk-secret" not in repr(target)
    assert target.counting == "deepseek-v2" and target.budget_window == 128_000 - 64
    other = resolve({"backend": "openai", "base_url": "http://x/v1", "api_model": "gpt-4o-mini", "ctx": 10_000}, env)
    t2, key2 = remote.target(other, env)
    assert t2.counting == "estimate" and t2.budget_window == 9_000 and key2 is None
    with pytest.raises(UsageError, match="context window of 'mystery' is unknown"):
        remote.target(resolve({"backend": "openai", "base_url": "http://x/v1", "api_model": "mystery"}, env), env)
    lite = resolve({"backend": "openai", "base_url": "http://x/v1", "api_model": "DeepSeek-V2-Lite-Chat"}, env)
    assert remote.target(lite, env)[0].window == 32_768
    full = resolve({"backend": "openai", "base_url": "http://x/v1", "api_model": "deepseek-ai/DeepSeek-V2-Chat"}, env)
    assert remote.target(full, env)[0].window == 131_072  # rated, as for a local GGUF (models.DEEPSEEK_V2_RATED)


def test_cost_is_per_million_tokens() -> None:
    target = remote.RemoteTarget("p", "https://a/v1", "m", 1000, 900, "estimate", None, 0.27, 1.10)
    assert target.cost(1_000_000, 0) == 0.27 and target.cost(2_000, 1_000) == pytest.approx(0.00164)
    free = remote.RemoteTarget("p", "https://a/v1", "m", 1000, 900, "estimate", None, None, None)
    assert free.cost(10, 10) is None


def test_plan_estimates_the_cost_of_a_profile_without_network(dsv2_home: Path, smollm2: Path) -> None:
    sample = SAMPLES / "harbor-light-annual-report.md"
    result = runner.invoke(app, ["plan", str(sample), "--backend", "deepseek", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["backend"]["profile"] == "deepseek" and payload["tokenizer"] == "deepseek-v2"
    cost = payload["estimated_cost"]
    tokens = payload["context_tokens"] + payload["prompt_overhead"]
    assert cost["input_usd"] == round(tokens * 0.27 / 1e6, 6)
    assert cost["total_max_usd"] == round((tokens * 0.27 + 512 * 1.10) / 1e6, 6)
    assert payload["prompt_tokens_per_s"] is None  # nothing local to measure


def test_loopback_detection() -> None:
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8080/v1", "http://[::1]:80/v1", "http://127.5.0.1/v1"):
        assert remote.is_loopback(url), url
    for url in ("https://api.deepseek.com/v1", "http://10.0.0.5:8000/v1", "http://192.0.2.1/v1"):
        assert not remote.is_loopback(url), url


def test_secret_hits_name_the_place_and_refusal_names_the_override() -> None:
    doc = Document(
        "notes.txt",
        "text",
        [Segment("intro\nkey = AKIAIOSFODNN7EXAMPLQ\n", Location("notes.txt", line_start=10))],
    )
    pdf = Document("r.pdf", "pdf", [Segment("token ghp_" + "a" * 36, Location("r.pdf", page=3))])
    hits = remote.find_secret_hits([doc, pdf], {"the question": "is sk-proj-" + "b" * 30 + " valid?"})
    assert [str(h) for h in hits] == [
        "notes.txt line 11: aws-access-key-id",
        "r.pdf p. 3: github-token",
        "the question: openai-key",
    ]
    target = remote.RemoteTarget("p", "https://a/v1", "m", 1000, 900, "estimate", None, None, None)
    with pytest.raises(RefusedError, match="--allow-secrets") as err:
        remote.refuse_secrets(hits, target)
    assert "AKIA" not in str(err.value)  # the message names where, never the value
    assert err.value.exit_code == 7


@pytest.mark.parametrize(
    ("question", "complex_"),
    [
        ("Who signed the agreement?", False),
        ("What is the termination notice period?", False),
        ("Why did revenue fall in 2025?", True),
        ("Compare the two warranty clauses.", True),
        ("What is the fee? And when is it due?", True),
        ("List " + "every obligation of the supplier " * 8, True),
    ],
)
def test_question_complexity_heuristic(question: str, complex_: bool) -> None:
    assert (remote.classify_question(question) is not None) is complex_


def test_estimate_tokenizer_keeps_special_looking_text_as_text() -> None:
    tok = EstimateTokenizer()
    assert tok.count("<|endoftext|>") > 1 and tok.special_tokens == {} and not tok.splits_in_blank_lines
    assert tok.decode(tok.encode("Harbor Light, 2025.")) == "Harbor Light, 2025."


class SlowBackend:
    """Answers each map prompt with its part number after a delay; records the most calls in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.lock = threading.Lock()
        self.prompts: list[str] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("slow", 100_000, True, False)

    def generate(
        self,
        prompt: ChatPrompt,
        params: GenerationParams,
        usage: Usage,
        on_prompt_progress: PromptProgress | None = None,
    ) -> Iterator[str]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.2)
        text = prompt.messages[-1].content
        pages = re.findall(r"\[p\. (\d+)\]", text)
        with self.lock:
            self.in_flight -= 1
            self.prompts.append(text)
        usage.prompt_tokens, usage.output_tokens, usage.finish_reason = len(prompt.ids), 3, "stop"
        yield f"pages {pages[0]} to {pages[-1]} summarized" if pages else "final"


def test_map_reduce_sends_chunks_in_parallel_and_keeps_their_order(smollm2_tokenizer: Tokenizer) -> None:
    pages = [
        Segment(f"Page {i} text. " + "The ferry ran on time. " * 60, Location("r.pdf", page=i)) for i in range(1, 9)
    ]
    docs = [Document("r.pdf", "pdf", pages)]
    backend = SlowBackend()
    mapper = MapReduce(smollm2_tokenizer, "llama", None, "system", "{{ document }}", 1024, 64, concurrency=4)
    result = mapper.run(docs, backend, GenerationParams(64, 0.0, 0))
    assert len(result.chunks) >= 4 and backend.most > 1  # several calls were in flight at once
    assert result.calls == len(result.chunks) + 1  # the map calls and one final call
    assert result.usage.output_tokens == 3 * result.calls  # usage summed across threads
    # the final prompt lists the partial summaries in page order, whatever order they finished in
    final = backend.prompts[-1]
    firsts = [int(n) for n in re.findall(r"pages (\d+) to \d+ summarized", final)]
    assert len(firsts) == len(result.chunks) and firsts == sorted(firsts) and firsts[0] == 1


def test_summarize_each_plans_every_document_on_its_own(tmp_path: Path) -> None:
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text("# A\nThe ferry left at nine.\n")
    b.write_text("# B\nThe board met in March.\n")
    result = runner.invoke(app, ["summarize", "--each", str(a), str(b), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    plans = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["sources"][0]["path"] for p in plans] == [str(a), str(b)]
    assert all(p["strategy"] == "whole" and p["backend"]["backend"] == "local" for p in plans)


def test_the_escalation_backend_is_opened_only_when_a_request_escalates(tmp_path: Path) -> None:
    """Opening the deepseek profile without a key says so on stderr: a simple question never opens it."""
    doc = tmp_path / "a.md"
    doc.write_text("# A\nThe ferry left at nine.\n")
    base = ["ask", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--ctx", "4096"]
    base += ["--escalate-to", "deepseek", "--dry-run", "--json"]
    simple = runner.invoke(app, [*base, "When did the ferry leave?", str(doc)])
    assert simple.exit_code == 0, simple.output
    assert json.loads(simple.stdout)["answered_by"]["escalated"] is False
    assert "no API key" not in simple.stderr
    hard = runner.invoke(app, [*base, "Why did the ferry leave at nine?", str(doc)])
    assert hard.exit_code == 0, hard.output
    assert json.loads(hard.stdout)["answered_by"]["escalated"] is True
    assert "no API key for https://api.deepseek.com/v1" in hard.stderr


def test_extract_asks_before_escalating_off_machine_even_when_escalation_comes_from_config(
    dsv2_home: Path, tmp_path: Path
) -> None:
    write_config(dsv2_home, 'escalate_to = "deepseek"\n')
    doc = tmp_path / "a.txt"
    doc.write_text("Invoice INV-1, due 5 March 2026.\n")
    args = ["extract", str(doc), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--ctx", "4096"]
    result = runner.invoke(app, args)
    assert result.exit_code == 7 and "https://api.deepseek.com/v1" in result.stderr and "pass --yes" in result.stderr
