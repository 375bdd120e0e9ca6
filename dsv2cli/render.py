"""What a person sees: the result on stdout, notes and progress on stderr, never one over the other.

The only module outside ``cli/`` that imports rich (lazily). Core code reports progress through
plain callbacks ``(done, total)``; :class:`Screen` turns them into

* on a terminal (stderr is a tty, no ``NO_COLOR``): one live rich display with a bar per step
  (done/total, rate, time left). It is stopped and cleared **before the first character of output
  reaches a terminal stdout**: rich redraws its display with ``\\r\\x1b[2K`` (and cursor-up per
  line), which would erase the line a streamed answer is being written on when stdout and
  stderr are the same terminal. Once output has started, a live display is not drawn again,
  except between complete blocks (``summarize --each``), where it reappears below the last block
  and is cleared at the end.
* elsewhere (stderr redirected, ``NO_COLOR``): plain lines, no control sequences: one when a
  step that is expected to take more than a few seconds starts (what, how much, about how long)
  and one when it ends.

Notes (``dsv2: ...``) written while output is mid-line on a terminal first end that line, so a
warning after a streamed answer starts on a fresh line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

# A step is announced on a plain stderr when it is expected to take longer than this.
ANNOUNCE_AFTER_S = 3.0


def per_second(unit: str) -> str:
    return "tok/s" if unit == "tokens" else f"{unit}/s"


def counted(n: int, unit: str) -> str:
    """``1 chunk``, ``3 chunks``, ``1,204 tokens``: units are named in the plural."""
    return f"{n:,} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"


@dataclass(frozen=True)
class StepKind:
    """How a kind of step is described, counted and, before anything is measured, timed."""

    label: str  # "evaluating the prompt"
    unit: str  # "tokens"
    default_rate: float  # units per second assumed before the step itself has measured one
    # Whether the first report (done == start) already tells how long it will take: prompt evaluation
    # reports after its first slice, with a real rate, so waiting for it is better than guessing.
    wait_for_rate: bool = False


PROMPT = StepKind("evaluating prompt", "tokens", 400.0, wait_for_rate=True)
# all-MiniLM-L6-v2 q8_0 through llama.cpp embeds ~20-25 chunks/s on two threads.
INDEX = StepKind("indexing", "chunks", 20.0)
# One map-reduce call (a window of text and a partial summary) takes tens of seconds on a CPU.
STAGE = StepKind("map-reduce", "chunks", 0.1)
DOCUMENTS = StepKind("summarizing", "documents", 0.1)
# Output that is not streamed (extraction's JSON): tokens written so far, out of the reserved
# --max-tokens. A small CPU model writes ~10 tokens/s.
OUTPUT = StepKind("writing the answer", "tokens", 10.0)


# A batch on a plain stderr: a progress line at most this often (and one at the end).
BATCH_LINE_EVERY_S = 10.0


def batch_line(status: Any) -> str:
    """``batch: 120 of 1,000 documents (3 failed, 10 skipped), 34 requests, 2.1 documents/s, about
    7 min left, $0.0123 so far``."""
    total = status.total
    extra = [f"{n} {what}" for n, what in ((status.failed, "failed"), (status.skipped, "skipped")) if n]
    extra += [f"{status.rerun} re-run alone"] if status.rerun else []
    line = f"batch: {status.finished:,} of {total:,} documents" + (f" ({', '.join(extra)})" if extra else "")
    line += f", {status.requests:,} request(s)"
    sent = status.done + status.failed
    elapsed = status.elapsed_s
    if sent and elapsed > 0:
        line += f", {sent / elapsed:,.2f} documents/s"
    eta = status.eta_s
    if status.finished >= total:
        line += f", done in {duration(elapsed)}"
    elif eta is not None:
        line += f", about {duration(eta)} left"
    if status.cost_usd is not None:
        line += f", ${status.cost_usd:.4f} so far" if status.finished < total else f", ${status.cost_usd:.4f}"
    return line


def duration(seconds: float) -> str:
    """3.2 s, 48 s, 2 min 5 s, 1 h 3 min."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass
class _Step:
    kind: StepKind
    name: str
    total: int
    started: float
    start_done: int  # units already done when the step started (a reused prompt prefix)
    done: int = 0
    announced: bool = False
    ended: bool = False
    task: Any = None  # the rich TaskID on a live display


@dataclass
class Screen:
    """The two output streams of one command run, and what is drawn on them."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=dict)
    _mid_line: bool = False  # output written to a terminal stdout, not yet ended by a newline
    _progress: Progress | None = None
    _live: bool = False  # _progress is drawn right now
    _resumable: bool = False  # may the live display come back after output (complete blocks only)?
    _steps: dict[str, _Step] = field(default_factory=dict)
    _batch_line_at: float = field(default_factory=time.perf_counter)  # the last plain batch line (or the start)

    # --- what the streams are ------------------------------------------------------------------

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_isatty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def animate(self) -> bool:
        """Live displays only on a terminal, and never with NO_COLOR."""
        return self.stderr_isatty and "NO_COLOR" not in self.environ

    def console(self) -> Console:
        from rich.console import Console

        return Console(
            file=self.stderr,
            no_color="NO_COLOR" in self.environ or not self.stderr_isatty,
            highlight=False,
            soft_wrap=True,
        )

    # --- output (stdout) ---------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Result text. On a terminal the live display goes first, so it can never draw over it."""
        if not text:
            return
        if self.stdout_isatty:
            self._pause()
        self.stdout.write(text)
        self.stdout.flush()
        self._mid_line = self.stdout_isatty and not text.endswith("\n")

    def finish_stream(self) -> None:
        """After a streamed answer: its last line ends (on a terminal only if it is still open, as a
        note may already have ended it; elsewhere always, so a pipe gets the same bytes)."""
        if self.stdout_isatty:
            self.end_line()
        else:
            self.write("\n")

    def end_line(self) -> None:
        """End the output's last line if it is open (after a streamed answer)."""
        if self._mid_line:
            self.write("\n")

    def block(self, text: str) -> None:
        """A complete piece of output (one of several results): a live display may return below it."""
        self.write(text)
        if self._resumable and self._progress is not None and not self._live and not self._mid_line:
            self._progress.start()
            self._live = True

    # --- notes (stderr) -------------------------------------------------------------------------

    def note(self, message: str) -> None:
        line = f"dsv2: {message}"
        if self._live and self._progress is not None:
            # printed above the live display, which is redrawn below it
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        if self._mid_line and self.stderr_isatty:
            self.end_line()  # a warning after a streamed answer starts on its own line
        print(line, file=self.stderr, flush=True)

    # --- progress -------------------------------------------------------------------------------

    @contextmanager
    def scope(self, *, resumable: bool = False) -> Iterator[Progress | None]:
        """Scope of one live display (or of plain step lines); cleared when the scope ends."""
        self._resumable = resumable
        # A display begins on a fresh line: it then only ever erases the lines it drew itself.
        if not self.animate or self._mid_line:
            try:
                yield None
            finally:
                self._finish_steps()
            return
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} {task.fields[unit]}"),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console(),
            transient=True,
            redirect_stdout=False,  # our output goes to the real stdout, after the display is stopped
            redirect_stderr=False,
        )
        self._progress.start()
        self._live = True
        try:
            yield self._progress
        finally:
            self._pause()
            self._progress = None
            self._resumable = False
            self._steps.clear()  # drawn steps end with their display

    def _pause(self) -> None:
        if self._live and self._progress is not None:
            self._progress.stop()  # transient: the bars are erased, the cursor is where they began
            self._live = False

    def report(self, kind: StepKind, name: str, done: int, total: int) -> None:
        """A step's progress: ``done`` of ``total`` units. The first report starts the step."""
        now = time.perf_counter()
        step = self._steps.get(name)
        if step is None or step.ended or (done < step.start_done):
            step = self._steps[name] = _Step(kind, name, total, now, start_done=done)
        step.total, step.done = total, done
        if self._progress is not None:
            self._draw(step, done, now)
        elif not self.animate:
            self._plain(step, done, now)
        if done >= total:
            step.ended = True

    def _rate(self, step: _Step, done: int, now: float) -> float | None:
        elapsed = now - step.started
        measured = done - step.start_done
        return measured / elapsed if measured > 0 and elapsed > 0 else None

    def _draw(self, step: _Step, done: int, now: float) -> None:
        assert self._progress is not None
        rate = self._rate(step, done, now)
        shown = "" if rate is None else f"{rate:,.{1 if rate < 10 else 0}f} {per_second(step.kind.unit)}"
        if step.task is None:
            step.task = self._progress.add_task(step.name, total=max(step.total, 1), unit=step.kind.unit, rate="")
        self._progress.update(step.task, completed=done, total=max(step.total, 1), rate=shown)
        if done >= step.total:
            self._progress.update(step.task, visible=False)

    def _plain(self, step: _Step, done: int, now: float) -> None:
        left = step.total - done
        if not step.announced and left > 0:
            rate = self._rate(step, done, now)
            if rate is None and step.kind.wait_for_rate:
                return  # the next report brings a measured rate
            expected = left / (rate or step.kind.default_rate)
            if expected > ANNOUNCE_AFTER_S:
                how = "" if rate is not None else " (estimated)"
                print(
                    f"dsv2: {step.name}: {counted(step.total, step.kind.unit)}"
                    + (f", {done - step.start_done:,} done" if done > step.start_done else "")
                    + f", about {duration(expected)}{how}",
                    file=self.stderr,
                    flush=True,
                )
                step.announced = True
        if done >= step.total and step.announced:
            self._plain_end(step, done, now)

    def _plain_end(self, step: _Step, done: int, now: float) -> None:
        elapsed = now - step.started
        count = done - step.start_done
        rate = count / elapsed if elapsed > 0 else 0.0
        print(
            f"dsv2: {step.name}: done, {counted(count, step.kind.unit)} in {duration(elapsed)} "
            f"({rate:,.1f} {per_second(step.kind.unit)})",
            file=self.stderr,
            flush=True,
        )
        step.ended = True

    def _finish_steps(self) -> None:
        """Steps that stop short of their total (output ends before --max-tokens) end with the scope."""
        now = time.perf_counter()
        for step in self._steps.values():
            if step.announced and not step.ended:
                self._plain_end(step, step.done, now)
        self._steps.clear()

    def writer(self) -> _Writer:
        """A file-like stdout for code that writes results itself (extraction's sinks): each write
        is a complete block, drawn as :meth:`block` draws it."""
        return _Writer(self)

    def on_output(self, done: int, total: int) -> None:
        self.report(OUTPUT, OUTPUT.label, done, total)

    # --- callbacks for core code -----------------------------------------------------------------

    def on_prompt(self, done: int, total: int) -> None:
        self.report(PROMPT, PROMPT.label, done, total)

    def on_index(self, done: int, total: int) -> None:
        self.report(INDEX, "indexing (embedding chunks)", done, total)

    def on_batch(self, status: Any) -> None:
        """A batch (``summarize --each``; a ``batch.BatchStatus``): the documents' bar with the cost so
        far on a terminal; elsewhere a line every ``BATCH_LINE_EVERY_S`` and one at the end."""
        total = status.total
        if total <= 1:  # one input: its own lines say it all
            return
        if self._progress is not None:
            name = f"{status.task} documents"
            self.report(DOCUMENTS, name, status.finished, total)
            step = self._steps.get(name)
            if step is not None and step.task is not None and status.cost_usd is not None:
                self._progress.update(step.task, description=f"{name}, ${status.cost_usd:.4f} so far")
            return
        if self.animate:
            return
        now = time.perf_counter()
        ending = status.finished >= total
        if not status.finished or (not ending and now - self._batch_line_at < BATCH_LINE_EVERY_S):
            return
        self._batch_line_at = now
        print(f"dsv2: {batch_line(status)}", file=self.stderr, flush=True)

    def on_stage(self, stage: str, done: int, total: int) -> None:
        if stage == "documents":
            self.report(DOCUMENTS, "summarizing documents", done, total)
        else:
            self.report(STAGE, f"map-reduce: {stage}", done, total)


class _Writer:
    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    def write(self, text: str) -> int:
        self.screen.block(text)
        return len(text)

    def flush(self) -> None:
        self.screen.stdout.flush()

    def isatty(self) -> bool:
        return self.screen.stdout_isatty


# --- JSON payloads: one builder per result type (the keys and their order are contracts) -----------


def summary_payload(run: Any, total_s: float) -> dict[str, Any]:
    """``summarize --json``."""
    result, handle = run.result, run.handle
    return {
        "summary": result.summary,
        "model": result.model,
        "model_path": handle.model_path,
        "backend": handle.describe(),
        "answered_by": run.answered_by,
        "strategy": result.strategy,
        "input_tokens": result.input_tokens,
        "document_tokens": result.document_tokens,
        "output_tokens": result.output_tokens,
        "window": result.window,
        "budget": result.budget,
        "finish_reason": result.finish_reason,
        "calls": result.calls,
        "chunks": result.chunks,
        "usage_estimated": bool(result.usage_estimated),
        "cost_usd": handle.cost(result.input_tokens, result.output_tokens, result.cache_hit_tokens),
        "timings": {**result.timings, "total_s": round(total_s, 4)},
        "cache_hit_tokens": result.cache_hit_tokens,
        "attempts": result.attempts,
    }


def summary_record(run: Any) -> dict[str, Any]:
    """``summarize --each --json``: one line per document."""
    result, handle = run.result, run.handle
    return {
        "source": run.docs[0].source,
        "summary": result.summary,
        "model": result.model,
        "backend": handle.describe(),
        "answered_by": run.answered_by,
        "strategy": result.strategy,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "calls": result.calls,
        "finish_reason": result.finish_reason,
        "usage_estimated": result.usage_estimated,
        "cost_usd": handle.cost(result.input_tokens, result.output_tokens, result.cache_hit_tokens),
        "cache_hit_tokens": result.cache_hit_tokens,
        "attempts": result.attempts,
    }


def summary_plan_payload(run: Any) -> dict[str, Any]:
    """``summarize --dry-run --json``: what would be sent, chunk by chunk."""
    the_plan, handle = run.plan, run.handle
    prompt_tokens, calls = the_plan.sent_estimate()
    return {
        "backend": handle.describe(),
        "answered_by": run.answered_by,
        "estimated_requests": calls,
        "estimated_cost_usd": handle.cost(prompt_tokens, calls * the_plan.budget.output),
        "strategy": the_plan.strategy,
        "window": the_plan.budget.window,
        "budget": the_plan.budget.document,
        "reserved_output": the_plan.budget.output,
        "context_tokens": the_plan.document_tokens,
        "prompt_tokens": len(the_plan.prompt.ids) if the_plan.prompt else None,
        "chunks": len(the_plan.chunks) if the_plan.chunks else None,
        "sources": the_plan.sources(run.docs),
        # document text that imitated prompt structure (a "User:" line, "[PAD100015]"), made inert
        "neutralised": [n.to_dict() for doc in run.docs for n in doc.neutralised],
        "system": _system(the_plan.prompt),
    }


def _system(prompt: Any) -> str | None:
    """The system message a prompt carries (what -s/--system added shows here)."""
    from .chat import system_of

    return system_of(prompt)


def turn_plan_payload(the_plan: Any, handle: Any, conversation_id: str | None) -> dict[str, Any]:
    """``prompt --dry-run --json`` / ``chat``: what one turn would send."""
    return {
        "question": the_plan.question,
        "conversation_id": conversation_id,
        "backend": handle.describe(),
        "strategy": the_plan.strategy,
        "retrieval": the_plan.retrieval,
        "window": the_plan.window,
        "reserved_output": the_plan.max_tokens,
        "context_tokens": the_plan.context_tokens,
        "history_tokens": the_plan.history_tokens,
        "prompt_tokens": len(the_plan.prompt.ids),
        "system": the_plan.system,
        "prompt": the_plan.prompt.text,
        "sources": the_plan.sources,
        "estimated_cost_usd": handle.cost(len(the_plan.prompt.ids), the_plan.max_tokens),
    }


def turn_payload(result: Any, handle: Any, conversation_id: str | None, total_s: float) -> dict[str, Any]:
    """``prompt --json``, ``ask -c --json``: one answered turn."""
    the_plan, usage = result.plan, result.usage
    return {
        "answer": result.answer,
        "question": the_plan.question,
        "conversation_id": conversation_id,
        "model": handle.name,
        "model_path": handle.model_path,
        "backend": handle.describe(),
        "strategy": the_plan.strategy,
        "retrieval": the_plan.retrieval,
        "window": the_plan.window,
        "context_tokens": the_plan.context_tokens,
        "history_tokens": the_plan.history_tokens,
        "input_tokens": usage.prompt_tokens,
        "evaluated_tokens": result.evaluated,
        "prefix_reused_tokens": result.reused,
        "output_tokens": usage.output_tokens,
        "folded_turns": result.folded,
        "stopped": result.stopped,
        "finish_reason": usage.finish_reason,
        "system": the_plan.system,
        "sources": the_plan.sources,
        "citations": result.citations.to_dict() if result.citations is not None else None,
        "cost_usd": handle.cost(usage.prompt_tokens, usage.output_tokens),
        "timings": {
            "load_s": round(handle.load_s, 4),
            "prompt_eval_s": round(usage.prompt_eval_s, 4),
            "generation_s": round(usage.generation_s, 4),
            "total_s": round(total_s, 4),
        },
    }


def _answer_plan(answer: Any) -> dict[str, Any]:
    the_plan = answer.plan
    return {
        "backend": answer.handle.describe(),
        "answered_by": answer.answered_by,
        "strategy": the_plan.strategy,
        "retrieval": the_plan.retrieval,
        "window": the_plan.budget.window,
        "budget": the_plan.budget.document,
        "reserved_output": the_plan.budget.output,
        "context_tokens": the_plan.context_tokens,
        "prompt_tokens": len(the_plan.prompt.ids),
        "sources": the_plan.sources,
        "system": _system(the_plan.prompt),
    }


def answer_plan_payload(answer: Any, max_tokens: int) -> dict[str, Any]:
    """``ask --dry-run --json``: one line per question."""
    cost = answer.handle.cost(len(answer.plan.prompt.ids), max_tokens)
    return {"question": answer.question, **_answer_plan(answer), "estimated_cost_usd": cost}


def answer_payload(answer: Any, total_s: float) -> dict[str, Any]:
    """``ask --json``: one line per question."""
    usage, handle = answer.usage, answer.handle
    return {
        "answer": answer.answer,
        "question": answer.question,
        "model": handle.name,
        "model_path": handle.model_path,
        **_answer_plan(answer),
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.output_tokens,
        "usage_estimated": bool(usage.extra.get("usage_estimated")),
        "cost_usd": handle.cost(usage.prompt_tokens, usage.output_tokens, int(usage.extra.get("cache_hit_tokens", 0))),
        "finish_reason": usage.finish_reason,
        "prefix_reused_tokens": int(usage.extra.get("prefix_reused_tokens", 0)),
        "prefix_cache": answer.cache_outcome,
        "cache_hit_tokens": int(usage.extra.get("cache_hit_tokens", 0)),
        "attempts": int(usage.extra.get("attempts", 0)),
        "timings": {
            "load_s": round(handle.load_s, 4),
            "plan_s": round(answer.plan_s, 4),
            "prompt_eval_s": round(usage.prompt_eval_s, 4),
            "generation_s": round(usage.generation_s, 4),
            "total_s": round(total_s, 4),
        },
        "citations": answer.citations.to_dict() if answer.citations is not None else None,
    }


# --- the Sources block after an answer (text mode) ---------------------------------------------------

# Files listed under "Sent but not cited" before the rest are counted instead (--json lists them all).
UNCITED_FILES_SHOWN = 20


def _spans(numbers: list[tuple[int, int]]) -> str:
    """``[(1, 1), (2, 3), (5, 5)]`` -> ``1-3, 5``: touching or overlapping ranges merged."""
    merged: list[list[int]] = []
    for low, high in sorted(numbers):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in merged)


def _where(entry: dict[str, Any]) -> str:
    """``report.pdf, p. 4, § 8.2`` / ``src/app.py, lines 12-20``: a used marker's place, in words."""
    parts = [str(entry["path"] or "?")]
    page, page_end = entry.get("page"), entry.get("page_end")
    if page is not None:
        parts.append(f"p. {page}" if page_end in (None, page) else f"pp. {page}-{page_end}")
    elif entry.get("line_start") is not None:
        start, end = entry["line_start"], entry.get("line_end") or entry["line_start"]
        parts.append(f"line {start}" if start == end else f"lines {start}-{end}")
    if entry.get("section"):
        parts.append(f"§ {entry['section']}")
    where = ", ".join(parts)
    if entry.get("section_mismatch"):  # the page matched; the section the answer named is not on it
        where += f" (not in the section the answer names: {entry['marker']})"
    return where


def sources_block(check: Any, title: str = "Sources") -> str:
    """What an ``ask`` answer cited and what it was given, for a reader to check (``citations.CitationCheck``).

    Each marker the answer used, with path, page or lines, and section; markers that match nothing
    that was sent, and why; the quotes checked; then the passages sent but not cited, per file.
    """
    data = check.to_dict()
    out = ["", f"{title}:"]
    if not data["used"] and not data["unknown"]:
        n = data["passages_sent"]
        out.append(f"  the answer cites none of the {n} passage{'s' if n != 1 else ''} sent")
    for entry in data["used"]:
        out.append(f"  {entry['marker']}  {_where(entry)}")
    for entry in data["unknown"]:
        out.append(f"  {entry['marker']}  NOT SENT: {entry['reason']}")
    if data["quotes"]:
        out.append("Quotes:")
        for quote in data["quotes"]:
            verdict = "found in the cited passage"
            if not quote["verified"]:
                verdict = "NOT FOUND in the cited passage"
                if quote["found_in"]:
                    verdict += f" (it is in {quote['found_in']})"
            out.append(f'  "{quote["quote"]}" {quote["marker"]}: {verdict}')
    if data["uncited"]:
        out.append("Sent but not cited:")
        files: dict[str, dict[str, list[tuple[int, int]]]] = {}
        for p in data["uncited"]:
            spans = files.setdefault(p["path"], {"pages": [], "lines": []})
            if p["page"] is not None:
                spans["pages"].append((p["page"], p["page"]))
            elif p["line_start"] is not None:
                spans["lines"].append((p["line_start"], p["line_end"] or p["line_start"]))
        for path, spans in list(files.items())[:UNCITED_FILES_SHOWN]:
            where = []
            if spans["pages"]:
                where.append(("p. " if len(spans["pages"]) == 1 else "pp. ") + _spans(spans["pages"]))
            if spans["lines"]:
                where.append("lines " + _spans(spans["lines"]))
            out.append(f"  {path}" + (f": {'; '.join(where)}" if where else ""))
        if len(files) > UNCITED_FILES_SHOWN:
            more = len(files) - UNCITED_FILES_SHOWN
            out.append(f"  ... and {more} more file{'s' if more > 1 else ''} (--json lists every passage)")
    return "\n".join(out) + "\n"


def json_line(payload: Any) -> str:
    import json

    return json.dumps(payload, ensure_ascii=False) + "\n"
