"""The public Python API: everything the ``dsv2`` command does, as calls that return typed results.

    from dsv2cli.api import Session

    with Session(model="~/models/DeepSeek-V2-Lite-Chat.Q4_K_M.gguf", ctx=16384) as dsv2:
        docs = dsv2.load(["annual-report.pdf"])
        print(dsv2.summarize(docs).summary)
        print(dsv2.ask("What was the operating margin?", docs).answer)

A :class:`Session` resolves the settings once (flag-like keyword arguments > ``DSV2_*`` > config
file > defaults), opens the model on first use and serves any number of calls. Nothing here
prints or exits: notes go to ``notify``, questions to ``confirm``, progress to a
:class:`Progress` (the CLI's terminal display implements it), streamed text to ``on_text``;
errors are :mod:`dsv2cli.errors` exceptions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from .engines.base import GenerationParams, Usage
from .engines.handle import (
    ModelHandle,
    Notify,
    Routing,
    SendPolicy,
    guard_outgoing,
    open_model,
    refuse_secrets_early,
)
from .errors import UsageError
from .settings import Settings, resolve
from .sources.base import Document

if TYPE_CHECKING:
    from .chat_session import Resumed
    from .memory import ContextChoice

__all__ = [
    "Answer",
    "ChatRun",
    "PlanReport",
    "Progress",
    "SendPolicy",
    "Session",
    "Settings",
    "SummaryRun",
]


class Progress(Protocol):
    """Where progress goes: (done, total) per step, inside scopes that a display may draw."""

    def scope(self, *, resumable: bool = False) -> AbstractContextManager[object]: ...

    def on_prompt(self, done: int, total: int) -> None: ...

    def on_stage(self, stage: str, done: int, total: int) -> None: ...

    def on_index(self, done: int, total: int) -> None: ...

    def on_output(self, done: int, total: int) -> None: ...

    def on_batch(self, status: Any) -> None:
        """Where a batch (``summarize_each``) stands: a ``batch.BatchStatus`` after each document."""
        ...


def _quiet(_message: str) -> None:
    pass


@dataclass
class SummaryRun:
    """One ``summarize``: the plan and, unless it was a dry run, the result."""

    plan: Any  # summarize.Plan
    docs: list[Document]
    handle: ModelHandle
    answered_by: dict[str, Any]
    result: Any = None  # summarize.SummaryResult; None on a dry run


@dataclass
class Answer:
    """One question of ``ask``: what was sent (the plan) and, unless a dry run, the answer."""

    question: str
    plan: Any  # ask.AskPlan
    handle: ModelHandle
    answered_by: dict[str, Any]
    plan_s: float
    answer: str | None = None  # None on a dry run
    usage: Usage = field(default_factory=Usage)
    cache_outcome: str | None = None  # "hit", "memory", "miss", "off", "short"
    # The answer's citations checked against the passages sent (citations.CitationCheck): which
    # markers match a passage, which match nothing (``.unknown``), quotes found or not; None on a dry run.
    citations: Any = None


@dataclass
class PlanReport:
    """``plan``: ``payload`` is the --json object; the rest is what a text rendering needs."""

    payload: dict[str, Any]
    handle: ModelHandle
    max_tokens: int
    chunks: int  # windows the input needs (1: it fits)
    eval_tokens: int  # prompt tokens over every request
    requests: int
    sizes: list[Any]  # planning.Sized per segment
    top: int
    index: Any  # planning.IndexEstimate, when ask would retrieve
    threads: list[Any]  # planning.ThreadSpeed rows compared
    threads_used: int
    threads_given: bool  # --threads (else the default rule)
    local: bool  # a local model (speeds and threads apply)
    rate: float | None  # prompt tokens/s
    output_rate: float | None  # output tokens/s
    generation_s: float | None
    measured_now: bool  # prompt and generation speed measured by this call
    threads_measured_now: bool


@dataclass
class Session:
    """A model opened once (on first use) for many calls. Keyword arguments are settings, as flags."""

    settings: Settings
    environ: Mapping[str, str]
    notify: Notify = _quiet
    progress: Progress | None = None
    send: SendPolicy = field(default_factory=SendPolicy)
    verbose: bool = False
    no_cache: bool = False
    _routing: Routing | None = None

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        notify: Notify | None = None,
        progress: Progress | None = None,
        send: SendPolicy | None = None,
        verbose: bool = False,
        no_cache: bool = False,
        **flags: Any,
    ) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.settings = settings if settings is not None else resolve(flags, self.environ)
        if settings is not None and flags:
            raise UsageError("give either settings or setting keywords, not both")
        self.notify = notify or _quiet
        self.progress = progress
        self.send = send or SendPolicy()
        self.verbose = verbose
        self.no_cache = no_cache
        self._routing = None

    # --- the model ----------------------------------------------------------------------------

    @property
    def routing(self) -> Routing:
        """The first backend (opened now, weights still on disk) and, with escalate_to, the second."""
        if self._routing is None:
            first = open_model(self.settings, self.environ, self.notify, verbose=self.verbose, no_cache=self.no_cache)
            self._routing = Routing(self.settings, first, self.environ, self.notify, self.verbose)
        return self._routing

    @property
    def model(self) -> ModelHandle:
        return self.routing.first

    def notices(self) -> list[str]:
        """What the opened backends have to say since last asked."""
        if self._routing is None:
            return []
        return [line for handle in self._routing.handles() for line in handle.notices()]

    def close(self) -> None:
        if self._routing is not None:
            for handle in self._routing.handles():
                handle.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _scope(self, *, resumable: bool = False) -> AbstractContextManager[object]:
        """Around a call that runs a model or reads an index: the progress display."""
        stack = ExitStack()
        if self.progress is not None:
            stack.enter_context(self.progress.scope(resumable=resumable))
        return stack

    def _vectors(self) -> Any:
        """Where new indexes keep their vectors: the index server of ``index_url``
        (``index.server.ChromaServer``), or None for the embedded store under DSV2_HOME."""
        from .index.server import server_from

        return server_from(self.settings.index_url, self.environ)

    def _params(self) -> GenerationParams:
        return GenerationParams(self.settings.max_tokens, self.settings.temperature, self.settings.seed)

    # --- inputs ------------------------------------------------------------------------------

    def load(
        self,
        paths: Sequence[str | Path],
        *,
        repo: str | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        password: str | None = None,
        stdin: BinaryIO | None = None,
    ) -> list[Document]:
        """Read every input (files, directories, ``-`` for ``stdin``); what was skipped, redacted or
        warned about goes to ``notify``."""
        from . import sources

        docs, notes = sources.load_inputs(
            [str(p) for p in paths],
            stdin,
            repo=repo,
            include=include,
            exclude=exclude,
            password=password,
            limits=sources.InputLimits(*self.settings.input_limits),
            pdf_cache=self._pdf_cache(),
        )
        for line in notes:
            self.notify(line)
        return docs

    def _pdf_cache(self) -> Path:
        """Where text extracted from PDFs is kept by content (sources/pdfcache.py)."""
        return self.settings.home / "cache" / "pdf-text"

    def pdf_text_cache(self) -> Any:
        """The cache of text extracted from PDFs (sources.pdfcache.PdfTextCache): status(), clear()."""
        from .sources.pdf import READER_VERSION
        from .sources.pdfcache import PdfTextCache

        return PdfTextCache(self._pdf_cache(), READER_VERSION)

    def _count(self, handle: ModelHandle, docs: Sequence[Document]) -> Any:
        """``packing.ContextCount`` of ``docs`` as ``handle`` counts them, through the persistent
        token-count cache: the planners choose a strategy from it, so a document seen before is
        not tokenized again, and one seen now is tokenized once, segment by segment."""
        from .engines.handle import count_cache
        from .packing import count_context

        counter, _ = count_cache(self.settings, handle)
        try:
            return count_context(docs, counter.count_joined)
        finally:
            counter.close()
            for notice in counter.notices:  # a damaged or unwritable token-count cache
                self.notify(notice)

    def _sendable(self, doc: Document) -> Document:
        """``doc``, or RefusedError when it held secrets and a remote backend would get it."""
        refuse_secrets_early(self.settings, self.environ, [doc], self.send)
        return doc

    # --- summarize ---------------------------------------------------------------------------

    def summarize(
        self,
        docs: Sequence[Document],
        *,
        prompt_file: Path | None = None,
        strategy: str | None = None,
        dry_run: bool = False,
        on_text: Callable[[str], None] | None = None,
        system: str | None = None,
        template: str | None = None,
    ) -> SummaryRun:
        """One summary of ``docs`` in the configured style (or with the template in ``prompt_file``,
        or the text ``template``, which holds ``{{ document }}``): the whole input in one pass when
        it fits, else map-reduce. ``system`` is added to the built-in system prompt."""
        from . import summarize as summ
        from .remote import classify_input

        spec = self._spec(prompt_file, system, template)
        started = time.perf_counter()
        if not dry_run:  # before the backend opens: a remote one may connect to ask for its window
            refuse_secrets_early(self.settings, self.environ, docs, self.send)
        routing = self.routing

        def plan_on(handle: ModelHandle) -> Any:
            tok = handle.tokenizer(dry_run)
            s = self.settings
            counted = self._count(handle, docs)
            return summ.plan(docs, tok, handle.facts, spec, handle.window, s.max_tokens, strategy, s.parallel, counted)

        the_plan = plan_on(routing.first)
        handle, answered_by = routing.choose(
            classify_input(the_plan.document_tokens, the_plan.budget.document), "input fits one window"
        )
        if handle is not routing.first:
            the_plan = plan_on(handle)
        tokenize_s = time.perf_counter() - started
        run = SummaryRun(the_plan, list(docs), handle, answered_by)
        if dry_run:
            return run
        if the_plan.strategy != "whole":
            self.notify(
                f"input is {the_plan.document_tokens} tokens, over the {the_plan.budget.document}-token budget "
                f"of one {handle.window}-token window: map-reduce over {len(the_plan.chunks)} chunks"
            )
        tokens, calls = the_plan.sent_estimate()
        guard_outgoing(handle, docs, tokens, calls, self.send, self.notify)
        progress = self.progress
        with self._scope():
            result = summ.run(
                the_plan,
                docs,
                handle.runner(),
                self._params(),
                on_text=on_text,
                on_prompt_progress=progress.on_prompt if progress else None,
                on_stage=progress.on_stage if progress else None,
            )
        for notice in handle.notices():
            self.notify(notice)
        result.timings = {"load_s": round(handle.load_s, 4), "tokenize_s": round(tokenize_s, 4), **result.timings}
        run.result = result
        return run

    def summarize_each(
        self,
        docs: Sequence[Document],
        on_result: Callable[[int, SummaryRun | Exception], None],
        *,
        prompt_file: Path | None = None,
        strategy: str | None = None,
        dry_run: bool = False,
        out: Path | None = None,
        force: bool = False,
        pack: bool = False,
        record: Callable[[SummaryRun], dict[str, Any]] | None = None,
    ) -> Any:
        """A summary per document, ``settings.parallel`` requests at once; ``on_result(i, run or
        error)`` in input order as each is ready (see :mod:`dsv2cli.batch`). A document that fails
        is reported and skipped. Returns the final ``batch.BatchStatus``.

        ``out``: a folder of summaries (``record(run)`` is what ``summaries.jsonl`` gets): documents
        already there with the same settings are skipped (``force``: start it afresh).
        ``pack``: consecutive short documents share a request; a document the answer misses is
        summarized again on its own.
        """
        import threading

        from . import batch
        from . import summarize as summ
        from .errors import PER_INPUT_ERRORS, Dsv2Error
        from .parallel import ordered_map
        from .remote import classify_input
        from .strategies import WHOLE

        spec = self._spec(prompt_file)
        if not dry_run:  # before the backend opens: a remote one may connect to ask for its window
            refuse_secrets_early(self.settings, self.environ, docs, self.send)
        routing = self.routing
        settings = self.settings
        if pack and prompt_file is not None:
            raise UsageError("--pack asks for summaries in the --style given; it cannot use --prompt-file")

        def plan_on(handle: ModelHandle, doc: Document) -> Any:
            # Documents run settings.parallel at once; each one's map-reduce calls run one at a time.
            tok = handle.tokenizer(dry_run)
            counted = self._count(handle, [doc])
            return summ.plan([doc], tok, handle.facts, spec, handle.window, settings.max_tokens, strategy, 1, counted)

        def route(doc: Document) -> tuple[Any, ModelHandle, dict[str, Any]]:
            the_plan = plan_on(routing.first, doc)
            reason = classify_input(the_plan.document_tokens, the_plan.budget.document)
            handle, answered_by = routing.choose(f"{doc.source}: {reason}" if reason else None, "input fits one window")
            if handle is not routing.first:
                the_plan = plan_on(handle, doc)
            return the_plan, handle, answered_by

        status = batch.BatchStatus(total=len(docs))
        if dry_run:
            for i, doc in enumerate(docs):
                the_plan, handle, answered_by = route(doc)
                on_result(i, SummaryRun(the_plan, [doc], handle, answered_by))
            return status
        first = routing.first
        key = batch.settings_key(spec.system, spec.template, first.name, settings.max_tokens, settings.temperature)
        folder = batch.OutDir(out, key, force=force) if out is not None else None
        for note in folder.notes if folder is not None else []:
            self.notify(note)
        pending = [i for i, doc in enumerate(docs) if folder is None or not folder.has(doc)]
        status.skipped = len(docs) - len(pending)
        if status.skipped:
            self.notify(f"{status.skipped} of {len(docs)} document(s) already summarized in {out}: skipped")
        # One pass over what will be sent: where each document goes, what it costs, what may be packed.
        # Only numbers are kept; each document is planned again when its turn comes.
        routed: dict[int, tuple[ModelHandle, dict[str, Any]]] = {}
        sizes: list[int | None] = []
        sent_alone: dict[int, tuple[int, int]] = {}  # (prompt tokens, requests) of each document sent alone
        for i in pending:
            the_plan, handle, answered_by = route(docs[i])
            routed[i] = (handle, answered_by)
            sent_alone[i] = the_plan.sent_estimate()
            packable = handle is first and the_plan.strategy == WHOLE and docs[i].kind != "repo"
            sizes.append(the_plan.document_tokens + 8 if packable else None)  # 8: its number and tags
        per_document = min(settings.max_tokens, batch.PACK_OUTPUT_PER_DOCUMENT)
        units: list[list[int]] = [[i] for i in pending]
        if pack and pending:
            tok = first.tokenizer()
            room = first.window - len(batch.packed_prompt(tok, first.facts, spec.system, settings.style, []).ids)
            groups = batch.pack_groups(sizes, room, per_document, batch.PACK_MAX_DOCUMENTS)
            units = [[pending[k] for k in group] for group in groups]
            packed = sum(1 for u in units if len(u) > 1)
            self.notify(
                f"packing: {len(pending)} document(s) in {len(units)} request(s) "
                f"({packed} packed, at most {batch.PACK_MAX_DOCUMENTS} documents and {per_document} output "
                "tokens each)"
            )
            size_of = dict(zip(pending, sizes, strict=True))
            for unit in units:
                if len(unit) > 1:  # one request: the packed prompt's own tokens and its documents'
                    together = (first.window - room) + sum(size_of[i] or 0 for i in unit)
                    sent_alone[unit[0]] = (together, 1)
                    sent_alone.update({i: (0, 0) for i in unit[1:]})
        # Before anything is sent: secrets refused, what goes where said, and asked (off this machine).
        for handle in {id(h): h for h, _ in routed.values()}.values():
            mine = [i for i in pending if routed[i][0] is handle]
            tokens = sum(sent_alone[i][0] for i in mine)
            calls = sum(sent_alone[i][1] for i in mine)
            guard_outgoing(handle, [docs[i] for i in mine], tokens, calls, self.send, self.notify)
        params = self._params()
        lock = threading.Lock()

        def one(i: int) -> batch.Sent:
            """One document on its own: its run (or its error), and what was sent for it."""
            doc = docs[i]
            handle, answered_by = routed[i]
            try:
                with lock:  # planning opens the escalation backend on first need: once
                    the_plan = plan_on(handle, doc)
                result = summ.run(the_plan, [doc], handle.runner(), params)
            except PER_INPUT_ERRORS as exc:  # a server or model failure stops the batch instead
                return batch.Sent([(i, exc)])
            run = SummaryRun(the_plan, [doc], handle, answered_by, result)
            usd = handle.cost(result.input_tokens, result.output_tokens, result.cache_hit_tokens)
            return batch.Sent([(i, run)], result.calls, usd, result.input_tokens, result.output_tokens)

        # Packing stops when the model does not answer in the packed form: after PACK_TRIAL packed
        # requests of which none gave most of its documents a summary, the rest go one by one.
        packing = {"tried": 0, "good": 0, "on": True}

        def unit_of(indexes: list[int]) -> batch.Sent:
            with lock:
                alone = len(indexes) == 1 or not packing["on"]
            if alone:
                sent = batch.Sent([])
                for i in indexes:
                    sent.add(one(i))
                return sent
            got = batch.run_pack(
                [docs[i] for i in indexes],
                first.runner(),
                first.tokenizer(),
                first.facts,
                spec.system,
                settings.style,
                first.window,
                per_document,
                params,
            )
            answered = routed[indexes[0]][1]
            usage = got.usage
            sent = batch.Sent(
                [
                    (indexes[k], SummaryRun(None, [docs[indexes[k]]], first, answered, r))
                    for k, r in got.results.items()
                ],
                1 if usage.prompt_tokens or got.results else 0,
                first.cost(usage.prompt_tokens, usage.output_tokens, int(usage.extra.get("cache_hit_tokens", 0))),
                usage.prompt_tokens,
                usage.output_tokens,
            )
            if sent.requests:
                sent.packed = (len(indexes), usage.prompt_tokens)
                with lock:
                    packing["tried"] += 1
                    packing["good"] += 2 * len(got.results) >= len(indexes)
                    if packing["on"] and packing["tried"] >= batch.PACK_TRIAL and not packing["good"]:
                        packing["on"] = False
                        self.notify(
                            f"packing off: the model answered none of the first {packing['tried']} packed requests "
                            "in the ### N form; the remaining documents go one per request"
                        )
            for k in got.missing:
                sent.add(one(indexes[k]))
                sent.rerun += 1
            sent.outcomes.sort(key=lambda pair: pair[0])
            return sent

        progress = self.progress
        on_batch = progress.on_batch if progress is not None else None

        def each(_unit: int, sent: batch.Sent) -> None:
            status.requests += sent.requests
            status.rerun += sent.rerun
            if sent.packed[0]:
                status.packed_requests += 1
                status.packed_documents += sent.packed[0]
                status.packed_prompt_tokens += sent.packed[1]
            status.prompt_tokens += sent.prompt_tokens
            status.output_tokens += sent.output_tokens
            status.add_cost(sent.cost_usd)
            for i, result in sent.outcomes:
                if isinstance(result, Dsv2Error):
                    status.failed += 1
                else:
                    status.done += 1
                    if folder is not None:
                        folder.write(docs[i], record(result) if record else _record(result))
                on_result(i, result)
            if on_batch is not None:
                on_batch(status)

        with self._scope(resumable=True):
            if on_batch is not None:
                on_batch(status)
            ordered_map(
                unit_of,
                units,
                settings.parallel,
                each,
                on_abort=closer_of(routing),
                ahead=settings.parallel * batch.AHEAD,
                keep=False,  # each unit's outcome is written and dropped: memory does not grow with the batch
            )
        for handle in routing.handles():
            for notice in handle.notices():
                self.notify(notice)
        return status

    def _spec(self, prompt_file: Path | None, system: str | None = None, template: str | None = None) -> Any:
        from . import prompts
        from . import summarize as summ
        from .chat_session import system_prompt

        spec = summ.style_spec(self.settings.style)
        if prompt_file is not None:
            spec = summ.PromptSpec(spec.system, prompts.load_user_template(prompt_file, frozenset({"document"})))
        elif template is not None:
            prompts.check(template, frozenset({"document"}), frozenset({"document"}), "template")
            spec = summ.PromptSpec(spec.system, template)
        if system:
            spec = summ.PromptSpec(system_prompt(system, True) or spec.system, spec.template)
        return spec

    # --- ask ---------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        docs: Sequence[Document],
        *,
        corpus: Sequence[str | Path] = (),
        strategy: str | None = None,
        dry_run: bool = False,
        on_text: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer one question from ``docs`` (``corpus``: the paths they came from, which name the
        retrieval index when they do not fit one window)."""
        return next(self.ask_many([question], docs, corpus=corpus, strategy=strategy, dry_run=dry_run, on_text=on_text))

    def ask_many(
        self,
        questions: Sequence[str],
        docs: Sequence[Document],
        *,
        corpus: Sequence[str | Path] = (),
        strategy: str | None = None,
        dry_run: bool = False,
        on_text: Callable[[str], None] | None = None,
        on_question: Callable[[int, str], None] | None = None,
        system: str | None = None,
        template: str | None = None,
    ) -> Iterator[Answer]:
        """Answers in order, one evaluated document prefix for all: each is yielded when done.
        ``on_question(number, question)`` is called before a question's answer streams.
        ``system`` is added to the built-in system prompt; ``template`` replaces the user
        message's (it holds ``{{ document }}`` and ``{{ question }}``)."""
        from . import ask as asking
        from .chat_session import ASK_REQUIRED, system_prompt
        from .remote import classify_input, classify_question

        if not questions:
            raise UsageError("no question: give one as the first argument, or -q / --questions-file")
        corpus = list(corpus) or list(dict.fromkeys(d.source for d in docs))  # names the index
        if not dry_run:  # before the backend opens: a remote one may connect to ask for its window
            asked = {f"question {i}": q for i, q in enumerate(questions, 1)}
            asked = {"the question": questions[0]} if len(questions) == 1 else asked
            refuse_secrets_early(self.settings, self.environ, docs, self.send, extra=asked)
        routing = self.routing
        progress = self.progress

        counts: dict[int, Any] = {}  # per backend: the corpus counted once for every question

        def plan_on(handle: ModelHandle, question: str) -> Any:
            if id(handle) not in counts:
                counts[id(handle)] = self._count(handle, docs)
            with self._scope():
                return asking.plan(
                    question,
                    docs,
                    handle.tokenizer(dry_run),
                    handle.facts,
                    handle.window,
                    self.settings.max_tokens,
                    corpus=[str(c) for c in corpus],
                    home=self.settings.home,
                    strategy=strategy,
                    embed_model=self.settings.embed_model,
                    threads=self.settings.threads,
                    on_index_progress=progress.on_index if progress else None,
                    system=system_prompt(system, True) if system else None,
                    template=template,
                    counted=counts[id(handle)],
                    gpu_layers=self.settings.gpu_layers,
                    vectors=self._vectors(),
                )

        if template is not None:
            from . import prompts

            prompts.check(template, ASK_REQUIRED, prompts.FILLED["ask"], "template")
        confirmed: set[int] = set()
        for number, question in enumerate(questions, 1):
            started = time.perf_counter()
            # A question judged complex escalates before the first backend plans anything.
            reason = classify_question(question) if routing.enabled else None
            the_plan = None if reason else plan_on(routing.first, question)
            if the_plan is not None and routing.enabled:
                reason = classify_input(the_plan.context_tokens, the_plan.budget.document)
            handle, answered_by = routing.choose(reason, "simple question that fits one window")
            if handle is not routing.first or the_plan is None:
                the_plan = plan_on(handle, question)
            answer = Answer(question, the_plan, handle, answered_by, time.perf_counter() - started)
            for notice in the_plan.notices if number == 1 else []:
                self.notify(notice)
            if dry_run:
                yield answer
                continue
            if the_plan.strategy == "retrieve" and number == 1:
                self.notify(
                    f"corpus does not fit one {handle.window}-token window: answering from "
                    f"{len(the_plan.sources)} retrieved passages ({the_plan.retrieval})"
                )
            # asked once per backend: the next questions go to the same place
            policy = self.send if id(handle) not in confirmed else SendPolicy(self.send.allow_secrets, True)
            guard_outgoing(
                handle, docs, len(the_plan.prompt.ids), 1, policy, self.notify, extra={"the question": question}
            )
            confirmed.add(id(handle))
            if on_question is not None:
                on_question(number, question)
            with self._scope():
                answer.answer = asking.run(
                    the_plan,
                    handle.runner(),
                    self._params(),
                    answer.usage,
                    on_text=on_text,
                    on_prompt_progress=progress.on_prompt if progress else None,
                )
            for notice in handle.notices():
                self.notify(notice)
            answer.cache_outcome = _cache_outcome(answer.usage, self.no_cache)
            answer.citations = asking.verify(answer.answer, the_plan)
            yield answer

    # --- conversations: chat, ask -c, prompt ----------------------------------------------------

    def chat(
        self,
        docs: Sequence[Document] = (),
        *,
        corpus: Sequence[str | Path] = (),
        system: str | None = None,
        template: str | None = None,
        history: Sequence[Any] = (),
        summary: str | None = None,
        strategy: str | None = None,
        dry_run: bool = False,
    ) -> ChatRun:
        """A conversation over ``docs`` (or over nothing) on this session's first backend:
        ``turn(question)`` answers after the whole history (``history``: chat_session.Exchange
        turns to continue from). ``system`` is added to the built-in instructions when there are
        documents, and is the whole system prompt when there are none."""
        from .chat_session import Conversation

        if not dry_run:  # before the backend opens: a remote one may connect to ask for its window
            refuse_secrets_early(self.settings, self.environ, docs, self.send)
        handle = self.routing.first
        progress = self.progress
        conversation = Conversation(
            docs,
            handle.tokenizer(dry_run),
            handle.facts,
            handle.window,
            self.settings.max_tokens,
            system=system,
            template=template,
            corpus=corpus,
            home=self.settings.home,
            strategy=strategy,
            embed_model=self.settings.embed_model,
            threads=self.settings.threads,
            gpu_layers=self.settings.gpu_layers,
            vectors=self._vectors(),
            history=history,
            summary=summary,
            on_index_progress=progress.on_index if progress else None,
        )
        return ChatRun(self, handle, conversation)

    def logged(self, cid: str | None = None) -> Resumed:
        """The logged conversation ``cid`` names (None: the last one of ask, chat or prompt) and its
        answered turns; one not in the log is a UsageError."""
        from .chat_session import find_logged

        return find_logged(self.settings.home, cid)

    def resume(
        self,
        conversation: Resumed | str | None = None,
        docs: Sequence[Document] | None = None,
        *,
        password: str | None = None,
        system: str | None = None,
        template: str | None = None,
        strategy: str | None = None,
        dry_run: bool = False,
    ) -> ChatRun:
        """Continue a logged conversation (what :meth:`logged` found, or its id; None: the last
        one): :meth:`chat` after its answered turns, with the system text it was opened with unless
        ``system`` is given, over ``docs`` or, when None, the documents it was opened on, read again."""
        from .chat_session import Resumed

        found = conversation if isinstance(conversation, Resumed) else self.logged(conversation)
        if docs is None:
            opened = found.logged.documents or {}
            named = [p for p in opened.get("paths", []) if p != "-"]
            docs = []
            if named or opened.get("repo"):
                docs = self.load(
                    named,
                    repo=opened.get("repo"),
                    include=opened.get("include") or (),
                    exclude=opened.get("exclude") or (),
                    password=password,
                )
        return self.chat(
            docs,
            system=found.system(system),
            template=template,
            history=found.history,
            strategy=strategy,
            dry_run=dry_run,
        )

    # --- extract -----------------------------------------------------------------------------

    def extract(
        self,
        paths: Sequence[str],
        fields: Any,
        sink: Any,
        *,
        stdin: BinaryIO | None = None,
        password: str | None = None,
    ) -> Any:
        """Extract ``fields`` (extract.FieldSet) from every input into ``sink`` (extract.open_sink);
        returns the extract.BatchReport. An input that fails is reported and skipped."""
        from . import extract as ex
        from . import sources
        from .engines.handle import confirm_batch
        from .settings import with_backend

        settings = self.settings
        escalation = [with_backend(settings, settings.escalate_to, self.environ)] if settings.escalate_to else []
        for which in [settings, *escalation]:
            confirm_batch(which, self.environ, paths, self.send)
        opened: list[ModelHandle] = []
        yes = SendPolicy(self.send.allow_secrets, True, self.send.confirm)

        def guard(handle: ModelHandle, doc: Document, tokens: int, requests: int) -> None:
            guard_outgoing(handle, [doc], tokens, requests, yes, self.notify)

        def open_first() -> ModelHandle:
            opened.append(self.model)
            return self.model

        def open_escalation() -> ModelHandle:
            opened.append(open_model(escalation[0], self.environ, self.notify, verbose=self.verbose))
            return opened[-1]

        # extraction is greedy and sizes its output reserve by the field count unless told otherwise
        params = GenerationParams(
            settings.max_tokens if settings.origin("max_tokens") != "default" else 0,
            settings.temperature if settings.origin("temperature") != "default" else 0.0,
            settings.seed,
        )
        one_at_a_time = settings.parallel == 1  # progress follows one model call at a time
        progress = self.progress
        extractor = ex.Extractor(
            fields,
            params,
            open_first,
            self.notify,
            open_escalation if settings.escalate_to else None,
            guard=guard,
            on_prompt=progress.on_prompt if progress and one_at_a_time else None,
            on_output=progress.on_output if progress and one_at_a_time else None,
            count=self._count,
        )
        with self._scope(resumable=True):
            report = ex.run_batch(
                list(paths),
                # one input at a time, each read and dropped: the caps apply per input
                lambda p: self._sendable(
                    sources.load(
                        p,
                        stdin,
                        password=password,
                        limits=sources.InputLimits(*settings.input_limits),
                        pdf_cache=self._pdf_cache(),
                    )
                ),
                extractor,
                sink,
                fields.digest,
                self.notify,
                concurrency=settings.parallel,
                on_batch=progress.on_batch if progress is not None else None,
            )
        for handle in opened:
            for notice in handle.notices():
                self.notify(notice)
        return report

    # --- plan --------------------------------------------------------------------------------

    def plan(
        self,
        docs: Sequence[Document],
        *,
        corpus: Sequence[str | Path] = (),
        top: int = 10,
        measure: bool | None = None,
    ) -> PlanReport:
        """Token counts, what fits, which strategy would run, how long it would take (prompt,
        generation, indexing: measured on this machine or defaults) and what it would cost.
        ``measure``: True measures speeds now (loads the weights), False never, None once."""
        from . import planning
        from . import summarize as summ
        from .engines.handle import count_cache

        corpus = list(corpus) or list(dict.fromkeys(d.source for d in docs))  # names the index
        from .models import embedded_model_path
        from .packing import Budget, count_context
        from .parallel import cpu_counts, default_threads
        from .strategies import choose

        settings = self.settings
        session = open_model(settings, self.environ, self.notify, announce=False)
        counter, _ = count_cache(settings, session)
        try:
            counted = count_context(docs, counter.count_joined)
            context_tokens = counted.tokens
            sizes = planning.part_sizes(counted)
            overhead = len(summ.build_prompt(counter.tokenizer, session.facts, summ.style_spec(settings.style), "").ids)
        finally:
            counter.close()
            for notice in counter.notices:  # a damaged or unwritable token-count cache
                self.notify(notice)
        budget = Budget(window=session.window, output=settings.max_tokens, overhead=overhead)
        strategy = {task: choose(task, context_tokens, budget.document) for task in ("summarize", "ask")}
        chunks = -(-context_tokens // max(budget.document, 1))
        eval_tokens = context_tokens + overhead * (chunks if chunks > 1 else 1)

        requests = chunks + 1 if chunks > 1 else 1
        cost = None
        if session.remote is not None:
            # input as counted; output at most --max-tokens per request (map-reduce: chunks + final)
            cost = {
                "input_usd": session.cost(eval_tokens, 0),
                "output_max_usd": session.cost(0, settings.max_tokens * requests),
                "total_max_usd": session.cost(eval_tokens, settings.max_tokens * requests),
                "requests": requests,
            }
        model_path = session.path if settings.tokenizer == "model" else None  # None: nothing local to measure
        local = model_path is not None
        threads_used = settings.threads or default_threads()
        speed_cache = planning.SpeedCache(planning.speed_cache_path(settings.home))
        rate = output_rate = None
        measured_now = False
        key = ""
        if model_path is not None:
            key = planning.speed_key(model_path, threads_used, settings.gpu_layers, settings.flash_attn)
            entry = None if measure else speed_cache.entry(key)
            rate = speed_cache.get(key) if entry is not None else None
            measured_output = entry.get("output_tokens_per_s") if entry is not None else None
            output_rate = float(measured_output) if isinstance(measured_output, (int, float)) else None
        if rate is None and measure is not False and local:
            self.notify("measuring prompt-evaluation and generation speed once for these settings (loads the weights)")
            rate = planning.measure_prompt_speed(_llama(session))
            output_rate = planning.measure_output_speed(_llama(session))
            speed_cache.put(key, rate, output_rate)
            measured_now = True
        # Thread counts compared: measured with --measure, shown again from the cache later.
        thread_rows = None
        threads_measured_now = False
        if model_path is not None:
            tkey = planning.threads_key(model_path, settings.gpu_layers, settings.flash_attn)
            if measure:
                candidates = sorted({*cpu_counts().candidates(), threads_used}, reverse=True)
                self.notify(f"measuring prompt and generation speed at {', '.join(map(str, candidates))} threads")
                session.close()  # one model in memory at a time
                thread_rows = planning.measure_threads(_llama(session).options, candidates)
                planning.store_threads(speed_cache, tkey, thread_rows)
                threads_measured_now = True
            else:
                thread_rows = planning.cached_threads(speed_cache, tkey)
            if output_rate is None and thread_rows:
                output_rate = next((r.output_tokens_per_s for r in thread_rows if r.threads == threads_used), None)
        for notice in speed_cache.notices:
            self.notify(notice)
        sources = {
            "prompt_eval": "measured" if rate else None,
            "generation": "measured" if output_rate else None,
            "index": None,
        }
        if local and model_path == embedded_model_path():
            # Nothing measured for the embedded model: its speed on the project's machine stands in.
            if rate is None:
                rate, sources["prompt_eval"] = planning.EMBEDDED_PROMPT_TOKENS_PER_S, "default"
            if output_rate is None:
                output_rate, sources["generation"] = planning.EMBEDDED_OUTPUT_TOKENS_PER_S, "default"
        generation_s = settings.max_tokens * requests / output_rate if output_rate else None
        index_plan = None
        index_s = None
        if strategy["ask"] == "retrieve":
            index_plan = planning.estimate_index(
                settings.home,
                corpus,
                docs,
                embed_model=settings.embed_model,
                threads=threads_used,
                measure=measure,
                gpu_layers=settings.gpu_layers,
                vectors=self._vectors(),
            )
            sources["index"] = index_plan.source
            index_s = index_plan.seconds
        payload = {
            "model": session.model_path or session.name,
            "backend": session.describe(),
            "estimated_cost": cost,
            "window": session.window,
            "reserved_output": settings.max_tokens,
            "prompt_overhead": overhead,
            "budget": budget.document,
            "context_tokens": context_tokens,
            "fits": budget.fits(context_tokens),
            "strategy": strategy,
            "largest": [{**s.location.to_dict(), "tokens": s.tokens} for s in planning.largest(sizes, top)],
            "segments": len(sizes),
            "prompt_tokens_per_s": round(rate, 1) if rate else None,
            "speed_measured_now": measured_now,
            "estimated_prompt_eval_s": round(eval_tokens / rate, 1) if rate else None,
            "tokenizer": session.remote.counting if session.remote is not None else settings.tokenizer,
            "memory": session.memory.to_dict() if session.memory else None,
            # generation: at most --max-tokens per request (map-reduce: one per chunk and the final one)
            "output_tokens_per_s": round(output_rate, 1) if output_rate else None,
            "estimated_generation_s": round(generation_s, 1) if generation_s is not None else None,
            "requests": requests,
            # the first ask on a corpus that needs retrieval builds its index (chunks x embedding rate)
            "index_state": index_plan.state if index_plan else None,
            "index_chunks": index_plan.chunks if index_plan else None,
            "index_chunks_to_embed": index_plan.to_embed if index_plan else None,
            "index_embedder": index_plan.embedder if index_plan else None,
            "embed_chunks_per_s": round(index_plan.chunks_per_s, 1) if index_plan and index_plan.chunks_per_s else None,
            "estimated_index_s": round(index_s, 1) if index_s is not None else None,
            # where each number comes from: "measured" (on this machine, now or earlier) or "default"
            "estimates": sources,
            "estimates_measured_now": [
                name
                for name, now in (
                    ("prompt_eval", measured_now),
                    ("generation", measured_now),
                    ("index", bool(index_plan and index_plan.measured_now)),
                    ("threads", threads_measured_now),
                )
                if now
            ],
            "threads": [r.to_dict() for r in thread_rows] if thread_rows else None,
            "threads_in_use": threads_used if local else None,
            "threads_default": default_threads() if local else None,
            "threads_measured_now": threads_measured_now,
        }
        return PlanReport(
            payload,
            session,
            settings.max_tokens,
            chunks,
            eval_tokens,
            requests,
            sizes,
            top,
            index_plan,
            thread_rows or [],
            threads_used,
            bool(settings.threads),
            local,
            rate,
            output_rate,
            generation_s,
            measured_now,
            threads_measured_now,
        )

    # --- pack and models ---------------------------------------------------------------------

    def pack(self, docs: Sequence[Document]) -> dict[str, Any]:
        """Every segment of the packed context with its location and exact token count (the
        text itself is packing.render_context(docs))."""
        from .engines.handle import count_cache
        from .packing import count_context

        counter, resolved = count_cache(self.settings)
        try:
            counted = count_context(docs, counter.count_joined)
        finally:
            counter.close()
            for notice in counter.notices:  # a damaged or unwritable token-count cache
                self.notify(notice)
        tokens = counted.segment_tokens()
        return {
            "model": str(resolved.path) if resolved is not None else None,
            "tokenizer": self.settings.tokenizer,
            "context_tokens": counted.tokens,
            "documents": [
                {
                    "source": doc.source,
                    "kind": doc.kind,
                    # how sections were found: "outline" (PDF bookmarks), "numbered headings", "none"
                    "headings": doc.headings,
                    "neutralised": [n.to_dict() for n in doc.neutralised],  # sources/neutral.py
                    "segments": [{**seg.location.to_dict(), "tokens": tokens.get(id(seg), 0)} for seg in doc.segments],
                }
                for doc in docs
            ],
        }

    def model_info(self) -> tuple[dict[str, Any], ContextChoice]:
        """The resolved model and what it is, from its header alone (no weights loaded), and the
        context choice (window, memory estimate) behind its "memory" entry."""
        from .models import model_info, resolve_model

        return model_info(resolve_model(self.settings), self.settings)

    # --- the retrieval index and the prompt-prefix cache ---------------------------------------

    def index(self, corpus: Sequence[str | Path]) -> Any:
        """The retrieval index of a corpus (the paths given to ``ask``): status(), rebuild(), drop()."""
        from .index import open_index

        if not corpus:
            raise UsageError("name the corpus: the same paths or --repo DIR given to `dsv2 ask`")
        index = open_index(self.settings.home, [str(c) for c in corpus], self._vectors())
        if self.settings.index_url is None:  # built on an index server: rebuild and drop go there
            from .index.server import recorded_server

            server = recorded_server(index.status().store, self.environ)
            if server is not None:
                index = open_index(self.settings.home, [str(c) for c in corpus], server)
        return index

    def indexes(self) -> list[Any]:
        """Every retrieval index under DSV2_HOME (index.IndexStatus each), most recent first; reads
        manifests only (no vector store, no model)."""
        from .index import list_indexes

        return list_indexes(self.settings.home)

    def rebuild_index(self, corpus: Sequence[str | Path], docs: Sequence[Document]) -> Any:
        """Drop and rebuild a corpus's index from ``docs``; returns its status."""
        from .index import record_build_rate, resolve_embedder

        index = self.index(corpus)
        settings = self.settings
        choice = resolve_embedder(
            settings.home, settings.embed_model, threads=settings.threads, gpu_layers=settings.gpu_layers
        )
        if choice.notice:
            self.notify(choice.notice)
        with self._scope():
            report = index.rebuild(docs, choice.embedder, progress=self.progress.on_index if self.progress else None)
        if choice.embedder is not None:  # for `dsv2 plan`'s indexing estimate, as a build inside ask records
            record_build_rate(settings.home, choice.embedder, settings.threads, settings.gpu_layers, report)
        return index.status()

    def prefix_cache(self) -> Any:
        """The prompt-prefix cache (engines.prefix_cache.PrefixCache): status(), clear()."""
        from .engines.handle import prefix_cache_store

        return prefix_cache_store(self.settings)


@dataclass
class ChatRun:
    """A conversation (chat_session.Conversation) bound to a session's model."""

    session: Session
    handle: ModelHandle
    conversation: Any  # chat_session.Conversation
    confirmed: bool = False

    def plan(self, question: str) -> Any:
        """What the next turn would send (chat_session.TurnPlan), without running the model."""
        from .errors import ContextOverflowError

        with self.session._scope():
            the_plan = self.conversation.plan(question)
        if the_plan.overflow > 0 and not self.conversation.history:
            raise ContextOverflowError(
                f"the prompt is {len(the_plan.prompt.ids):,} tokens + {the_plan.max_tokens:,} reserved for the "
                f"answer: over the {the_plan.window:,}-token window by {the_plan.overflow:,}",
                input_tokens=len(the_plan.prompt.ids),
                window=the_plan.window,
                budget=the_plan.window - the_plan.max_tokens,
            )
        return the_plan

    def turn(
        self,
        question: str,
        *,
        on_text: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        planned: Any = None,
    ) -> Any:
        """Answer ``question`` after the history (chat_session.TurnResult); Ctrl-C during the
        answer, or ``should_stop()`` turning true, stops it and keeps the conversation.
        ``planned``: what :meth:`plan` just gave for this question, sent as it is."""
        session, conv = self.session, self.conversation
        policy = session.send if not self.confirmed else SendPolicy(session.send.allow_secrets, True)
        estimate = conv.context_tokens + len(question) // 3 + 64
        guard_outgoing(self.handle, conv.docs, estimate, 1, policy, session.notify, extra={"the question": question})
        self.confirmed = True
        progress = session.progress
        with session._scope():
            result = conv.turn(
                question,
                self.handle.runner(),
                session._params(),
                notify=session.notify,
                on_text=on_text,
                on_prompt_progress=progress.on_prompt if progress else None,
                should_stop=should_stop,
                planned=planned,
            )
        for notice in [*conv.notices, *self.handle.notices()]:
            session.notify(notice)
        conv.notices.clear()
        return result


def _llama(handle: ModelHandle) -> Any:
    """The local llama.cpp backend of a handle (speed measurements need its options)."""
    from .engines.llamacpp import LlamaCppBackend

    backend = handle.runner()
    if not isinstance(backend, LlamaCppBackend):
        raise UsageError("speeds are measured for a local model only")
    return backend


def _cache_outcome(usage: Usage, no_cache: bool) -> str:
    """ "hit" (loaded from disk), "memory" (reused in this process), "miss", "off" or "short"."""
    if usage.extra.get("prefix_cache_hits"):
        return "hit"
    if usage.extra.get("prefix_reused_tokens"):
        return "memory"
    if no_cache:
        return "off"
    if usage.extra.get("prefix_cache_misses"):
        return "miss"
    return "short"


def _record(run: SummaryRun) -> dict[str, Any]:
    """What ``summaries.jsonl`` holds per document when the caller gives no record builder."""
    result = run.result
    return {
        "source": run.docs[0].source,
        "summary": result.summary,
        "model": result.model,
        "strategy": result.strategy,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": run.handle.cost(result.input_tokens, result.output_tokens, result.cache_hit_tokens),
    }


def closer_of(routing: Routing) -> Callable[[], None]:
    """Close the opened backends' connections: requests in flight end now (Ctrl-C, a failure)."""
    from .parallel import closer

    return closer(*(h.backend for h in routing.handles() if h.backend is not None))
