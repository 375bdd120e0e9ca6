"""``dsv2 extract``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app
from .common import Env, handle_errors, resolve_settings
from .options import (
    AllowSecretsOpt,
    ApiKeyEnvOpt,
    ApiModelOpt,
    BackendOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    CtxOpt,
    DebugOpt,
    EscalateOpt,
    FlashOpt,
    GpuLayersOpt,
    ModelOpt,
    PasswordOpt,
    SeedOpt,
    ThreadsOpt,
    VerboseOpt,
    YesOpt,
)
from .session import ModelSession, confirm_batch, guard_outgoing, open_session

ExtractPathsArg = Annotated[
    list[str],
    typer.Argument(help="Documents to read (PDF, text, markdown, HTML); - for standard input.", show_default=False),
]


SchemaOpt = Annotated[
    Path | None,
    typer.Option(
        "--schema",
        help="JSON Schema whose top-level properties are the fields to extract [default: built-in contract schema].",
        show_default=False,
    ),
]


FieldsOpt = Annotated[
    str | None, typer.Option("--fields", help="Comma-separated subset of the schema's fields.", show_default=False)
]


OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Write results to this file instead of stdout. A .jsonl or .csv file gets one record per input as each "
        "completes; a rerun skips inputs already in it.",
        show_default=False,
    ),
]


FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="json | jsonl | csv [default: from --out's suffix, else json for one input, jsonl for more].",
        show_default=False,
    ),
]


ForceOpt = Annotated[bool, typer.Option("--force", help="Extract every input again and start --out afresh.")]


@app.command()
def extract(
    paths: ExtractPathsArg,
    schema: SchemaOpt = None,
    fields: FieldsOpt = None,
    out: OutOpt = None,
    fmt: FormatOpt = None,
    force: ForceOpt = False,
    password: PasswordOpt = None,
    model: ModelOpt = None,
    ctx: CtxOpt = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens",
            help="Tokens reserved for each answer [default: 96 a field + 64, at most half the window].",
            show_default=False,
        ),
    ] = None,
    gpu_layers: GpuLayersOpt = None,
    threads: ThreadsOpt = None,
    flash_attn: FlashOpt = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", help="Sampling temperature [default: 0, greedy].", show_default=False),
    ] = None,
    seed: SeedOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    api_model: ApiModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    escalate_to: EscalateOpt = None,
    allow_secrets: AllowSecretsOpt = False,
    yes: YesOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Extract fields as schema-valid JSON; every value carries a verbatim quote checked against the source.

    Results go to stdout (or --out); progress, unverified quotes and failures go to stderr. A file
    that cannot be read or extracted is reported and skipped. Exit code: 0 when every input is done
    (or already in --out); otherwise that of the first failed input (3 unreadable, 4 unusable model
    answer, 5 too big for the window), after the others ran. 2: bad flags or schema, before any model work.

    Examples:

    \b
      dsv2 extract contract.pdf
      dsv2 extract contracts/*.pdf --out results.jsonl
      dsv2 extract invoice.txt --schema invoice.schema.json
      dsv2 extract contract.pdf --fields governing_law,liability_cap
    """
    env = Env()
    with handle_errors(env, debug):
        settings = resolve_settings(env, locals())
        from .. import extract as ex
        from .. import sources
        from ..engines.base import GenerationParams
        from ..errors import UsageError
        from ..settings import with_backend

        # Everything that can be wrong with the request fails here, before any model work.
        field_set = ex.load_user_schema(schema) if schema is not None else ex.contract_fields()
        if fields is not None:
            field_set = field_set.subset([n.strip() for n in fields.split(",") if n.strip()])
        out_format = ex.pick_format(fmt, out, len(paths))
        if paths.count("-") > 1:
            raise UsageError("- (standard input) can be given only once")
        screen = env.screen
        sink = ex.open_sink(out_format, screen.writer(), out, force, field_set, len(paths))

        opened: list[ModelSession] = []

        def as_model(session: ModelSession, name: str) -> Any:
            opened.append(session)

            def guard(doc: Any, tokens: int, requests: int) -> None:
                guard_outgoing(env, session, [doc], tokens, requests, allow_secrets=allow_secrets, yes=True)

            return ex.Model(
                session.backend,
                session.tokenizer(verbose),  # a local model loads its weights here
                session.facts,
                session.window,
                name=name,
                cost=session.cost if session.remote is not None else None,
                guard=guard if session.remote is not None else None,
            )

        def open_model() -> Any:
            return as_model(open_session(env, settings, verbose), settings.backend)

        escalation = [with_backend(settings, settings.escalate_to, env.environ)] if settings.escalate_to else []
        for which in [settings, *escalation]:
            confirm_batch(env, which, paths, yes)

        def open_escalation() -> Any:
            return as_model(open_session(env, escalation[0], verbose), settings.escalate_to)

        params = GenerationParams(
            settings.max_tokens if settings.origin("max_tokens") != "default" else 0,
            settings.temperature if settings.origin("temperature") != "default" else 0.0,
            settings.seed,
        )
        one_at_a_time = settings.parallel == 1  # progress bars follow one model call at a time
        extractor = ex.Extractor(
            field_set,
            params,
            open_model,
            env.note,
            open_escalation if settings.escalate_to else None,
            on_prompt=screen.on_prompt if one_at_a_time else None,
            on_output=screen.on_output if one_at_a_time else None,
        )
        with screen.progress(resumable=True):
            report = ex.run_batch(
                paths,
                lambda p: sources.load(p, env.stdin, password=password),
                extractor,
                sink,
                field_set.digest,
                env.note,
                concurrency=settings.parallel,
            )
        for session in opened:
            for notice in session.notices():
                env.note(notice)
        if len(paths) > 1 or report.skipped:
            env.note(
                f"{report.done} extracted, {report.skipped} skipped (already done), {len(report.failed)} failed"
                + (f": {', '.join(p for p, _ in report.failed)}" if report.failed else "")
            )
        if report.exit_code:
            raise typer.Exit(report.exit_code)
