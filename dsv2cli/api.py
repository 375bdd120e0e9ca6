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
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .engines.base import GenerationParams, Usage
from .engines.handle import ModelHandle, Notify, Routing, SendPolicy, guard_outgoing, open_model
from .errors import UsageError
from .settings import Settings, resolve
from .sources.base import Document

__all__ = [
    "Answer",
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
        return self.progress.scope(resumable=resumable) if self.progress is not None else nullcontext()

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
            [str(p) for p in paths], stdin, repo=repo, include=include, exclude=exclude, password=password
        )
        for line in notes:
            self.notify(line)
        return docs

    # --- summarize ---------------------------------------------------------------------------

    def summarize(
        self,
        docs: Sequence[Document],
        *,
        prompt_file: Path | None = None,
        strategy: str | None = None,
        dry_run: bool = False,
        on_text: Callable[[str], None] | None = None,
    ) -> SummaryRun:
        """One summary of ``docs`` in the configured style (or with the template in ``prompt_file``,
        which holds ``{{ document }}``): the whole input in one pass when it fits, else map-reduce."""
        from . import summarize as summ
        from .remote import classify_input

        spec = self._spec(prompt_file)
        started = time.perf_counter()
        routing = self.routing

        def plan_on(handle: ModelHandle) -> Any:
            tok = handle.tokenizer(dry_run)
            s = self.settings
            return summ.plan(docs, tok, handle.facts, spec, handle.window, s.max_tokens, strategy, s.parallel)

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
    ) -> list[SummaryRun]:
        """A summary per document, ``settings.parallel`` at once; ``on_result(i, run or error)`` in
        input order as each is ready. A document that fails is reported and skipped."""
        from . import summarize as summ
        from .errors import Dsv2Error
        from .remote import classify_input

        spec = self._spec(prompt_file)
        routing = self.routing

        def plan_on(handle: ModelHandle, doc: Document) -> Any:
            # Documents run settings.parallel at once; each one's map-reduce calls run one at a time.
            tok = handle.tokenizer(dry_run)
            return summ.plan([doc], tok, handle.facts, spec, handle.window, self.settings.max_tokens, strategy, 1)

        runs: list[SummaryRun] = []
        for doc in docs:
            the_plan = plan_on(routing.first, doc)
            reason = classify_input(the_plan.document_tokens, the_plan.budget.document)
            handle, answered_by = routing.choose(f"{doc.source}: {reason}" if reason else None, "input fits one window")
            if handle is not routing.first:
                the_plan = plan_on(handle, doc)
            runs.append(SummaryRun(the_plan, [doc], handle, answered_by))
        if dry_run:
            for i, run in enumerate(runs):
                on_result(i, run)
            return runs
        for handle in {id(r.handle): r.handle for r in runs}.values():
            mine = [r for r in runs if r.handle is handle]
            tokens = sum(r.plan.sent_estimate()[0] for r in mine)
            calls = sum(r.plan.sent_estimate()[1] for r in mine)
            guard_outgoing(handle, [r.docs[0] for r in mine], tokens, calls, self.send, self.notify)
        jobs: list[summ.Job] = [(r.plan, r.docs, r.handle.runner()) for r in runs]

        def each(i: int, outcome: Any) -> None:
            if isinstance(outcome, Dsv2Error):
                on_result(i, outcome)
            else:
                runs[i].result = outcome
                on_result(i, runs[i])

        progress = self.progress
        with self._scope(resumable=True):
            summ.run_many(jobs, self._params(), self.settings.parallel, each, progress.on_stage if progress else None)
        return runs

    def _spec(self, prompt_file: Path | None) -> Any:
        from . import prompts
        from . import summarize as summ

        spec = summ.style_spec(self.settings.style)
        if prompt_file is not None:
            spec = summ.PromptSpec(spec.system, prompts.load_user_template(prompt_file, frozenset({"document"})))
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
    ) -> Iterator[Answer]:
        """Answers in order, one evaluated document prefix for all: each is yielded when done.
        ``on_question(number, question)`` is called before a question's answer streams."""
        from . import ask as asking
        from .remote import classify_input, classify_question

        if not questions:
            raise UsageError("no question: give one as the first argument, or -q / --questions-file")
        corpus = list(corpus) or list(dict.fromkeys(d.source for d in docs))  # names the index
        routing = self.routing
        progress = self.progress

        def plan_on(handle: ModelHandle, question: str) -> Any:
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
                )

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
            yield answer

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

        def as_model(handle: ModelHandle, name: str) -> Any:
            opened.append(handle)

            def guard(doc: Document, tokens: int, requests: int) -> None:
                guard_outgoing(handle, [doc], tokens, requests, yes, self.notify)

            return ex.Model(
                handle.runner(),
                handle.tokenizer(),  # a local model loads its weights here
                handle.facts,
                handle.window,
                name=name,
                cost=handle.cost if handle.remote is not None else None,
                guard=guard if handle.remote is not None else None,
            )

        def open_first() -> Any:
            return as_model(self.model, settings.backend)

        def open_escalation() -> Any:
            handle = open_model(escalation[0], self.environ, self.notify, verbose=self.verbose)
            return as_model(handle, str(settings.escalate_to))

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
            on_prompt=progress.on_prompt if progress and one_at_a_time else None,
            on_output=progress.on_output if progress and one_at_a_time else None,
        )
        with self._scope(resumable=True):
            report = ex.run_batch(
                list(paths),
                lambda p: sources.load(p, stdin, password=password),
                extractor,
                sink,
                fields.digest,
                self.notify,
                concurrency=settings.parallel,
            )
        for handle in opened:
            for notice in handle.notices():
                self.notify(notice)
        return report

    # --- the retrieval index and the prompt-prefix cache ---------------------------------------

    def index(self, corpus: Sequence[str | Path]) -> Any:
        """The retrieval index of a corpus (the paths given to ``ask``): status(), rebuild(), drop()."""
        from .index import open_index

        if not corpus:
            raise UsageError("name the corpus: the same paths or --repo DIR given to `dsv2 ask`")
        return open_index(self.settings.home, [str(c) for c in corpus])

    def rebuild_index(self, corpus: Sequence[str | Path], docs: Sequence[Document]) -> Any:
        """Drop and rebuild a corpus's index from ``docs``; returns its status."""
        from .index import resolve_embedder

        index = self.index(corpus)
        settings = self.settings
        choice = resolve_embedder(settings.home, settings.embed_model, threads=settings.threads)
        if choice.notice:
            self.notify(choice.notice)
        with self._scope():
            index.rebuild(docs, choice.embedder, progress=self.progress.on_index if self.progress else None)
        return index.status()

    def prefix_cache(self) -> Any:
        """The prompt-prefix cache (engines.prefix_cache.PrefixCache): status(), clear()."""
        from .engines.handle import prefix_cache_store

        return prefix_cache_store(self.settings)


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
