"""Precedence: flag > DSV2_* environment > config file > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsv2cli.errors import ConfigError
from dsv2cli.settings import resolve


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


@pytest.mark.parametrize(
    ("flag", "env", "config", "expected", "origin"),
    [
        (None, None, None, 512, "default"),
        (None, None, 300, 300, "config"),
        (None, "200", 300, 200, "env DSV2_MAX_TOKENS"),
        (100, "200", 300, 100, "flag"),
    ],
)
def test_precedence(
    dsv2_home: Path, flag: int | None, env: str | None, config: int | None, expected: int, origin: str
) -> None:
    environ = {"DSV2_HOME": str(dsv2_home)}
    if env is not None:
        environ["DSV2_MAX_TOKENS"] = env
    if config is not None:
        write_config(dsv2_home, f"max_tokens = {config}\n")
    s = resolve({"max_tokens": flag}, environ)
    assert s.max_tokens == expected
    assert s.origin("max_tokens").startswith(origin)


def test_unknown_config_key_is_rejected(dsv2_home: Path) -> None:
    write_config(dsv2_home, "max_tokenz = 5\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*max_tokenz"):
        resolve({}, {"DSV2_HOME": str(dsv2_home)})


def test_bad_env_value_names_the_variable(dsv2_home: Path) -> None:
    with pytest.raises(ConfigError, match="DSV2_CTX"):
        resolve({}, {"DSV2_HOME": str(dsv2_home), "DSV2_CTX": "lots"})


def test_invalid_style_is_rejected(dsv2_home: Path) -> None:
    with pytest.raises(ConfigError, match="style"):
        resolve({"style": "poem"}, {"DSV2_HOME": str(dsv2_home)})


def test_flash_attn_accepts_words(dsv2_home: Path) -> None:
    environ = {"DSV2_HOME": str(dsv2_home), "DSV2_FLASH_ATTN": "off"}
    assert resolve({}, environ).flash_attn is False


def test_cache_and_gpu_split_settings_from_env_and_config(dsv2_home: Path) -> None:
    write_config(dsv2_home, 'cache_type_k = "q8_0"\ntensor_split = [3, 1]\n')
    s = resolve({}, {"DSV2_HOME": str(dsv2_home), "DSV2_CACHE_TYPE_V": "q4_0", "DSV2_SPLIT_MODE": "row"})
    assert (s.cache_type_k, s.cache_type_v, s.split_mode, s.tensor_split) == ("q8_0", "q4_0", "row", (3.0, 1.0))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"cache_type_v": "q8_0", "flash_attn": False}, "needs flash attention"),
        ({"cache_type_k": "q4_k"}, "cache_type_k"),
        ({"split_mode": "diagonal"}, "split_mode"),
        ({"tensor_split": "3,1", "split_mode": "none"}, "several GPUs"),
        ({"tensor_split": "0,0"}, "positive sum"),
    ],
)
def test_invalid_cache_and_split_combinations_are_rejected(
    dsv2_home: Path, flags: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(flags, {"DSV2_HOME": str(dsv2_home)})
