"""Typed settings with one documented precedence: flag > DSV2_* env > config file > default.

The config file is ``config.toml`` in the platform's config directory (``~/.config/dsv2/`` on
Linux), merged over the one in the data directory where older versions read it; with
``DSV2_HOME`` set, only ``$DSV2_HOME/config.toml`` (``DSV2_HOME`` moves everything). Unknown keys
are rejected so a typo never silently does nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .kvcache import CACHE_TYPES, cache_type_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

STYLES = ("brief", "detailed", "bullets")
SPLIT_MODES = ("none", "layer", "row")
TOKENIZERS = ("model", "deepseek-v2")  # plan / pack --json / --dry-run without the weights


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``"4G"`` -> bytes; K/M/G/T are powers of 1024, an optional trailing B is allowed."""
    value = text.strip().upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in _UNITS and value[-1:] else ""
    number = value[: len(value) - len(unit)]
    try:
        size = float(number) * _UNITS[unit]
    except ValueError as exc:
        raise ValueError(f"not a size: {text!r} (use e.g. 500M or 2G)") from exc
    if size < 0:
        raise ValueError(f"not a size: {text!r}")
    return int(size)


CONFIG_FILE = "config.toml"


def default_home(environ: Mapping[str, str]) -> Path:
    if environ.get("DSV2_HOME"):
        return Path(environ["DSV2_HOME"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("dsv2", appauthor=False))


def check_home(home: Path, environ: Mapping[str, str]) -> None:
    """Raise ConfigError (exit 2) naming DSV2_HOME when ``home`` is a file, lies under a file, or
    cannot be created (its nearest existing folder is not writable). Nothing is created here."""
    name = f"DSV2_HOME {home}" if environ.get("DSV2_HOME") else f"dsv2's data folder {home}"
    if home.exists():
        if not home.is_dir():
            raise ConfigError(f"{name}: is a file, not a folder; point DSV2_HOME at a folder")
        if not os.access(home, os.W_OK | os.X_OK):
            raise ConfigError(f"{name}: is not writable")
        return
    above = home.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ConfigError(f"{name}: cannot be created: {above} is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}: cannot be created: {above} is not writable")


@dataclass(frozen=True)
class ConfigFile:
    """One place ``config.toml`` is looked for."""

    path: Path
    role: str  # "DSV2_HOME", "config directory" or "data directory, legacy"

    @property
    def exists(self) -> bool:
        return self.path.exists()


def config_files(environ: Mapping[str, str]) -> tuple[ConfigFile, ...]:
    """Where ``config.toml`` is looked for, the file that wins first.

    ``DSV2_HOME`` set: only ``$DSV2_HOME/config.toml``. Otherwise the platform's config directory
    (``$XDG_CONFIG_HOME/dsv2``, by default ``~/.config/dsv2`` on Linux), then the data directory
    (``~/.local/share/dsv2``), where dsv2 used to read it; where the two are one directory (macOS),
    once. The platform directories follow the process environment (platformdirs reads it).
    """
    home = default_home(environ)
    if environ.get("DSV2_HOME"):
        return (ConfigFile(home / CONFIG_FILE, "DSV2_HOME"),)
    from platformdirs import user_config_dir

    primary = ConfigFile(Path(user_config_dir("dsv2", appauthor=False)) / CONFIG_FILE, "config directory")
    legacy = ConfigFile(home / CONFIG_FILE, "data directory, legacy")
    return (primary,) if legacy.path == primary.path else (primary, legacy)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know; built once by :func:`resolve`."""

    model: str | None = field(default=None, metadata={"help": "GGUF model path"})
    ctx: int | None = field(default=None, metadata={"help": "context window (n_ctx); default: the model's"})
    max_tokens: int = field(default=512, metadata={"help": "tokens reserved for the answer"})
    gpu_layers: int | None = field(default=None, metadata={"help": "layers to offload; default all if the build can"})
    threads: int | None = field(default=None, metadata={"help": "CPU threads; default: one per physical core"})
    flash_attn: bool | None = field(default=None, metadata={"help": "flash attention; default: on"})
    temperature: float = field(default=0.2, metadata={"help": "sampling temperature (0 = greedy)"})
    seed: int = field(default=0, metadata={"help": "sampling seed (fixed by default: reproducible runs)"})
    style: str = field(default="brief", metadata={"help": "summary style: " + "|".join(STYLES)})
    embed_model: str | None = field(default=None, metadata={"help": "embedding GGUF for retrieval"})
    # The token, if the server wants one, is never a setting: it is read from DSV2_INDEX_TOKEN.
    index_url: str | None = field(
        default=None, metadata={"help": "Chroma server for the retrieval index's vectors, e.g. http://host:8000"}
    )
    cache_type_k: str = field(default="f16", metadata={"help": "KV cache type for K: " + "|".join(CACHE_TYPES)})
    cache_type_v: str = field(default="f16", metadata={"help": "KV cache type for V (quantized needs flash attention)"})
    tokenizer: str = field(default="model", metadata={"help": "counting only: " + "|".join(TOKENIZERS)})
    split_mode: str | None = field(default=None, metadata={"help": "several GPUs: " + "|".join(SPLIT_MODES)})
    tensor_split: tuple[float, ...] | None = field(default=None, metadata={"help": "share per GPU, e.g. 3,1"})
    cache_size: str = field(default="4G", metadata={"help": "prompt-prefix cache bound, e.g. 2G, 500M"})
    max_input_file: str = field(default="64M", metadata={"help": "most bytes read from one input, e.g. 64M"})
    max_input_total: str = field(default="256M", metadata={"help": "most bytes read from all inputs of a run"})
    # Remote backends (engines/openai.py). --backend is "local", "openai" or a profile name; a
    # profile (built in, or [profiles.NAME] in the config file) fills the values below that no
    # flag or DSV2_* variable sets. The API key itself is never a setting: it is read from the
    # variable named by api_key_env, else DSV2_API_KEY.
    backend: str = field(default="local", metadata={"help": "local | openai | a profile name"})
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint, e.g. .../v1"})
    api_model: str | None = field(default=None, metadata={"help": "model name sent to the endpoint"})
    api_key_env: str | None = field(default=None, metadata={"help": "environment variable holding the API key"})
    api_tokenizer: str | None = field(default=None, metadata={"help": "remote counting: deepseek-v2 | estimate"})
    json_mode: str = field(
        default="auto",
        metadata={"help": "remote JSON output: " + "|".join(("auto", "json_schema", "json_object", "none"))},
    )
    timeout: float = field(default=120.0, metadata={"help": "remote read timeout in seconds"})
    retries: int = field(default=4, metadata={"help": "remote retries on 429/5xx/connection errors"})
    concurrency: int | None = field(
        default=None, metadata={"help": "parallel remote requests; default 4 remote, 1 local"}
    )
    price_input: float | None = field(default=None, metadata={"help": "USD per 1M input tokens"})
    price_output: float | None = field(default=None, metadata={"help": "USD per 1M output tokens"})
    price_cache_hit: float | None = field(
        default=None, metadata={"help": "USD per 1M input tokens served from the provider's cache"}
    )
    escalate_to: str | None = field(default=None, metadata={"help": "profile for complex or failed requests"})
    home: Path = field(default=Path("."), metadata={"help": "DSV2_HOME: caches, indexes, converted models"})
    config_files: tuple[ConfigFile, ...] = field(
        default=(), compare=False, metadata={"help": "where config.toml was looked for, the winning file first"}
    )
    # where each value came from: "flag", "env DSV2_X", "config <path>", "profile NAME" or "default"
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def cache_size_bytes(self) -> int:
        return parse_size(self.cache_size)

    @property
    def input_limits(self) -> tuple[int, int]:
        """(bytes per input, bytes for all inputs): ``max_input_file``, ``max_input_total``."""
        return parse_size(self.max_input_file), parse_size(self.max_input_total)

    @property
    def remote(self) -> bool:
        return self.backend != LOCAL

    @property
    def parallel(self) -> int:
        """Requests in flight at once on a remote backend: --concurrency, else 4. Locally always 1:
        one llama.cpp context evaluates one prompt at a time (more would only share the same cores)."""
        if not self.remote:
            return 1
        return self.concurrency or 4

    @property
    def config_path(self) -> Path:
        """The config file to edit: the first that exists where dsv2 looks, else the primary place."""
        existing = [f.path for f in self.config_files if f.exists]
        if existing:
            return existing[0]
        return self.config_files[0].path if self.config_files else self.home / CONFIG_FILE

    def origin(self, name: str) -> str:
        return self.origins.get(name, "default")


_STATE = ("home", "config_files", "origins")  # fields that are not settings a flag, variable or file sets
_KEYS = tuple(f.name for f in fields(Settings) if f.name not in _STATE)
SETTING_NAMES = frozenset(_KEYS)  # what flags may set: the CLI maps parameters of these names
JSON_MODES = ("auto", "json_schema", "json_object", "none")
API_TOKENIZERS = ("deepseek-v2", "estimate")
LOCAL, OPENAI = "local", "openai"

# What a profile may set, and the setting each key fills (window -> ctx).
PROFILE_KEYS = {
    "base_url": "base_url",
    "api_model": "api_model",
    "api_key_env": "api_key_env",
    "tokenizer": "api_tokenizer",
    "window": "ctx",
    "json_mode": "json_mode",
    "timeout": "timeout",
    "retries": "retries",
    "concurrency": "concurrency",
    "price_input": "price_input",
    "price_output": "price_output",
    "price_cache_hit": "price_cache_hit",
}

# Built-in profiles; a [profiles.NAME] table in the config file overrides or adds keys.
# Prices are USD per 1M tokens as published when this was written (DeepSeek: cache-miss input);
# check your provider's page and set price_input / price_output in the config to keep them true.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "deepseek": {
        "base_url": "https://api.deepseek.com/v1",
        "api_model": "deepseek-chat",
        "api_key_env": "DEEPSEEK_API_KEY",
        "tokenizer": "deepseek-v2",
        "window": 128_000,
        "price_input": 0.27,
        "price_output": 1.10,
        "price_cache_hit": 0.07,  # input tokens DeepSeek's context cache already holds
    },
    "openrouter": {
        "base_url": "https://openrouter.ai/api/v1",
        "api_model": "deepseek/deepseek-chat",
        "api_key_env": "OPENROUTER_API_KEY",
        "tokenizer": "deepseek-v2",
        "window": 128_000,
        "price_input": 0.30,
        "price_output": 1.20,
    },
    "vllm": {  # `vllm serve deepseek-ai/DeepSeek-V2-Lite-Chat --tensor-parallel-size N`
        "base_url": "http://127.0.0.1:8000/v1",
        "api_model": "deepseek-ai/DeepSeek-V2-Lite-Chat",
        "tokenizer": "deepseek-v2",  # window: asked of the server (/v1/models max_model_len)
        "price_input": 0.0,
        "price_output": 0.0,
    },
    "llama-server": {  # llama.cpp's `llama-server -m model.gguf -c 32768` (or python -m llama_cpp.server)
        "base_url": "http://127.0.0.1:8080/v1",
        "api_model": "local",
        "tokenizer": "deepseek-v2",  # window: asked of the server (/props n_ctx)
        "price_input": 0.0,
        "price_output": 0.0,
    },
}


def _coerce(name: str, raw: Any, where: str) -> Any:
    """Turn a raw value (string from env, TOML value) into the field's type."""
    if raw is None:
        return None
    try:
        if name in ("ctx", "max_tokens", "gpu_layers", "threads", "seed", "concurrency", "retries"):
            if isinstance(raw, bool | float):  # `ctx = 4096.5` in a config file is not 4096
                raise ConfigError(f"{where}: {name} must be a whole number, not {raw!r}")
            return int(raw)
        if name in ("temperature", "timeout", "price_input", "price_output", "price_cache_hit"):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if name == "flash_attn":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "on", "yes"):
                return True
            if text in ("0", "false", "off", "no"):
                return False
            if text == "auto":
                return None
            raise ValueError(raw)
        if name in ("cache_size", "max_input_file", "max_input_total"):
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            parse_size(str(raw))
            return str(raw)
        if name == "index_url":
            if not isinstance(raw, str):
                raise ConfigError(f"{where}: {name} must be a string, not {raw!r}")
            return raw.strip()
        if name in ("model", "style", "embed_model", "base_url", "api_model", "api_key_env", "escalate_to"):
            if not isinstance(raw, str | os.PathLike):  # `model = 5` or a table in a config file
                raise ConfigError(f"{where}: {name} must be a string, not {raw!r}")
            return str(raw)
        if name in ("cache_type_k", "cache_type_v", "split_mode", "tokenizer", "backend", "json_mode", "api_tokenizer"):
            return str(raw).strip().lower()
        if name == "tensor_split":
            parts = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(float(p) for p in parts if str(p).strip())
    except (ValueError, TypeError) as exc:  # TypeError: a TOML table or array where a number belongs
        raise ConfigError(f"{where}: invalid value {raw!r} for {name}") from exc
    raise ConfigError(f"{where}: unknown setting {name!r}")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from exc
    unknown = sorted(set(data) - set(_KEYS) - {"profiles"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_KEYS)}, [profiles.NAME]"
        )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(f"{path}: profiles must be tables: [profiles.NAME] with {', '.join(PROFILE_KEYS)}")
    for name, table in profiles.items():
        bad = sorted(set(table) - set(PROFILE_KEYS))
        if bad:
            raise ConfigError(
                f"{path}: [profiles.{name}]: unknown key(s) {', '.join(bad)}; known: {', '.join(PROFILE_KEYS)}"
            )
        if name in (LOCAL, OPENAI):
            raise ConfigError(f"{path}: [profiles.{name}]: {name!r} is a backend, not a profile name")
    return data


def _merge_configs(files: tuple[ConfigFile, ...]) -> tuple[dict[str, Any], dict[str, Path]]:
    """The keys of every file, merged (an earlier file wins per key, per profile key too), and the
    file each key came from (``"profiles.NAME.KEY"`` for a profile's), for origins and errors."""
    merged: dict[str, Any] = {}
    source: dict[str, Path] = {}
    tables: dict[str, dict[str, Any]] = {}
    for config in reversed(files):
        for key, value in _read_config(config.path).items():
            if key == "profiles":
                for name, table in value.items():
                    tables.setdefault(name, {}).update(table)
                    source.update({f"profiles.{name}.{k}": config.path for k in table})
            else:
                merged[key], source[key] = value, config.path
    if tables:
        merged["profiles"] = tables
    return merged, source


def profiles(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Built-in profiles, overridden and extended by the config file's [profiles.NAME] tables."""
    merged = {name: dict(values) for name, values in BUILTIN_PROFILES.items()}
    for name, table in config.get("profiles", {}).items():
        merged.setdefault(name, {}).update(table)
    return merged


def resolve(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from flags (None = not given), the environment and the config file(s)."""
    environ = os.environ if environ is None else environ
    home = default_home(environ)
    check_home(home, environ)
    files = config_files(environ)
    config, source = _merge_configs(files)
    values: dict[str, Any] = {}
    origins: dict[str, str] = {"home": "env DSV2_HOME" if environ.get("DSV2_HOME") else "default"}
    for name in _KEYS:
        env_name = "DSV2_" + name.upper()
        if flags.get(name) is not None:
            values[name], origins[name] = _coerce(name, flags[name], f"--{name.replace('_', '-')}"), "flag"
        elif environ.get(env_name, "") != "":
            values[name], origins[name] = _coerce(name, environ[env_name], env_name), f"env {env_name}"
        elif name in config:
            path = source[name]
            values[name], origins[name] = _coerce(name, config[name], str(path)), f"config {path}"
    backend = values.get("backend", LOCAL)
    if backend not in (LOCAL, OPENAI):
        known = profiles(config)
        if backend not in known:
            raise ConfigError(
                f"backend ({origins.get('backend')}): unknown backend or profile {backend!r}; "
                f"use local, openai or one of: {', '.join(sorted(known))}"
            )
        where = f"profile {backend}"
        for key, raw in known[backend].items():
            name = PROFILE_KEYS[key]
            if name not in values or origins[name].startswith("config"):  # flags and DSV2_* win
                file = source.get(f"profiles.{backend}.{key}")
                place = f"{file}: [profiles.{backend}] {key}" if file else f"[profiles.{backend}] {key}"
                values[name], origins[name] = _coerce(name, raw, place), where
    settings = replace(Settings(home=home, config_files=files), **values, origins=origins)
    validate(settings)
    return settings


def effective(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every setting, and ``home``, with its value (JSON-ready) and origin, in declaration order."""
    shown: dict[str, dict[str, Any]] = {}
    for f in fields(Settings):
        if f.name in ("config_files", "origins"):
            continue
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        shown[f.name] = {"value": value, "origin": settings.origin(f.name)}
    return shown


def with_backend(settings: Settings, backend: str, environ: Mapping[str, str] | None = None) -> Settings:
    """The same run settings on another backend/profile (``--escalate-to``): its own endpoint, window, prices."""
    keep = {
        name: getattr(settings, name)
        for name in ("max_tokens", "temperature", "seed", "style", "tokenizer")
        if settings.origin(name) == "flag"
    }
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if not _is_remote_env(k)}
    return resolve({**keep, "backend": backend}, env)


def _is_remote_env(name: str) -> bool:
    remote = {"DSV2_" + n.upper() for n in ("backend", "escalate_to", *PROFILE_KEYS.values())}
    return name in remote


def validate(s: Settings) -> None:
    def bad(name: str, problem: str) -> ConfigError:
        where = s.origin(name)
        return ConfigError(f"{name} ({where}): {problem}")

    if s.style not in STYLES:
        raise bad("style", f"must be one of {', '.join(STYLES)}, not {s.style!r}")
    if s.max_tokens < 1:
        raise bad("max_tokens", "must be at least 1")
    if s.ctx is not None and s.ctx < 16:
        raise bad("ctx", "must be at least 16 tokens")
    if s.threads is not None and s.threads < 1:
        raise bad("threads", "must be at least 1")
    if s.gpu_layers is not None and s.gpu_layers < -1:
        raise bad("gpu_layers", "must be -1 (all), 0 or a positive layer count")
    if not 0.0 <= s.temperature <= 5.0:
        raise bad("temperature", "must be between 0 and 5")
    cache_problem = cache_type_problem(s.cache_type_k, s.cache_type_v, s.flash_attn)
    if cache_problem is not None:
        raise bad(*cache_problem)
    if s.tokenizer not in TOKENIZERS:
        raise bad("tokenizer", f"must be one of {', '.join(TOKENIZERS)}, not {s.tokenizer!r}")
    if s.json_mode not in JSON_MODES:
        raise bad("json_mode", f"must be one of {', '.join(JSON_MODES)}, not {s.json_mode!r}")
    if s.api_tokenizer is not None and s.api_tokenizer not in API_TOKENIZERS:
        raise bad("api_tokenizer", f"must be one of {', '.join(API_TOKENIZERS)}, not {s.api_tokenizer!r}")
    if s.concurrency is not None and not 1 <= s.concurrency <= 64:
        raise bad("concurrency", "must be between 1 and 64")
    if s.timeout <= 0:
        raise bad("timeout", "must be positive (seconds)")
    if not 0 <= s.retries <= 20:
        raise bad("retries", "must be between 0 and 20")
    for name in ("price_input", "price_output", "price_cache_hit"):
        value = getattr(s, name)
        if value is not None and value < 0:
            raise bad(name, "must be >= 0 (USD per 1M tokens)")
    if s.backend == OPENAI and not s.base_url:
        raise bad("base_url", "--backend openai needs --base-url (or a profile: --backend deepseek, vllm, ...)")
    if s.index_url is not None and s.index_url.split("://", 1)[0] not in ("http", "https"):
        raise bad("index_url", f"must be the http:// or https:// URL of a Chroma server, not {s.index_url!r}")
    if s.split_mode is not None and s.split_mode not in SPLIT_MODES:
        raise bad("split_mode", f"must be one of {', '.join(SPLIT_MODES)}, not {s.split_mode!r}")
    if s.tensor_split is not None:
        if not s.tensor_split or any(v < 0 for v in s.tensor_split) or sum(s.tensor_split) <= 0:
            raise bad("tensor_split", "must be non-negative shares per GPU with a positive sum, e.g. 3,1")
        if s.split_mode == "none":
            raise bad("tensor_split", "splits the model over several GPUs: use --split-mode layer or row")


def set_config_value(path: Path, key: str, value: str) -> None:
    """Set one top-level string setting in ``path`` (``dsv2 models default``), keeping every other
    line and comment as it is; the result is read back before it replaces the file."""
    import json
    import re

    from .fsutil import write_atomic

    if key not in SETTING_NAMES:
        raise ConfigError(f"unknown setting {key!r}")
    _read_config(path)  # a broken file is reported, not rewritten
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    top = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    entry = f"{key} = {json.dumps(value)}"  # a JSON string is a valid TOML basic string
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(top):
        if pattern.match(lines[i]):
            lines[i] = entry
            break
    else:
        lines.insert(top, entry)
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text).get(key) != value:  # pragma: no cover - a multi-line value we did not replace
        raise ConfigError(f"{path}: could not set {key}; edit the file by hand")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
