"""The public Python API, called as a user's script would: real model, real files, nothing printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsv2cli.api import Session
from dsv2cli.errors import ContextOverflowError, InputError

FAST = {"max_tokens": 16, "temperature": 0, "threads": 1}
TEXT = "The harbour opens at six. Ferries leave every forty minutes until midnight.\n"


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "harbour.txt"
    path.write_text(TEXT)
    return path


def test_summarize_and_ask_from_one_session(doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes: list[str] = []
    streamed: list[str] = []
    with Session(notify=notes.append, **FAST) as dsv2:
        docs = dsv2.load([doc])
        run = dsv2.summarize(docs, on_text=streamed.append)
        assert run.plan.strategy == "whole" and run.result.summary
        assert "".join(streamed).strip() == run.result.summary
        assert 0 < run.result.output_tokens <= 16
        answer = dsv2.ask("When does the harbour open?", docs)
        assert answer.answer and answer.plan.strategy == "whole"
        assert answer.usage.prompt_tokens > 0 and answer.cache_outcome in ("hit", "memory", "miss", "short")
        assert dsv2.model.load_s > 0  # one model, loaded once for both calls
    assert any("embedded test model" in n for n in notes)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""  # the library never prints


def test_several_questions_share_one_prefix(doc: Path) -> None:
    with Session(**FAST) as dsv2:
        docs = dsv2.load([doc])
        asked: list[int] = []
        answers = list(
            dsv2.ask_many(
                ["When does it open?", "How often do ferries leave?"], docs, on_question=lambda n, q: asked.append(n)
            )
        )
    assert [a.question for a in answers] == ["When does it open?", "How often do ferries leave?"]
    assert asked == [1, 2] and all(a.answer is not None for a in answers)
    assert answers[1].usage.extra.get("prefix_reused_tokens", 0) > 0


def test_dry_run_plans_without_loading_weights(doc: Path) -> None:
    with Session(**FAST) as dsv2:
        run = dsv2.summarize(dsv2.load([doc]), dry_run=True)
        assert run.result is None and run.plan.prompt is not None
        assert TEXT.strip() in run.plan.prompt.text
        assert dsv2.model.load_s == 0.0


def test_errors_are_exceptions_not_exits(tmp_path: Path, doc: Path) -> None:
    with Session(**FAST) as dsv2, pytest.raises(InputError, match="no such file"):
        dsv2.load([tmp_path / "missing.pdf"])
    with Session(ctx=64, max_tokens=16, threads=1) as small, pytest.raises(ContextOverflowError):
        small.summarize(small.load([doc]), strategy="whole")


def test_settings_keywords_are_validated_like_flags() -> None:
    from dsv2cli.errors import ConfigError

    with pytest.raises(ConfigError, match="style"):
        Session(style="haiku")


def test_loading_large_weights_is_announced_before_and_after(smollm2: Path) -> None:
    """A GGUF of announce_load_bytes or more says what it loads, how much and about how long,
    then how long it took (DeepSeek-V2 files are 10-130 GB; here the threshold is lowered)."""
    from dsv2cli.engines.llamacpp import LlamaCppBackend, LlamaCppOptions

    notes: list[str] = []
    options = LlamaCppOptions(smollm2, 256, threads=1, on_load=notes.append, announce_load_bytes=1)
    backend = LlamaCppBackend(options, "smollm2")
    backend.load()
    backend.close()
    assert len(notes) == 2, notes
    assert notes[0].startswith(f"loading {smollm2.name}: 0.1 GB of weights, about ")
    assert notes[1].startswith(f"loaded {smollm2.name} in ")
    notes.clear()
    LlamaCppBackend(LlamaCppOptions(smollm2, 256, threads=1, on_load=notes.append), "smollm2").load()
    assert notes == []  # 98 MB: under the default 2 GiB, nothing to say
