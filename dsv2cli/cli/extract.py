"""``dsv2 extract``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import logs
from .app import app
from .common import Env
from .options import ENGINE, LOG, PASSWORD, REMOTE, SAMPLING, SENDING, VERBOSE, Flags, uses

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
@uses(PASSWORD, ENGINE, SAMPLING, REMOTE, SENDING, VERBOSE, LOG)
def extract(
    paths: ExtractPathsArg,
    schema: SchemaOpt = None,
    fields: FieldsOpt = None,
    out: OutOpt = None,
    fmt: FormatOpt = None,
    force: ForceOpt = False,
    *,
    flags: Flags,
    env: Env,
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
    from .. import extract as ex
    from ..errors import UsageError, quote_name
    from ..fsutil import write_problem

    # Everything that can be wrong with the request fails here, before any model work.
    field_set = ex.load_user_schema(schema) if schema is not None else ex.contract_fields()
    if fields is not None:
        field_set = field_set.subset([n.strip() for n in fields.split(",") if n.strip()])
    out_format = ex.pick_format(fmt, out, len(paths))
    if out is not None and (problem := write_problem(out)) is not None:
        raise UsageError(f"--out {quote_name(str(out))}: {problem}")
    if paths.count("-") > 1:
        raise UsageError("- (standard input) can be given only once")
    session = env.session(flags)
    logs.begin(env, flags, "extract", prompt=f"extract {field_set.name}: {', '.join(field_set.fields)}", paths=paths)
    sink = ex.open_sink(out_format, env.screen.writer(), out, force, field_set, len(paths))
    report = session.extract(paths, field_set, sink, stdin=env.stdin, password=flags.password)
    logs.record_extract(env, paths, report, list(field_set.fields))
    if len(paths) > 1 or report.skipped:
        env.note(
            f"{report.done} extracted, {report.skipped} skipped (already done), {len(report.failed)} failed"
            + (f": {', '.join(p for p, _ in report.failed)}" if report.failed else "")
        )
    if report.exit_code:
        raise typer.Exit(report.exit_code)
