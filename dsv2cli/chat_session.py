"""A conversation over documents (or over nothing): ``dsv2 chat``, ``ask -c`` and ``dsv2 prompt``.

Each turn sends the whole history after the documents, in the model's chat template:

    whole corpus:  [system] [user: documents + question 1] [assistant] [user: question 2] ... [user: question n]
    retrieval:     [system] [user: question 1] [assistant] ... [user: passages for question n + question n]
    no documents:  [system] [user: question 1] [assistant] ... [user: question n]

so a turn's prompt starts with the previous turn's prompt and answer: the llama.cpp engine keeps
that prefix evaluated and a turn evaluates only its own tokens and the template's (the documents
are also a stable prefix for the disk prefix cache, as in ``ask``). When documents plus history
would not leave room for the answer, the oldest turns are folded into a summary made by the
model, announced with the numbers; the latest turn always stays verbatim. Over a corpus larger
than the window, each turn retrieves passages for its own question, as ``ask`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import citations, logs, prompts
from .chat import ChatPrompt, Message, ModelFacts, format_chat, system_of
from .engines.base import Backend, GenerationParams, PromptProgress, Usage
from .errors import ContextOverflowError, UsageError
from .packing import Budget, render_context
from .sources.base import Document
from .strategies import RETRIEVE, WHOLE, choose
from .tokens import Tokenizer

NONE = "none"  # no documents: a plain conversation
ASK_REQUIRED = frozenset({"document", "question"})  # a template may also show {{ example }} (a citation)
RETRIEVAL_SLACK = 48  # as in ask: tokens kept free for what per-passage counts cannot see
FOLD_OUTPUT_TOKENS = 160  # the summary of folded turns
FOLD_INSTRUCTION = (
    "Summarize the conversation below in a few sentences for your own later reference. Keep every fact, "
    "name, number and decision; say who asked what."
)


@dataclass
class Exchange:
    """One finished turn."""

    question: str
    answer: str


@dataclass
class TurnPlan:
    """What one turn sends."""

    question: str
    prompt: ChatPrompt
    strategy: str  # whole | retrieve | none
    window: int
    max_tokens: int
    context_tokens: int  # the documents' (or retrieved passages') tokens in the prompt
    history_tokens: int  # tokens the earlier turns (and any summary of folded ones) take
    sources: list[dict[str, Any]] = field(default_factory=list)
    retrieval: str | None = None
    short: int = 0  # retrieval: tokens missing to leave any room for passages
    # The passages this turn's prompt carries, with their text: what the answer's citations are
    # checked against (citations.check), as for `dsv2 ask`.
    passages: list[citations.Passage] = field(default_factory=list)

    @property
    def overflow(self) -> int:
        """Tokens over the window once the answer's reserve is counted (0 or less: it fits)."""
        return max(len(self.prompt.ids) + self.max_tokens - self.window, self.short)

    @property
    def system(self) -> str | None:
        return system_of(self.prompt)


@dataclass
class TurnResult:
    plan: TurnPlan
    answer: str
    usage: Usage
    stopped: bool = False  # Ctrl-C during generation: the answer is what came until then
    folded: int = 0  # turns folded into the summary before this one

    @functools.cached_property
    def citations(self) -> citations.CitationCheck | None:
        """The answer's citations matched against the passages its prompt carried, quotes
        checked (None: a turn over no documents)."""
        return citations.check(self.answer, self.plan.passages) if self.plan.passages else None

    @property
    def reused(self) -> int:
        return int(self.usage.extra.get("prefix_reused_tokens", 0))

    @property
    def evaluated(self) -> int:
        """Prompt tokens this turn evaluated (the rest were kept from earlier turns)."""
        return self.usage.prompt_tokens - self.reused


@dataclass
class Resumed:
    """A logged conversation to continue (``-c``: the last one; ``--cid``): the log's record of
    it and its answered turns."""

    logged: logs.Conversation
    history: list[Exchange]

    def system(self, given: str | None) -> str | None:
        """The ``-s`` text: as given now, else what the conversation was opened with."""
        return given if given is not None else self.logged.system


def find_logged(home: Path, cid: str | None) -> Resumed:
    """The conversation ``cid`` names (None: the last one of ask, chat or prompt) in the log under
    ``home``, with its successful turns; a missing one is a usage error (exit 2)."""
    store = logs.LogStore(logs.log_path(home))
    found = store.conversation(cid) if cid is not None else store.last_conversation(logs.CONVERSING)
    if found is None:
        raise UsageError(
            f"no conversation {cid!r} in the log (dsv2 logs)" if cid else "no conversation to continue in the log"
        )
    rows = store.responses(limit=None, conversation_id=found.id)
    history = [
        Exchange(r.prompt or "", r.output or "")
        for r in rows
        if r.exit_status == 0 and r.command in logs.CONVERSING and r.output is not None
    ]
    return Resumed(found, history)


def system_prompt(user_system: str | None, documents: bool) -> str | None:
    """The system message: the built-in instructions (documents stay data) plus ``-s`` text;
    without documents, the ``-s`` text alone (None: no system message)."""
    user_system = user_system.strip() if user_system else None
    if not documents:
        return user_system
    base = prompts.load("system").strip()
    return f"{base}\n\n{user_system}" if user_system else base


class Conversation:
    """The state of one conversation; each :meth:`turn` runs the model once (twice when folding)."""

    def __init__(
        self,
        docs: Sequence[Document],
        tokenizer: Tokenizer,
        facts: ModelFacts,
        window: int,
        max_tokens: int,
        *,
        system: str | None = None,
        template: str | None = None,
        corpus: Sequence[str | Path] = (),
        home: Path | None = None,
        strategy: str | None = None,
        embed_model: str | None = None,
        threads: int | None = None,
        gpu_layers: int | None = None,
        vectors: Any = None,
        history: Sequence[Exchange] = (),
        summary: str | None = None,
        on_index_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.docs = list(docs)
        self.tokenizer = tokenizer
        self.facts = facts
        self.window = window
        self.max_tokens = max_tokens
        self.user_system = system
        self.template = template if template is not None else prompts.load("ask")
        if self.docs:
            prompts.check(self.template, ASK_REQUIRED, prompts.FILLED["ask"], "chat template")
        self.corpus = [str(c) for c in corpus] or list(dict.fromkeys(d.source for d in self.docs))
        self.home = home
        self.embed_model = embed_model
        self.threads = threads
        self.gpu_layers = gpu_layers  # the embedder's offload (None: the generator's default rule)
        self.vectors = vectors  # where the index keeps its vectors (an index server; None: embedded)
        self.on_index_progress = on_index_progress
        self.history = list(history)
        self.summary = summary
        self.folded_turns = 0
        self.notices: list[str] = []
        # The embedder, resolved on the first retrieving turn and kept: each turn used to build a
        # new one, which hashed the GGUF and loaded the model again to embed the question.
        self._embedder: Any = None
        self.context = render_context(self.docs) if self.docs else ""
        self.example = citations.format_example(
            [citations.Passage(s.location, s.text) for d in self.docs for s in d.segments if s.text.strip()]
        )
        self.context_tokens = 0
        self.strategy = NONE
        if self.docs:
            overhead = len(self._build("?", "", []).ids)
            budget = Budget(window=window, output=max_tokens, overhead=overhead)
            self.context_tokens = len(self._build("?", self.context, []).ids) - overhead
            self.strategy = choose("ask", self.context_tokens, budget.document, strategy)

    # --- prompts ------------------------------------------------------------------------------

    @property
    def system(self) -> str | None:
        return system_prompt(self.user_system, bool(self.docs))

    def _slot(self, question: str, first: bool) -> str:
        if first and self.summary:
            return f"(Summary of the earlier conversation: {self.summary.strip()})\n\n{question}"
        return question

    def _build(
        self, question: str, passages: str | None, history: Sequence[Exchange], example: str | None = None
    ) -> ChatPrompt:
        """The prompt for ``question`` after ``history``; ``passages``: the documents' text (whole
        corpus: in the first user message; retrieval: in the last one)."""
        messages: list[Message] = []
        if self.system:
            messages.append(Message("system", self.system))
        questions = [e.question for e in history] + [question]
        for i, asked in enumerate(questions):
            last = i == len(questions) - 1
            slot = self._slot(asked, i == 0)
            holds_documents = passages is not None and (i == 0 if self.strategy != RETRIEVE else last)
            if holds_documents:
                values = {"document": passages or "", "question": slot, "example": example or self.example}
                user, stable = prompts.user_message(self.template, values)
                messages.append(Message("user", user, stable if self.strategy != RETRIEVE else None))
            else:
                messages.append(Message("user", slot))
            if not last:
                messages.append(Message("assistant", history[i].answer))
        return format_chat(self.tokenizer, messages, self.facts.chat_template, self.facts.architecture)

    def plan(self, question: str) -> TurnPlan:
        """The prompt this turn would send (retrieving first over an oversize corpus); it may not
        fit (``overflow`` > 0): :meth:`turn` folds turns until it does."""
        if not question.strip():
            raise UsageError("the question is empty")
        if self.strategy == RETRIEVE:
            return self._plan_retrieval(question)
        passages = self.context if self.strategy == WHOLE else None
        prompt = self._build(question, passages, self.history)
        history_tokens = 0
        if self.history or self.summary:  # earlier turns and the summary of folded ones
            history_tokens = len(prompt.ids) - len(self._without_summary(question, passages).ids)
        sent = []
        if self.strategy == WHOLE:
            sent = [citations.Passage(s.location, s.text) for d in self.docs for s in d.segments if s.text.strip()]
        sources = [{**p.location.to_dict(), "cite": p.cite(), "score": None} for p in sent]
        return TurnPlan(
            question,
            prompt,
            self.strategy,
            self.window,
            self.max_tokens,
            self.context_tokens,
            history_tokens,
            sources,
            passages=sent,
        )

    def _without_summary(self, question: str, passages: str | None) -> ChatPrompt:
        summary, self.summary = self.summary, None
        try:
            return self._build(question, passages, [])
        finally:
            self.summary = summary

    def _plan_retrieval(self, question: str) -> TurnPlan:
        from .ask import render_selected
        from .index import retrieve
        from .index.embedder import resolve_embedder

        base = self._build(question, "", self.history)
        history_tokens = len(base.ids) - len(self._without_summary(question, "").ids)
        target = self.window - self.max_tokens - len(base.ids) - RETRIEVAL_SLACK
        if target < 32:  # no room for passages: turn() folds history first
            return TurnPlan(
                question, base, RETRIEVE, self.window, self.max_tokens, 0, history_tokens, short=32 - target
            )
        assert self.home is not None
        if self._embedder is None:
            choice = resolve_embedder(self.home, self.embed_model, threads=self.threads, gpu_layers=self.gpu_layers)
            self._embedder = choice.embedder
            if choice.notice and choice.notice not in self.notices:
                self.notices.append(choice.notice)
        found = retrieve(
            question,
            self.docs,
            corpus=self.corpus,
            home=self.home,
            budget=target,
            count_tokens=self.tokenizer.count,
            embed_model=self.embed_model,
            embedder=self._embedder,
            threads=self.threads,
            gpu_layers=self.gpu_layers,
            progress=self.on_index_progress,
            vectors=self.vectors,
        )
        self.notices.extend(n for n in found.notices if n not in self.notices)
        for _ in range(4):
            example = citations.format_example([citations.Passage(s.location, s.text) for s in found.sources])
            prompt = self._build(question, render_selected(found.sources), self.history, example)
            excess = len(prompt.ids) + self.max_tokens - self.window
            if excess <= 0:
                break
            target -= excess + RETRIEVAL_SLACK
            if target < 32:
                break
            found = found.repack(target)
        return TurnPlan(
            question,
            prompt,
            RETRIEVE,
            self.window,
            self.max_tokens,
            len(prompt.ids) - len(base.ids),
            history_tokens,
            [s.to_dict() for s in found.sources],
            found.method,
            passages=[citations.Passage(s.location, s.text) for s in found.sources],
        )

    # --- turns --------------------------------------------------------------------------------

    def turn(
        self,
        question: str,
        backend: Backend,
        params: GenerationParams,
        *,
        notify: Callable[[str], None],
        on_text: Callable[[str], None] | None = None,
        on_prompt_progress: PromptProgress | None = None,
        should_stop: Callable[[], bool] | None = None,
        planned: TurnPlan | None = None,
    ) -> TurnResult:
        """Answer ``question`` after the history; Ctrl-C, or ``should_stop()`` turning true
        (checked between prompt slices and streamed pieces), stops the generation: the partial
        answer is kept, ``stopped`` set, and the conversation goes on. ``planned``: what
        :meth:`plan` just gave for this question (nothing happened in between), not made again."""
        plan, folded = self._fitting_plan(question, backend, params, notify, planned)
        usage = Usage()
        pieces: list[str] = []
        stopped = False

        def check() -> None:
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt

        def progress(done: int, total: int) -> None:
            check()
            if on_prompt_progress is not None:
                on_prompt_progress(done, total)

        try:
            for piece in backend.generate(plan.prompt, params, usage, progress):
                pieces.append(piece)
                if on_text is not None:
                    on_text(piece)
                check()
        except KeyboardInterrupt:
            stopped = True
        answer = "".join(pieces).strip()
        self.history.append(Exchange(question, answer))
        return TurnResult(plan, answer, usage, stopped, folded)

    def _fitting_plan(
        self,
        question: str,
        backend: Backend,
        params: GenerationParams,
        notify: Callable[[str], None],
        planned: TurnPlan | None = None,
    ) -> tuple[TurnPlan, int]:
        plan = planned if planned is not None and planned.question == question else self.plan(question)
        folded = 0
        while plan.overflow > 0:
            if not self.history:
                raise ContextOverflowError(
                    f"the question needs {len(plan.prompt.ids)} prompt tokens + {self.max_tokens} for the answer: "
                    f"over the {self.window}-token window even with every earlier turn folded",
                    input_tokens=len(plan.prompt.ids),
                    window=self.window,
                    budget=self.window - self.max_tokens,
                )
            count = len(self.history) - 1 if len(self.history) > 1 else 1  # the latest turn stays verbatim
            count = max(1, min(count, (len(self.history) + 1) // 2))
            notify(
                f"the conversation needs {len(plan.prompt.ids):,} prompt tokens (documents {plan.context_tokens:,}, "
                f"earlier turns {plan.history_tokens:,}) + {self.max_tokens:,} for the answer, over the "
                f"{self.window:,}-token window: folding the oldest {count} of {len(self.history)} turn(s) "
                "into a summary"
            )
            summary = self.fold(count, backend, params)
            line = " ".join(summary.split())
            notify(f"summary of the folded turns ({len(self.tokenizer.encode(summary))} tokens): {line}")
            folded += count
            plan = self.plan(question)
        return plan, folded

    def fold(self, count: int, backend: Backend, params: GenerationParams) -> str:
        """Replace the oldest ``count`` turns (and any earlier summary) by a model-written summary."""
        folded, kept = self.history[:count], self.history[count:]
        parts = [f"Earlier summary: {self.summary.strip()}"] if self.summary else []
        parts += [f"User: {e.question}\nAssistant: {e.answer}" for e in folded]
        text = "\n\n".join(parts)
        output = min(FOLD_OUTPUT_TOKENS, max(16, self.window // 8))
        prompt = self._fold_prompt(text)
        while len(prompt.ids) + output > self.window and len(text) > 64:
            text = text[len(text) // 4 :]  # the oldest part goes first; the summary says what stays
            prompt = self._fold_prompt(text)
        usage = Usage()
        fold_params = GenerationParams(output, params.temperature, params.seed)
        summary = "".join(backend.generate(prompt, fold_params, usage)).strip()
        self.summary = summary or text[-400:]
        self.history = kept
        self.folded_turns += count
        return self.summary

    def _fold_prompt(self, text: str) -> ChatPrompt:
        messages = [Message("user", f"{FOLD_INSTRUCTION}\n\n<conversation>\n{text}\n</conversation>")]
        return format_chat(self.tokenizer, messages, self.facts.chat_template, self.facts.architecture)

    def reset(self) -> None:
        """Forget the history (``/reset``); the documents stay."""
        self.history.clear()
        self.summary = None
        self.folded_turns = 0

    def transcript(self) -> str:
        """The conversation as Markdown (``/save``)."""
        lines = []
        if self.docs:
            lines.append("Documents: " + ", ".join(d.source for d in self.docs) + "\n")
        if self.summary:
            lines.append(f"*Summary of {self.folded_turns} earlier turn(s):* {self.summary}\n")
        for e in self.history:
            lines += [f"## {e.question}\n", f"{e.answer}\n"]
        return "\n".join(lines)
