"""Chat formatting to token ids, with document text kept as data.

The GGUF's own ``tokenizer.chat_template`` is rendered (Jinja, sandboxed) with a sentinel in
place of each message's content. The template's text is split at its special tokens exactly as
llama.cpp's ``special=True`` tokenizer would split it; message contents are joined to the
neighbouring template text and tokenized with ``special=False``. For ordinary content the ids
equal ``tokenize(rendered_prompt, special=True)``; for content that spells a control token,
the content stays text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .tokens import Tokenizer

# DeepSeek-V2 (arch deepseek2) format when the GGUF carries no template (DeepSeek README).
DEEPSEEK_V2_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}"
    "{% else %}{{ 'Assistant: ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Base models without a template: plain text turns.
PLAIN_TEMPLATE = "{% for message in messages %}{{ message['content'] + '\n\n' }}{% endfor %}"

_SENTINEL = "\x00dsv2-content-{}\x00"
_SENTINEL_RE = re.compile("\x00dsv2-content-(\\d+)\x00")


@dataclass(frozen=True)
class ModelFacts:
    """What the prompt builder must know about the model (from the GGUF header, or a remote profile)."""

    name: str
    architecture: str
    chat_template: str | None


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user", "assistant"
    content: str
    # Characters of ``content`` that stay the same across questions (the documents): the prompt
    # ids up to there form a reusable prefix (ChatPrompt.cache_prefix).
    stable: int | None = None


@dataclass(frozen=True)
class ChatPrompt:
    ids: list[int]
    text: str  # the rendered prompt, for --dry-run and debugging
    template: str  # "gguf", "deepseek-v2 (built in)" or "plain (built in)"
    cache_prefix: int = 0  # ids[:cache_prefix] do not depend on the question: reusable state
    # The messages the ids were built from: what a remote (chat-completions) backend sends; the
    # server applies its own template, and ``ids`` is then our count of it for the budget.
    messages: tuple[Message, ...] = ()


def system_of(prompt: ChatPrompt | None) -> str | None:
    """The system message a prompt carries (the built-in instructions and what -s added), if any."""
    messages = prompt.messages if prompt is not None else ()
    return next((m.content for m in messages if m.role == "system"), None)


class _Boundary:
    """Marks the end of the stable prefix among the pieces to tokenize."""


_BOUNDARY = _Boundary()


def pick_template(gguf_template: str | None, architecture: str) -> tuple[str, str]:
    if gguf_template:
        return gguf_template, "gguf"
    if architecture == "deepseek2":
        return DEEPSEEK_V2_TEMPLATE, "deepseek-v2 (built in)"
    return PLAIN_TEMPLATE, "plain (built in)"


def _render(template: str, messages: list[Message], bos: str, eos: str) -> str:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=[{"role": m.role, "content": _SENTINEL.format(i)} for i, m in enumerate(messages)],
        bos_token=bos,
        eos_token=eos,
        add_generation_prompt=True,
    )


def format_chat(
    tokenizer: Tokenizer, messages: list[Message], gguf_template: str | None, architecture: str
) -> ChatPrompt:
    template, kind = pick_template(gguf_template, architecture)
    bos_text = tokenizer.token_text(tokenizer.bos_id) if tokenizer.bos_id >= 0 else ""
    eos_text = tokenizer.token_text(tokenizer.eos_id) if tokenizer.eos_id >= 0 else ""
    rendered = _render(template, messages, bos_text, eos_text)

    # Pieces: template text is split at special tokens; contents stay plain text.
    pieces: list[str | int | _Boundary] = []
    text_parts: list[str] = []
    pos = 0
    seen = set()
    for match in _SENTINEL_RE.finditer(rendered):
        index = int(match.group(1))
        seen.add(index)
        pieces.extend(tokenizer.split_special(rendered[pos : match.start()]))
        message = messages[index]
        if message.stable is not None:
            pieces.extend([message.content[: message.stable], _BOUNDARY, message.content[message.stable :]])
        else:
            pieces.append(message.content)
        text_parts.append(rendered[pos : match.start()] + messages[index].content)
        pos = match.end()
    pieces.extend(tokenizer.split_special(rendered[pos:]))
    text_parts.append(rendered[pos:])
    if seen != set(range(len(messages))):
        raise ValueError(f"chat template ({kind}) dropped message(s); cannot build the prompt")

    ids: list[int] = []
    pending: list[str] = []
    prefix = 0
    for piece in pieces:
        if isinstance(piece, str):
            pending.append(piece)
            continue
        ids.extend(tokenizer.encode("".join(pending)))
        pending.clear()
        if isinstance(piece, _Boundary):
            prefix = len(ids)
        else:
            ids.append(piece)
    ids.extend(tokenizer.encode("".join(pending)))
    if tokenizer.adds_bos and tokenizer.bos_id >= 0 and ids[:1] != [tokenizer.bos_id]:
        ids.insert(0, tokenizer.bos_id)
        prefix += 1 if prefix else 0
    return ChatPrompt(ids, "".join(text_parts), kind, prefix, tuple(messages))
