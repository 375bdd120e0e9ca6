"""``dsv2 models pull / list / rm / default`` against a real HTTP server speaking the Hub's API.

The CLI runs as a real subprocess with HF_ENDPOINT pointed at tests/hubserver.py on loopback and
HF_HOME in a temporary directory; the models served are the tiny random-weight deepseek2 GGUFs
of tests/deepseek2.py, whole and split into parts, so a pulled model really runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.errors import UsageError
from dsv2cli.hub import ModelRef, RemoteFile, parse_ref, quant_of, select_files

from .conftest import dsv2_cmd
from .hubserver import COMMIT, FakeHub

WHOLE, SPLIT = "test/tiny-deepseek2-GGUF", "test/tiny-deepseek2-split-GGUF"


def legacy_v2_header(path: Path) -> Path:
    """A GGUF header with DeepSeek-V2's (236B) shape in the pre-MLA format and no tensors: what a
    2024 conversion's first megabytes say. Its KV cache is ~4.9 MB per token: ~600 GiB at 128k."""
    w = gguf.GGUFWriter(str(path), "deepseek2")
    w.add_name("DeepSeek-V2-Chat (legacy header)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    w.add_context_length(163840)
    w.add_embedding_length(5120)
    w.add_block_count(60)
    w.add_head_count(128)
    w.add_head_count_kv(128)
    w.add_key_length(192)
    w.add_value_length(128)
    w.add_q_lora_rank(1536)
    w.add_kv_lora_rank(512)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def served(
    deepseek_vocab: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FakeHub, Path, list[Path]]]:
    from .deepseek2 import SHAPES, read_tokenizer_keys, write_deepseek2

    folder = tmp_path_factory.mktemp("hub-files")
    keys = read_tokenizer_keys(deepseek_vocab)
    whole = write_deepseek2(folder / "tiny-deepseek2-lite-F16.gguf", SHAPES["lite"], keys)
    (folder / "split").mkdir()
    write_deepseek2(folder / "split" / "tiny-deepseek2-lite-F16.gguf", SHAPES["lite"], keys, split_max_tensors=20)
    parts = sorted((folder / "split").glob("*.gguf"))
    assert len(parts) > 1 and parts[0].name.endswith("-00001-of-" + f"{len(parts):05d}.gguf")
    hub = FakeHub()
    hub.add(WHOLE, whole.name, whole)
    hub.add(WHOLE, "README.md", b"# tiny\n")
    for part in parts:
        hub.add(SPLIT, f"F16/{part.name}", part)
    hub.add("test/gated-GGUF", whole.name, whole)
    hub.gated.add("test/gated-GGUF")
    hub.add("test/legacy-v2-GGUF", "legacy-v2-Q4_K_M.gguf", legacy_v2_header(folder / "legacy.gguf"))
    hub.add("test/huge-GGUF", whole.name, whole, claim_size=10**15)
    hub.add("test/badsum-GGUF", whole.name, whole, claim_sha256="0" * 64)
    hub.start()
    yield hub, whole, parts
    hub.stop()


@pytest.fixture
def hub(served: tuple[FakeHub, Path, list[Path]], tmp_path: Path) -> Iterator[FakeHub]:
    fake = served[0]
    fake.log.clear()
    yield fake


def run(tmp_path: Path, hub: FakeHub, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_XET="1")
    return subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def cli(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The CLI in this process (the same app and error handler, without ~1 s of start-up per call):
    the Hub settings come from the environment each run reads, as in a real process."""
    for name in [n for n in os.environ if n.startswith("HF_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        result = CliRunner().invoke(app, list(args))
        return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)

    return invoke


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()) if path.exists() else []


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- names and files (no server) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "repo", "quant", "filename", "name"),
    [
        ("deepseek-v2-lite", "mradermacher/DeepSeek-V2-Lite-Chat-GGUF", "Q4_K_M", None, "deepseek-v2-lite:Q4_K_M"),
        ("deepseek-v2-lite:q8_0", "mradermacher/DeepSeek-V2-Lite-Chat-GGUF", "Q8_0", None, "deepseek-v2-lite:Q8_0"),
        ("owner/Repo-GGUF:IQ4_XS", "owner/Repo-GGUF", "IQ4_XS", None, "owner/Repo-GGUF:IQ4_XS"),
        ("hf://owner/repo/dir/m-00001-of-00002.gguf", "owner/repo", None, "dir/m-00001-of-00002.gguf", None),
    ],
)
def test_model_names(text: str, repo: str, quant: str | None, filename: str | None, name: str | None) -> None:
    ref = parse_ref(text)
    assert (ref.repo, ref.quant, ref.filename) == (repo, quant, filename)
    assert ref.name == (name or f"{repo}/{filename}")


def test_unknown_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="deepseek-v2-lite"):
        parse_ref("deepseek-v9")


def test_quant_and_split_selection() -> None:
    assert quant_of("DeepSeek-V2.5.Q4_K_M_split/DeepSeek-V2.5.Q4_K_M-00001-of-00010.gguf") == "Q4_K_M"
    assert quant_of("deepseek-v2-lite-chat-q4_k_m.gguf") == "Q4_K_M"
    assert quant_of("DeepSeek-Coder-V2-Instruct-IQ4_XS.gguf") == "IQ4_XS"
    listing = [
        RemoteFile("m.Q8_0.gguf", 8, "a"),
        RemoteFile("Q4/m.Q4_K_M-00002-of-00002.gguf", 2, "c"),
        RemoteFile("Q4/m.Q4_K_M-00001-of-00002.gguf", 4, "b"),
        RemoteFile("m.Q4_K_S.gguf", 3, "d"),
    ]
    chosen = select_files(listing, ModelRef("o/r", "Q4_K_M", None, "o/r:Q4_K_M"))
    assert [f.path for f in chosen] == ["Q4/m.Q4_K_M-00001-of-00002.gguf", "Q4/m.Q4_K_M-00002-of-00002.gguf"]
    with pytest.raises(UsageError, match="quantizations there: Q4_K_M, Q4_K_S, Q8_0"):
        select_files(listing, ModelRef("o/r", "Q2_K", None, "o/r:Q2_K"))


# --- pull, list, use, rm -------------------------------------------------------------------------------------


def test_pull_verifies_and_lists(
    hub: FakeHub, served: tuple[FakeHub, Path, list[Path]], tmp_path: Path, cli: Any
) -> None:
    whole = served[1]
    proc = run(tmp_path, hub, "models", "pull", f"{WHOLE}:F16")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().split(": ", 1)[1])
    assert path == tmp_path / "hf" / "hub" / "models--test--tiny-deepseek2-GGUF" / "snapshots" / COMMIT / whole.name
    assert sha256(path) == sha256(whole)
    assert "MLA format" in proc.stderr
    # only the header was read before the download: a range request, then one full GET
    resolves = hub.requests("resolve")
    assert resolves[0][2] is not None and resolves[0][2].startswith("bytes=0-")
    assert [r for r in resolves if r[2] is None] == [("GET", f"/{WHOLE}/resolve/{COMMIT}/{whole.name}", None)]

    listed = cli("models", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["quant"], r["window"], r["kv_format"], r["path"]) for r in rows] == [
        (f"{WHOLE}:F16", "F16", 32768, "mla", str(path))
    ]
    text = cli("models", "list").stdout
    assert text.splitlines()[0].split() == ["NAME", "QUANT", "SIZE", "WINDOW", "FORMAT", "DEFAULT", "PATH"]
    assert f"{WHOLE}:F16" in text and "32,768" in text and "MLA" in text

    # a second pull finds it in place and downloads nothing
    hub.log.clear()
    again = cli("models", "pull", f"{WHOLE}:F16", "--json")
    assert again.returncode == 0, again.stderr
    assert [r for r in hub.requests("resolve") if r[2] is None] == []
    payload = json.loads(again.stdout)
    assert (payload["path"], payload["kv_format"], payload["window"], payload["download_bytes"]) == (
        str(path),
        "mla",
        32768,
        0,
    )

    # rm: the files and the name go; -m NAME no longer resolves
    removed = cli("models", "rm", WHOLE)
    assert removed.returncode == 0, removed.stderr
    assert not path.exists() and not any(p.name == sha256(whole) for p in files_under(tmp_path / "hf"))
    assert json.loads(cli("models", "list", "--json").stdout) == []
    gone = cli("models", "-m", WHOLE, "--json")
    assert gone.returncode == 4 and "model file not found" in gone.stderr


@pytest.mark.slow
def test_split_model_pulled_then_used_by_name(
    hub: FakeHub, served: tuple[FakeHub, Path, list[Path]], tmp_path: Path
) -> None:
    parts = served[2]
    proc = run(tmp_path, hub, "models", "pull", f"{SPLIT}:F16")
    assert proc.returncode == 0, proc.stderr
    first = Path(proc.stdout.strip().split(": ", 1)[1])
    assert first.name == parts[0].name
    assert sorted(p.name for p in first.parent.iterdir()) == [p.name for p in parts]
    info = json.loads(run(tmp_path, hub, "models", "-m", SPLIT, "--json").stdout)
    assert info["resolved_from"] == f"flag, pulled model {SPLIT}:F16"
    assert info["file_size_bytes"] == sum(p.stat().st_size for p in parts)

    # the default, written to the config file, then a real summarize by name through llama.cpp
    assert run(tmp_path, hub, "models", "default", SPLIT).returncode == 0
    config = (tmp_path / "dsv2-home" / "config.toml").read_text()
    assert config == f'model = "{SPLIT}"\n'
    doc = tmp_path / "doc.txt"
    doc.write_text("The pump station moved 40 litres per second through the night.\n")
    listed = json.loads(run(tmp_path, hub, "models", "list", "--json").stdout)
    assert [r["default"] for r in listed] == [True]
    summary = run(
        tmp_path,
        hub,
        "summarize",
        str(doc),
        "--threads",
        "1",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "--ctx",
        "1024",
    )
    assert summary.returncode == 0, summary.stderr
    assert "embedded test model" not in summary.stderr


def test_resume_after_the_connection_drops(
    hub: FakeHub, served: tuple[FakeHub, Path, list[Path]], tmp_path: Path, cli: Any
) -> None:
    # huggingface-hub writes in 10 MB chunks (the bytes of an unfinished chunk are fetched again), so
    # the file served is padded to 3 chunks: the drop comes after the first chunk was written.
    data = served[1].read_bytes() + bytes(30 * 1024**2 - served[1].stat().st_size)
    hub.add("test/drop-GGUF", "tiny-F16.gguf", data, drop_once=True)
    proc = cli("models", "pull", "test/drop-GGUF:F16")
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(Path(proc.stdout.strip().split(": ", 1)[1]).read_bytes()).hexdigest() == (
        hashlib.sha256(data).hexdigest()
    )
    gets = [r for r in hub.requests("resolve") if r[0] == "GET" and not (r[2] or "").startswith("bytes=0-")]
    assert gets[0][2] is None  # the first full GET was cut halfway ...
    assert len(gets) == 2 and gets[1][2] is not None  # ... and the rest came with a Range from where it stopped
    assert int(gets[1][2].removeprefix("bytes=").rstrip("-")) > 0


def test_interrupted_pull_resumes_from_its_partial_file(
    hub: FakeHub, served: tuple[FakeHub, Path, list[Path]], tmp_path: Path, cli: Any
) -> None:
    whole = served[1]
    data = whole.read_bytes()
    blobs = tmp_path / "hf" / "hub" / "models--test--tiny-deepseek2-GGUF" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / (sha256(whole) + ".dsv2-partial")).write_bytes(data[: len(data) // 3])  # what a killed pull leaves
    proc = cli("models", "pull", f"{WHOLE}:F16")
    assert proc.returncode == 0, proc.stderr
    assert [r[2] for r in hub.requests("resolve") if r[0] == "GET"][-1] == f"bytes={len(data) // 3}-"
    assert sha256(blobs / sha256(whole)) == sha256(whole)
    assert not (blobs / (sha256(whole) + ".dsv2-partial")).exists()


# --- refused, with nothing left behind ---------------------------------------------------------------------


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    return lines[-1]


def test_checksum_mismatch_leaves_no_file_under_the_final_name(hub: FakeHub, tmp_path: Path, cli: Any) -> None:
    proc = cli("models", "pull", "test/badsum-GGUF:F16")
    assert proc.returncode == 6, proc.stderr
    assert "sha256 mismatch" in one_line(proc)
    storage = tmp_path / "hf" / "hub" / "models--test--badsum-GGUF"
    assert [p.name for p in files_under(storage)] == []  # no blob, no partial, no snapshot link
    assert json.loads(cli("models", "list", "--json").stdout) == []


def test_too_big_for_the_disk_is_refused_before_any_byte(hub: FakeHub, tmp_path: Path, cli: Any) -> None:
    proc = cli("models", "pull", "test/huge-GGUF:F16")
    assert proc.returncode == 7, proc.stderr
    line = one_line(proc)
    assert "free" in line and "HF_HOME" in line and "1,000,000,000,000,000 bytes" in line
    assert files_under(tmp_path / "hf") == []
    assert hub.requests("resolve") == []  # not even the header was read


def test_gated_repository_is_one_clear_line(hub: FakeHub, tmp_path: Path, cli: Any) -> None:
    proc = cli("models", "pull", "test/gated-GGUF:F16")
    assert proc.returncode == 6, proc.stderr
    line = one_line(proc)
    assert "gated" in line and "HF_TOKEN" in line


def test_legacy_format_refused_at_128k_before_download(hub: FakeHub, tmp_path: Path, cli: Any) -> None:
    proc = cli("models", "pull", "test/legacy-v2-GGUF:Q4_K_M", "--ctx", "131072")
    assert proc.returncode == 7, proc.stderr
    line = one_line(proc)
    assert "predates llama.cpp's MLA format" in line and "--force" in line
    assert "legacy format" in proc.stderr
    assert all(r[2] is not None for r in hub.requests("resolve"))  # the header's range request only
    assert files_under(tmp_path / "hf") == []


def test_offline_means_no_pull(hub: FakeHub, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proc = cli("models", "pull", f"{WHOLE}:F16")
    assert proc.returncode == 6 and "HF_HUB_OFFLINE" in one_line(proc)
    assert hub.log == []


# --- what the user sees, and the planner's choice ------------------------------------------------------------


def test_a_terminal_shows_size_speed_and_eta(
    hub: FakeHub, served: tuple[FakeHub, Path, list[Path]], tmp_path: Path
) -> None:
    from .terminal import child_env, run_in_pty

    # 30 MB over ~2 s: huggingface-hub reports progress per 10 MB chunk, so the display updates twice
    data = served[1].read_bytes() + bytes(30 * 1024**2 - served[1].stat().st_size)
    hub.add("test/slow-GGUF", "slow-F16.gguf", data, seconds=2.0)
    env = {**child_env(), "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf")}
    shown = run_in_pty(["models", "pull", "test/slow-GGUF:F16"], env, timeout=120)
    assert shown.exit_code == 0, shown.raw[-2000:]
    drawn = shown.raw.decode("utf-8", "replace")
    assert "downloading slow-F16.gguf" in drawn and "/31 MB" in drawn  # size
    assert "MB/s" in drawn and "eta" in drawn  # speed and time left, on the live display
    assert "slow-F16.gguf" in shown.text and "downloading" not in shown.text  # the display is gone at the end


def test_the_planner_lowers_the_window_to_what_fits(hub: FakeHub, cli: Any) -> None:
    from dsv2cli.memory import Resources, estimate, request_for
    from dsv2cli.models import plan_pull
    from dsv2cli.settings import resolve

    settings = resolve({"gpu_layers": 0})
    _, plan = plan_pull(f"{WHOLE}:F16", settings, dict(os.environ), resources=Resources(None, None))
    assert (plan.choice.n_ctx, plan.rated, plan.kv_format, plan.problem) == (32768, 32768, "mla", None)
    need_8k = estimate(plan.info, 8192, request_for(settings, False)).ram_bytes
    _, small = plan_pull(f"{WHOLE}:F16", settings, dict(os.environ), resources=Resources(need_8k, None))
    assert 8192 <= small.choice.n_ctx < 8192 + 256 and small.problem is None
    assert small.notes == [f"fits here with a {small.choice.n_ctx:,}-token window, not the rated 32,768"]
    assert hub.requests("resolve") and all(r[2] is not None for r in hub.requests("resolve"))  # headers only


def test_list_shows_ggufs_other_tools_put_in_the_cache(smollm2: Path, tmp_path: Path, cli: Any) -> None:
    snapshot = tmp_path / "hf" / "hub" / "models--someone--SmolLM2-GGUF" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / smollm2.name).symlink_to(smollm2)
    rows = json.loads(cli("models", "list", "--json").stdout)
    assert [(r["name"], r["quant"], r["window"], r["kv_format"], r["pulled"]) for r in rows] == [
        (f"hf://someone/SmolLM2-GGUF/{smollm2.name}", "Q4_1", 8192, "standard", False)
    ]


def test_ctrl_c_leaves_only_a_partial_file_and_the_next_pull_resumes_it(
    hub: FakeHub, served: tuple[FakeHub, Path, list[Path]], tmp_path: Path, cli: Any
) -> None:
    import signal
    import time

    data = served[1].read_bytes() + bytes(30 * 1024**2 - served[1].stat().st_size)
    entry = hub.add("test/interrupted-GGUF", "big-F16.gguf", data, seconds=8.0)
    digest = hashlib.sha256(data).hexdigest()
    blobs = tmp_path / "hf" / "hub" / "models--test--interrupted-GGUF" / "blobs"
    partial = blobs / (digest + ".dsv2-partial")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"))
    proc = subprocess.Popen(
        [*dsv2_cmd(), "models", "pull", "test/interrupted-GGUF:F16"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out == ""
    kept = partial.stat().st_size
    assert 0 < kept < len(data)
    assert not (blobs / digest).exists() and not (blobs.parent / "snapshots").exists()  # nothing looks complete

    entry.seconds = 0.0
    hub.log.clear()
    again = cli("models", "pull", "test/interrupted-GGUF:F16")
    assert again.returncode == 0, again.stderr
    assert [r[2] for r in hub.requests("resolve") if r[0] == "GET"][-1] == f"bytes={kept}-"
    assert hashlib.sha256((blobs / digest).read_bytes()).hexdigest() == digest


def test_a_known_name_not_pulled_yet_says_how_to_get_it(cli: Any) -> None:
    proc = cli("models", "-m", "deepseek-v2-lite")
    assert proc.returncode == 4
    assert one_line(proc).endswith("deepseek-v2-lite: not pulled yet: dsv2 models pull deepseek-v2-lite")


def test_a_model_that_cannot_run_here_is_refused_with_a_smaller_choice(
    hub: FakeHub, served: tuple[FakeHub, Path, list[Path]], cli: Any
) -> None:
    from dsv2cli.errors import RefusedError
    from dsv2cli.memory import MIN_CONTEXT, Resources, estimate, request_for
    from dsv2cli.models import check_plan, plan_pull
    from dsv2cli.settings import resolve

    whole = served[1]
    hub.add("test/two-quants-GGUF", "m-F16.gguf", whole)
    hub.add("test/two-quants-GGUF", "m-Q2_K.gguf", whole, claim_size=1024**2)  # only its listed size matters
    settings = resolve({"gpu_layers": 0})
    _, probe = plan_pull("test/two-quants-GGUF:F16", settings, dict(os.environ), resources=Resources(None, None))
    # RAM for the 1 MiB quant at the smallest window, not for the 10 MiB one at any window
    ram = estimate(probe.info, MIN_CONTEXT, request_for(settings, False), weights_bytes=1024**2).ram_bytes + 1024**2
    _, plan = plan_pull("test/two-quants-GGUF:F16", settings, dict(os.environ), resources=Resources(ram, None))
    assert plan.problem is not None
    assert "test/two-quants-GGUF:Q2_K (1.0 MiB) at" in plan.problem and "tokens fits" in plan.problem
    with pytest.raises(RefusedError, match=r"will not run here: .*--force"):
        check_plan(plan, force=False)
    check_plan(plan, force=True)  # --force: downloaded anyway


def test_a_header_longer_than_the_first_read_is_read_in_growing_ranges(
    hub: FakeHub, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dsv2cli.hub
    from dsv2cli.memory import Resources
    from dsv2cli.models import plan_pull
    from dsv2cli.settings import resolve

    monkeypatch.setattr(dsv2cli.hub, "HEADER_FIRST_READ", 256 * 1024)  # the DeepSeek vocabulary alone is ~4 MB
    _, plan = plan_pull(f"{WHOLE}:F16", resolve({}), dict(os.environ), resources=Resources(None, None))
    assert plan.info.vocab_size == 102400 and plan.kv_format == "mla"
    ranges = [r[2] for r in hub.requests("resolve")]
    assert ranges == [f"bytes=0-{256 * 1024 * 4**i - 1}" for i in range(len(ranges))] and len(ranges) >= 3
