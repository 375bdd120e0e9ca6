"""``dsv2 models``: the resolved model (as before), and ``pull``, ``list``, ``rm``, ``default``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import app
from .common import Env, memory_line
from .options import ENGINE, Flags, JsonOpt, uses

if TYPE_CHECKING:
    from ..memory import ContextChoice

models_app = typer.Typer(no_args_is_help=False)
app.add_typer(models_app, name="models")

NameArg = Annotated[
    str, typer.Argument(help="A short name (deepseek-v2-lite[:QUANT]), OWNER/REPO:QUANT or hf://OWNER/REPO/FILE.gguf.")
]
MB = 1_000_000


@models_app.callback(invoke_without_command=True)
@uses(ENGINE)
def models(context: typer.Context, json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """Show the resolved model and what it is, without loading its weights; get models by name.

    The window is the one a run would use (--ctx, DSV2_CTX or ctx in config.toml, else the
    model's default, lowered to what fits in free memory), with the memory estimate at it.
    --model takes a path or the name of a pulled model.

    Examples:

    \b
      dsv2 models
      dsv2 models pull deepseek-v2-lite
      dsv2 models list
      dsv2 models -m deepseek-v2-lite --ctx 16384
      dsv2 models --json | jq .window
    """
    if context.invoked_subcommand is not None:
        return
    info, choice = env.session(flags).model_info()
    if json_out:
        env.write_json(info)
        return
    env.stdout.write("".join(f"{label + ':':<17}{value}\n" for label, value in info_lines(info, choice)))


def info_lines(info: dict[str, Any], choice: ContextChoice) -> list[tuple[str, str]]:
    """The report's lines, all built before any is written: a header that lacks a field shows
    "unknown" there, never a half-written report."""
    labels = {
        "path": "model",
        "resolved_from": "resolved from",
        "name": "name",
        "architecture": "architecture",
        "trained_context": "trained context",
        "window": "dsv2 window",
        "layers": "layers",
        "vocab_size": "vocabulary",
        "chat_template": "chat template",
        "quantization": "quantization",
        "file_size_bytes": "file size",
        "gguf_version": "GGUF version",
        "gpu_offload": "GPU offload",
        "kv_format": "KV cache",
        "memory": "memory",
    }
    lines = []
    for key, label in labels.items():
        value = info.get(key)
        if key == "window":
            default = info["default_context"]
            shown = f"{value:,} ({info['window_from']}"
            shown += ")" if value == default else f"; model default {default:,})"
        elif key == "kv_format":
            per_token = info.get("kv_bytes_per_token")
            shown = (
                f"{value} format, {per_token:,} bytes/token at f16"
                if value is not None and per_token is not None
                else "unknown (the header lacks the attention sizes)"
            )
        elif key == "memory":
            shown = memory_line(choice)
        elif key == "file_size_bytes":
            shown = f"{int(value or 0) / 1e6:,.1f} MB ({value} bytes)"
        elif isinstance(value, bool):
            shown = "yes" if value else "no"
            if key == "gpu_offload":
                shown += " (this llama.cpp build)" if value else " (CPU-only llama.cpp build)"
        elif value is None:
            shown = "unknown"
        else:
            shown = str(value)
        lines.append((label, shown))
    return lines


@models_app.command("pull")
@uses(ENGINE)
def pull(
    name: NameArg,
    force: Annotated[bool, typer.Option("--force", help="Download even if it will not run on this machine.")] = False,
    json_out: JsonOpt = False,
    *,
    flags: Flags,
    env: Env,
) -> None:
    """Download a GGUF from the Hugging Face Hub, checked before and after.

    Before any byte: the Hub's sizes against free disk, and the GGUF header (a range request
    of a few MB) through the memory planner at the rated window (or --ctx) and the largest that
    fits; a model that cannot run here is refused with the numbers (exit 7) unless --force.
    After: each file's sha256 against the Hub's. An interrupted pull resumes where it stopped.
    Files go to the Hugging Face cache (HF_HOME); HF_ENDPOINT and HF_TOKEN are honoured.

    Examples:

    \b
      dsv2 models pull deepseek-v2-lite
      dsv2 models pull deepseek-v2-lite:Q8_0
      dsv2 models pull deepseek-v2 --ctx 32768 --gpu-layers -1
      dsv2 models pull bartowski/DeepSeek-Coder-V2-Lite-Instruct-GGUF:Q4_K_M
      dsv2 models pull hf://OWNER/REPO/model-00001-of-00003.gguf
    """
    from ..memory import gib
    from ..models import check_plan, plan_pull
    from ..models import pull as do_pull
    from ..render import StepKind

    settings = flags.settings(env.environ)
    hub, plan = plan_pull(name, settings, env.environ)
    fmt = {"mla": "MLA format", "legacy-deepseek2": "legacy format (pre-MLA, large KV cache)"}.get(
        plan.kv_format, plan.kv_format + " format"
    )
    env.note(
        f"{plan.ref.name}: {gib(plan.size)} in {len(plan.files)} file{'s' if len(plan.files) > 1 else ''} from "
        f"{plan.ref.repo} ({plan.commit[:8]}), {plan.info.architecture}, {fmt}; {gib(plan.need_bytes)} to download, "
        f"{gib(plan.free_bytes)} free"
    )
    env.note(f"memory: {memory_line(plan.choice)}")
    for note in plan.notes or []:
        env.note(note)
    if plan.problem is not None and force:
        env.note(f"will not run here ({plan.problem}); downloading anyway (--force)")
    check_plan(plan, force)
    kind = StepKind("downloading", "MB", 20.0)

    def on_bytes(what: str, done: int, total: int) -> None:
        label = "verifying sha256" if what == "verifying" else f"downloading {Path(what).name}"
        env.screen.report(kind, label, done // MB, max(total // MB, 1) if total else 1)

    with env.screen.scope():
        model = do_pull(plan, hub, settings.home, on_bytes)
    if json_out:
        env.write_json({**plan.to_dict(), "path": model.path, "pulled": True})
        return
    env.screen.write(f"{model.name}: {model.path}\n")
    env.note(f"use it with -m {model.short_name}, or make it the default: dsv2 models default {model.short_name}")


@models_app.command("list")
@uses()
def list_models(json_out: JsonOpt = False, *, flags: Flags, env: Env) -> None:
    """Models pulled by name, and other GGUFs in the Hugging Face cache.

    Columns: name, quantization, size, the window dsv2 uses, MLA or legacy format, the default
    (marked *), where the file lives.

    Examples:

    \b
      dsv2 models list
      dsv2 models list --json | jq -r '.[].name'
    """
    from ..hub import HubConfig, cached_ggufs, load_manifest, local_info
    from ..memory import kv_layout
    from ..models import default_context

    settings = flags.settings(env.environ)
    config = HubConfig.from_environ(env.environ)
    pulled = load_manifest(settings.home)
    default = settings.model
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for model in sorted(pulled.values(), key=lambda m: m.name):
        path = Path(model.path)
        seen.add(path)
        rows.append(
            {
                "name": model.name,
                "quant": model.quant,
                "size_bytes": model.size,
                "window": model.window,
                "kv_format": model.kv_format,
                "path": model.path,
                "present": path.exists(),
                "default": default is not None and default.lower() in (model.name.lower(), model.short_name.lower()),
                "pulled": True,
            }
        )
    for cached in cached_ggufs(config):
        if cached.path in seen:
            continue
        info = local_info(cached.path)
        layout = kv_layout(info) if info is not None else None
        rows.append(
            {
                "name": f"hf://{cached.repo}/{cached.rel}",
                "quant": info.quantization if info is not None else None,
                "size_bytes": info.file_size if info is not None else cached.path.stat().st_size,
                "window": default_context(info) if info is not None else None,
                "kv_format": layout.format if layout is not None else None,
                "path": str(cached.path),
                "present": True,
                "default": default is not None and Path(default).expanduser() == cached.path,
                "pulled": False,
            }
        )
    if json_out:
        env.write_json(rows)
        return
    if not rows:
        env.note(f"no models yet (none pulled, no GGUF in {config.cache_dir}): dsv2 models pull deepseek-v2-lite")
        return
    fmt = {"legacy-deepseek2": "legacy", "mla": "MLA"}
    table = [["NAME", "QUANT", "SIZE", "WINDOW", "FORMAT", "DEFAULT", "PATH"]]
    for r in rows:
        table.append(
            [
                r["name"],
                r["quant"] or "?",
                f"{r['size_bytes'] / 1e9:,.1f} GB" if r["size_bytes"] >= 1e8 else f"{r['size_bytes'] / 1e6:,.1f} MB",
                f"{r['window']:,}" if r["window"] else "?",
                fmt.get(r["kv_format"], r["kv_format"] or "?"),
                "*" if r["default"] else "",
                r["path"] + ("" if r["present"] else " (missing)"),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    env.screen.write(
        "".join(
            "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1] + "\n"
            for row in table
        )
    )


@models_app.command("rm")
@uses()
def rm(name: NameArg, *, flags: Flags, env: Env) -> None:
    """Delete a pulled model's files from the Hugging Face cache, and its name.

    Examples:

    \b
      dsv2 models rm deepseek-v2-lite
      dsv2 models rm deepseek-v2-lite:Q8_0
    """
    from ..hub import HubConfig, remove

    settings = flags.settings(env.environ)
    model = remove(settings.home, HubConfig.from_environ(env.environ), name)
    env.note(f"removed {model.name} ({model.size / 1e9:,.1f} GB, {model.path})")
    if settings.model and settings.model.lower() in (model.name.lower(), model.short_name.lower()):
        env.note(f"it was the default model ({settings.origin('model')}); choose another: dsv2 models default NAME")


@models_app.command("default")
@uses()
def default(name: NameArg, *, flags: Flags, env: Env) -> None:
    """Make a pulled model (or a GGUF path) the default: writes model = NAME to config.toml.

    Examples:

    \b
      dsv2 models default deepseek-v2-lite
      dsv2 models default ~/models/DeepSeek-V2-Lite-Chat.Q4_K_M.gguf
    """
    from ..errors import UsageError
    from ..hub import find_pulled
    from ..models import check_model_file
    from ..settings import set_config_value

    settings = flags.settings(env.environ)
    value = name
    if find_pulled(settings.home, name) is None:
        path = Path(name).expanduser()
        if not path.exists():
            raise UsageError(f"{name}: neither a pulled model (dsv2 models list) nor a GGUF file")
        check_model_file(path)
        value = str(path.resolve())
    target = settings.config_path
    set_config_value(target, "model", value)
    env.note(f"default model: {value} (model in {target})")
    if settings.origin("model").startswith("env"):
        env.note(f"DSV2_MODEL is set and still wins over the config file ({settings.model})")
