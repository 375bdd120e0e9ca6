"""Model resolution and `dsv2 models`: header only, never the weights."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsv2cli.cli import app
from dsv2cli.ggufmeta import read_gguf

from .conftest import dsv2_cmd

runner = CliRunner()


def test_models_reports_the_embedded_default(smollm2: Path) -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["path"] == str(smollm2)
    assert info["resolved_from"] == "embedded default"
    assert info["architecture"] == "llama"
    assert info["trained_context"] == 8192
    assert info["chat_template"] is True
    assert info["quantization"] == "Q4_1"
    assert info["file_size_bytes"] == smollm2.stat().st_size
    assert isinstance(info["gpu_offload"], bool)


def test_models_reads_only_the_header(smollm2: Path, tmp_path: Path) -> None:
    # A copy holding just the GGUF header: loading weights from it would fail.
    header_only = tmp_path / "header-only.gguf"
    with smollm2.open("rb") as src:
        header_only.write_bytes(src.read(read_gguf(smollm2).header_size))
    result = runner.invoke(app, ["models", "--model", str(header_only), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["resolved_from"] == "flag"
    assert info["file_size_bytes"] < smollm2.stat().st_size / 10


def test_models_origin_from_env_and_config(smollm2: Path, dsv2_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsv2_home.mkdir(parents=True)
    (dsv2_home / "config.toml").write_text(f'model = "{smollm2}"\n')
    info = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert info["resolved_from"].startswith("config ")
    monkeypatch.setenv("DSV2_MODEL", str(smollm2))
    info = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert info["resolved_from"] == "env DSV2_MODEL"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.gguf", "model file not found"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "notes.gguf", b"hello, not a model"), "not a GGUF model file"),
    ],
)
def test_bad_model_path_is_a_one_line_error(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    sample = tmp_path / "doc.txt"
    sample.write_text("Some text to summarize.")
    proc = subprocess.run(
        [*dsv2_cmd(), "summarize", str(sample), "--model", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 4
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0] and str(path) in lines[0]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_help_imports_neither_llama_cpp_nor_chromadb() -> None:
    code = (
        "import sys\n"
        "from dsv2cli.cli import main\n"
        "sys.argv = ['dsv2', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', 'llama_cpp' in sys.modules, 'chromadb' in sys.modules)\n"
    )
    proc = subprocess.run([dsv2_cmd()[0], "-c", code], capture_output=True, text=True, timeout=60)
    assert "LOADED False False" in proc.stdout, proc.stdout + proc.stderr
    assert "summarize" in proc.stdout


def _header_only(path: Path, arch: str, **values: int) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"a {arch} header")
    for key, value in values.items():
        w.add_uint32(f"{arch}.{key}", value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize(("arch", "values"), [("qwen2", {"block_count": 24}), ("made-up-arch", {})])
def test_models_on_an_unknown_architecture_is_a_whole_report(tmp_path: Path, arch: str, values: dict[str, int]) -> None:
    path = _header_only(tmp_path / f"{arch}.gguf", arch, **values)
    proc = subprocess.run([*dsv2_cmd(), "models", "-m", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("model:") and lines[-1].startswith("memory:")  # the whole report, in order
    assert f"architecture:    {arch}" in lines
    assert "trained context: unknown" in lines and "vocabulary:      unknown" in lines
    assert any(line.startswith("KV cache:") and "unknown" in line for line in lines)
    as_json = subprocess.run(
        [*dsv2_cmd(), "models", "-m", str(path), "--json"], capture_output=True, text=True, timeout=60
    )
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["kv_format"] is None


def test_an_embedding_model_as_model_is_refused_up_front(minilm_gguf: Path, tmp_path: Path) -> None:
    sample = tmp_path / "doc.txt"
    sample.write_text("Some text to summarize.")
    for args in (["summarize", str(sample)], ["models"]):
        proc = subprocess.run(
            [*dsv2_cmd(), *args, "--model", str(minilm_gguf)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 4, proc.stderr
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "this is an embedding model (bert); use --embed-model" in lines[0], proc.stderr
