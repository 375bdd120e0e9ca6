"""Many inputs, one output: skip what is done, report and skip what fails, keep going.

The model is opened on first need, so a rerun whose inputs are all done never loads weights.
Nothing here prints: every event goes to the ``notify`` callback as one complete line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..batch import AHEAD, BatchStatus
from ..engines.base import GenerationParams, PromptProgress
from ..engines.handle import ModelHandle
from ..errors import PER_INPUT_ERRORS, Dsv2Error
from ..packing import ContextCount
from ..parallel import closer, ordered_map
from ..sources.base import Document
from .output import Sink
from .run import ExtractionError, ExtractionResult, plan, run
from .schema import FieldSet

Notify = Callable[[str], None]


def default_max_tokens(field_count: int, window: int) -> int:
    """Output reserve when --max-tokens is not given: 96 tokens a field + 64, at most half the window.

    SmolLM2 wrote 1,456 tokens for the 23 contract fields (63 a field, many strings at their
    length limit); a field at its limits (160-character value, 240-character quote) is ~100.
    """
    return min(64 + 96 * field_count, window // 2)


# Called before a document is sent (remote: refuse secrets, say what is sent): (model, doc, tokens, requests)
Guard = Callable[[ModelHandle, Document, int, int], None]


@dataclass
class Extractor:
    """Plans and runs one document; opens the model through ``open_model`` the first time it is needed.

    With ``open_escalation`` (--escalate-to), a document whose first answer fails validation
    (unverified quotes, rejected values, or no usable JSON) is extracted again on that backend,
    and the result says which backend answered and why.
    """

    fields: FieldSet
    params: GenerationParams  # max_tokens 0: default_max_tokens for the window
    open_model: Callable[[], ModelHandle]
    notify: Notify
    open_escalation: Callable[[], ModelHandle] | None = None
    guard: Guard | None = None
    on_prompt: PromptProgress | None = None  # (prompt tokens evaluated, total) of each model call
    on_output: PromptProgress | None = None  # (output tokens written, reserved) of each model call
    # (model, [document]) -> packing.ContextCount through a token-count cache; None: plan counts itself
    count: Callable[[ModelHandle, Sequence[Document]], ContextCount] | None = None
    _models: dict[str, ModelHandle] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, which: str, opener: Callable[[], ModelHandle]) -> ModelHandle:
        with self._lock:  # batch threads share one model
            if which not in self._models:
                self._models[which] = opener()
            return self._models[which]

    def model(self) -> ModelHandle:
        return self._get("first", self.open_model)

    def abort(self) -> None:
        """Close the opened backends' connections: requests in flight end now (Ctrl-C, a failure)."""
        with self._lock:
            models = list(self._models.values())
        closer(*(m.backend for m in models if m.backend is not None))()

    def _run(self, doc: Document, m: ModelHandle) -> ExtractionResult:
        max_tokens = self.params.max_tokens or default_max_tokens(len(self.fields.fields), m.window)
        counted = self.count(m, [doc]) if self.count is not None else None
        the_plan = plan(doc, m.tokenizer(), m.facts, self.fields, m.window, max_tokens, counted)
        if the_plan.chunks:
            self.notify(
                f"{doc.source}: {the_plan.document_tokens} tokens, over the {the_plan.budget.document}-token budget "
                f"of one {m.window}-token window: extracting from {len(the_plan.chunks)} chunks and merging"
            )
        if self.guard is not None:
            self.guard(m, doc, sum(len(p.ids) for p in the_plan.prompts), len(the_plan.prompts))
        params = GenerationParams(max_tokens, self.params.temperature, self.params.seed)
        result = run(the_plan, doc, self.fields, m.runner(), params, on_prompt=self.on_prompt, on_output=self.on_output)
        result.cost_usd = m.cost(result.input_tokens, result.output_tokens)
        return result

    def __call__(self, doc: Document) -> ExtractionResult:
        first = self.model()
        reason: str | None = None
        try:
            result = self._run(doc, first)
        except ExtractionError as exc:
            if self.open_escalation is None:
                raise
            reason = f"first answer unusable ({exc})"
        else:
            if self.open_escalation is None:
                return result
            problems = len(result.unverified) + len(result.rejected)
            if not problems:
                result.answered_by = {"backend": first.profile, "escalated": False, "reason": "first answer verified"}
                return result
            reason = f"{len(result.unverified)} unverified quote(s), {len(result.rejected)} rejected value(s)"
        second = self._get("escalation", self.open_escalation)
        self.notify(f"{doc.source}: escalating to {second.profile}: {reason}")
        result = self._run(doc, second)
        result.answered_by = {"backend": second.profile, "escalated": True, "reason": reason}
        return result


@dataclass
class BatchReport:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, Dsv2Error]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every input is done; else the first failure's code (3 input, 4 model answer, 5 too big)."""
        return int(self.failed[0][1].exit_code) if self.failed else 0


def describe(result: ExtractionResult) -> list[str]:
    """Lines for stderr about one result: a summary, then every unverified or rejected field."""
    found = [n for n, e in result.fields.items() if e is not None]
    conflicts = [n for n, e in result.fields.items() if e is not None and e.get("conflicts")]
    lines = [
        f"{result.source}: {len(found)} of {len(result.fields)} fields found, "
        f"{len(found) - len(result.unverified)} with verified evidence"
        + (f", {len(conflicts)} with conflicting values ({', '.join(conflicts)})" if conflicts else "")
        + (f" ({result.chunks} chunks)" if result.chunks > 1 else "")
        + f" in {result.timings['extract_s']:.1f} s"
    ]
    for name in result.unverified:
        quote = str(result.fields[name].get("evidence", ""))
        shown = quote if len(quote) <= 80 else quote[:77] + "..."
        lines.append(
            f'warning: {result.source}: {name}: evidence not found in the document ({shown!r}): "verified": false'
        )
    lines.extend(f"warning: {result.source}: {r}; the value was dropped (null)" for r in result.rejected)
    return lines


def run_batch(
    paths: Sequence[str],
    load: Callable[[str], Document],
    extract: Callable[[Document], ExtractionResult],
    sink: Sink,
    schema_digest: str,
    notify: Notify,
    concurrency: int = 1,
    on_batch: Callable[[BatchStatus], None] | None = None,
) -> BatchReport:
    """Every input in order; with ``concurrency`` > 1 that many are read and extracted at once
    (a remote backend serves them in parallel), and results are still written in input order and
    then dropped (``parallel.ordered_map`` with ``keep=False``: memory does not grow with the number of
    inputs).
    ``on_batch``: where the batch stands (done, skipped, failed, cost so far) after each input."""
    report = BatchReport()
    status = BatchStatus(total=len(paths), task="extracting")
    for note in sink.notes:
        notify(note)

    def one(path: str) -> ExtractionResult | Dsv2Error | None:
        """One input's result, its per-input error, or None when it is already done."""
        try:
            doc = load(path)
            for redaction in doc.redactions:  # a directory's report lists them among its warnings
                if redaction.note() not in doc.warnings:
                    notify(redaction.note())
            for warning in doc.warnings:
                notify(f"warning: {warning}")
            if (doc.content_hash, schema_digest) in sink.done:
                notify(f"{doc.source}: skipped: already extracted with this schema (--force to redo)")
                return None
            return extract(doc)
        except PER_INPUT_ERRORS as exc:
            return exc
        except ExtractionError as exc:  # this input's answer could not be used: it is skipped too
            return exc

    def record(i: int, outcome: ExtractionResult | Dsv2Error | None) -> None:
        if isinstance(outcome, Dsv2Error):
            notify(f"error: {outcome}; skipped")
            report.failed.append((paths[i], outcome))
            status.failed += 1
        elif outcome is None:
            report.skipped += 1
            status.skipped += 1
        else:
            sink.write(outcome.to_record())
            for line in describe(outcome):
                notify(line)
            report.done += 1
            status.done += 1
            status.requests += outcome.chunks
            status.prompt_tokens += outcome.input_tokens
            status.output_tokens += outcome.output_tokens
            status.add_cost(outcome.cost_usd)
        if on_batch is not None:
            on_batch(status)

    abort = getattr(extract, "abort", None)
    ordered_map(
        one,
        paths,
        concurrency,
        record,
        on_abort=abort if callable(abort) else None,
        ahead=concurrency * AHEAD,
        keep=False,
    )
    sink.close()
    return report
