"""Config files where people look for them, `dsv2 config path|show`, and `dsv2 models`' window.

Every run is a real `dsv2` process. Most run without DSV2_HOME, with HOME and the XDG directories
pointed at temporary ones, so the platform's config and data directories are the ones in play.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import dsv2_cmd


@pytest.fixture
def platform(tmp_path: Path) -> dict[str, Path]:
    """Temporary HOME and XDG directories; the dsv2 config file locations inside them."""
    dirs = {"home": tmp_path / "user", "xdg_config": tmp_path / "xdg-config", "xdg_data": tmp_path / "xdg-data"}
    dirs["config"] = dirs["xdg_config"] / "dsv2" / "config.toml"
    dirs["legacy"] = dirs["xdg_data"] / "dsv2" / "config.toml"
    return dirs


def run(args: list[str], platform: dict[str, Path], **extra: str) -> subprocess.CompletedProcess[str]:
    """`dsv2 ARGS` with no DSV2_HOME (unless given in ``extra``) and the temporary platform directories."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSV2_", "XDG_"))}
    env.update(
        HOME=str(platform["home"]),
        XDG_CONFIG_HOME=str(platform["xdg_config"]),
        XDG_DATA_HOME=str(platform["xdg_data"]),
        NO_COLOR="1",
        **extra,
    )
    return subprocess.run([*dsv2_cmd(), *args], capture_output=True, text=True, env=env, timeout=120)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def show(platform: dict[str, Path], *args: str, **extra: str) -> dict[str, dict[str, object]]:
    proc = run(["config", "show", "--json", *args], platform, **extra)
    assert proc.returncode == 0, proc.stderr
    shown: dict[str, dict[str, object]] = json.loads(proc.stdout)
    return shown


def test_config_file_in_the_config_directory_is_read_without_dsv2_home(platform: dict[str, Path]) -> None:
    write(platform["config"], 'max_tokens = 300\nstyle = "bullets"\n')
    shown = show(platform)
    assert shown["max_tokens"] == {"value": 300, "origin": f"config {platform['config']}"}
    assert shown["style"] == {"value": "bullets", "origin": f"config {platform['config']}"}
    assert shown["home"] == {"value": str(platform["xdg_data"] / "dsv2"), "origin": "default"}


def test_dsv2_home_moves_the_config_too(platform: dict[str, Path], tmp_path: Path) -> None:
    write(platform["config"], "max_tokens = 300\n")
    home = tmp_path / "elsewhere"
    write(home / "config.toml", "ctx = 2048\n")
    shown = show(platform, DSV2_HOME=str(home))
    assert shown["max_tokens"] == {"value": 512, "origin": "default"}
    assert shown["ctx"] == {"value": 2048, "origin": f"config {home / 'config.toml'}"}
    assert shown["home"] == {"value": str(home), "origin": "env DSV2_HOME"}
    paths = json.loads(run(["config", "path", "--json"], platform, DSV2_HOME=str(home)).stdout)
    assert paths["files"] == [{"path": str(home / "config.toml"), "role": "DSV2_HOME", "exists": True}]


def test_config_directory_wins_over_the_legacy_data_directory_file(platform: dict[str, Path]) -> None:
    write(platform["config"], "max_tokens = 300\n[profiles.lab]\nwindow = 65536\n")
    write(platform["legacy"], 'max_tokens = 200\nstyle = "detailed"\n[profiles.lab]\nbase_url = "http://10.0.0.5/v1"\n')
    shown = show(platform, "--backend", "lab")
    assert shown["max_tokens"] == {"value": 300, "origin": f"config {platform['config']}"}
    assert shown["style"] == {"value": "detailed", "origin": f"config {platform['legacy']}"}
    # one profile, its keys from both files
    assert shown["ctx"] == {"value": 65536, "origin": "profile lab"}
    assert shown["base_url"] == {"value": "http://10.0.0.5/v1", "origin": "profile lab"}


@pytest.mark.parametrize(
    ("text", "fragment"), [("max_tokenz = 5\n", "unknown setting(s) max_tokenz"), ('ctx = "lots"\n', "for ctx")]
)
def test_a_bad_config_key_or_value_names_the_file_it_is_in(platform: dict[str, Path], text: str, fragment: str) -> None:
    write(platform["legacy"], "ctx = 4096\n")
    write(platform["config"], text)
    proc = run(["config", "show"], platform)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert fragment in proc.stderr and str(platform["config"]) in proc.stderr
    assert str(platform["legacy"]) not in proc.stderr


def test_config_path_lists_every_location_in_order_and_marks_which_exist(platform: dict[str, Path]) -> None:
    write(platform["legacy"], "ctx = 4096\n")
    proc = run(["config", "path"], platform)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["config", "file", str(platform["config"]), "not", "found", "(config", "directory)"]
    assert lines[1].split() == ["config", "file", str(platform["legacy"]), "exists", "(data", "directory,", "legacy)"]
    assert lines[2].split() == ["data", str(platform["xdg_data"] / "dsv2"), "exists", "(DSV2_HOME", "not", "set)"]
    assert len({line.index("/") for line in lines}) == 1  # paths in one column
    paths = json.loads(run(["config", "path", "--json"], platform).stdout)
    assert [(f["path"], f["exists"]) for f in paths["files"]] == [
        (str(platform["config"]), False),
        (str(platform["legacy"]), True),
    ]
    assert paths["home"] == {"path": str(platform["xdg_data"] / "dsv2"), "exists": True, "from": "DSV2_HOME not set"}


def test_config_path_works_when_the_config_is_broken(platform: dict[str, Path]) -> None:
    write(platform["config"], "this is not toml\n")
    proc = run(["config", "path"], platform)
    assert proc.returncode == 0, proc.stderr
    assert f"{platform['config']}  exists" in proc.stdout


def test_config_show_gives_each_value_and_its_origin(dsv2_home: Path) -> None:
    write(dsv2_home / "config.toml", "ctx = 4096\ntensor_split = [3, 1]\n")
    env = {**os.environ, "DSV2_MAX_TOKENS": "100"}
    proc = subprocess.run(
        [*dsv2_cmd(), "config", "show", "--json", "--model", "/models/x.gguf"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    config = f"config {dsv2_home / 'config.toml'}"
    assert shown["model"] == {"value": "/models/x.gguf", "origin": "flag"}
    assert shown["max_tokens"] == {"value": 100, "origin": "env DSV2_MAX_TOKENS"}
    assert shown["ctx"] == {"value": 4096, "origin": config}
    assert shown["tensor_split"] == {"value": [3.0, 1.0], "origin": config}
    assert shown["style"] == {"value": "brief", "origin": "default"}
    assert shown["threads"] == {"value": None, "origin": "default"}
    assert shown["home"] == {"value": str(dsv2_home), "origin": "env DSV2_HOME"}
    assert "origins" not in shown and "config_files" not in shown

    text = subprocess.run(
        [*dsv2_cmd(), "config", "show"], capture_output=True, text=True, env=env, timeout=60
    ).stdout.splitlines()
    assert [line.split()[0] for line in text] == list(shown)
    rows = {line.split()[0]: line for line in text}
    assert rows["ctx"].split() == ["ctx", "4096", "config", str(dsv2_home / "config.toml")]
    assert rows["tensor_split"].split()[1] == "3,1"
    assert rows["threads"].split() == ["threads", "-", "default"]
    assert len({line.index(line.split()[1], len(line.split()[0])) for line in text}) == 1  # values in one column


def test_models_shows_the_window_a_run_would_use(platform: dict[str, Path]) -> None:
    write(platform["config"], "ctx = 4096\n")
    proc = run(["models"], platform)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()}
    assert rows["dsv2 window"] == f"4,096 (config {platform['config']}; model default 8,192)"
    assert " at 4,096 tokens" in rows["memory"]
    info = json.loads(run(["models", "--json", "--ctx", "2048"], platform).stdout)
    assert (info["window"], info["window_from"], info["default_context"]) == (2048, "flag", 8192)
    assert info["memory"]["n_ctx"] == 2048


@pytest.mark.parametrize("command", [["config", "path"], ["config", "show"], ["models"]])
def test_help_ends_with_examples_kept_one_per_line(platform: dict[str, Path], command: list[str]) -> None:
    proc = run([*command, "--help"], platform)
    assert proc.returncode == 0, proc.stderr
    after = proc.stdout.split("Examples:", 1)[1]
    examples = [line.strip() for line in after.split("Options:", 1)[0].splitlines() if line.strip()]
    assert examples and all(line.startswith("dsv2 " + command[0]) for line in examples)


def test_the_embedded_model_notice_names_the_config_file_to_edit(platform: dict[str, Path], tmp_path: Path) -> None:
    doc = write(tmp_path / "doc.txt", "Some text to summarize.")
    proc = run(["summarize", str(doc), "--dry-run"], platform)
    assert proc.returncode == 0, proc.stderr
    assert f'model = "PATH" in {platform["config"]}' in proc.stderr  # none exists: the primary place
    write(platform["legacy"], "max_tokens = 300\n")
    proc = run(["summarize", str(doc), "--dry-run"], platform)
    assert f'model = "PATH" in {platform["legacy"]}' in proc.stderr  # the file the user already has
