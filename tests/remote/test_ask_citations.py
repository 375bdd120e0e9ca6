"""Citations checked on an answer that comes out of a real model: llama_cpp.server runs SmolLM2 under a
grammar that admits exactly one answer (tests/scripted_server.py, GrammarProxy), so the text holds a
real marker, an invented page and the old template's example, and still goes through llama.cpp's
sampling, the server's stream and dsv2's remote backend. The text-mode run is in a real pty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..scripted_server import GrammarProxy
from ..sources.pdfs import write_pdf
from ..terminal import child_env, run_in_pty, squeeze
from ..test_ask_cli import ANSWER, FARES, TIMETABLE

pytestmark = pytest.mark.slow

QUESTION = "What do residents pay?"


@pytest.fixture
def proxy(llama_server: str) -> Iterator[GrammarProxy]:
    server = GrammarProxy(llama_server, ANSWER)
    yield server
    server.close()


def args(pdf: Path, proxy: GrammarProxy, *more: str) -> list[str]:
    return ["ask", QUESTION, str(pdf), "--backend", "openai", "--base-url", proxy.url, "--api-model", "smollm2",
            "--ctx", "4096", "--max-tokens", "200", "--temperature", "0", *more]  # fmt: skip


def test_the_real_model_s_answer_is_checked_and_its_sources_shown_in_a_terminal(
    proxy: GrammarProxy, tmp_path: Path
) -> None:
    """One generation (grammar sampling is slow on a CPU: ~70 tokens, each checked against the
    whole vocabulary), streamed to a real terminal with --strict-citations."""
    pdf = write_pdf(tmp_path / "fares.pdf", [FARES, TIMETABLE])
    run = run_in_pty(args(pdf, proxy, "--strict-citations"), {**child_env(), "DSV2_HOME": str(tmp_path / "home")})
    assert run.exit_code == 8, run.text  # the answer cites what was not sent
    # the prompt showed the format with the document's own first marker
    assert f"for example [{pdf} p. 1]" in proxy.bodies[0]["messages"][-1]["content"]
    shown = squeeze(run.text)  # long paths wrap at the screen's width
    block = squeeze(
        "Sources:\n"
        f"  [fares.pdf p. 1]  {pdf}, p. 1\n"
        "  [fares.pdf p. 7]  NOT SENT: page 7 of fares.pdf was not sent\n"
        "  [src/app.py:12-20]  NOT SENT: no passage of src/app.py was sent\n"
        "Quotes:\n"
        '  "pay at most 4.50 euros per crossing" [fares.pdf p. 1]: found in the cited passage\n'
        f"Sent but not cited:\n  {pdf}: p. 2\n"
    )
    # the streamed answer stays on screen, the block comes right after it
    assert squeeze(ANSWER) + block in shown, run.text
    warning = [row for row in run.screen if "match nothing that was sent" in row]
    assert len(warning) == 1 and warning[0].startswith("dsv2: warning: 2 citations"), run.text
    assert "dsv2: error: the citations do not check out" in run.text
