"""ordered_map: input order, progress as calls finish, and a prompt exit when one fails."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import pytest

from dsv2cli.parallel import ordered_map


def test_results_and_callbacks_in_input_order_whatever_order_calls_finish() -> None:
    delays = [0.3, 0.0, 0.2, 0.0, 0.1]
    seen: list[int] = []
    out = ordered_map(lambda d: (time.sleep(d), d)[1], delays, 3, lambda i, _r: seen.append(i))
    assert out == delays and seen == [0, 1, 2, 3, 4]


def test_progress_in_completion_order() -> None:
    gate = threading.Event()

    def call(i: int) -> int:
        if i == 0:
            gate.wait(5)
        return i

    seen: list[int] = []

    def progress(i: int, _r: int) -> None:
        seen.append(i)
        if len(seen) == 2:
            gate.set()  # item 0 finishes only after two others have

    assert ordered_map(call, [0, 1, 2], 3, progress, in_order=False) == [0, 1, 2]
    assert seen[0] != 0 and sorted(seen) == [0, 1, 2]


def test_a_failure_stops_new_calls_runs_on_abort_and_does_not_wait_for_slow_calls() -> None:
    release = threading.Event()
    started: list[int] = []
    aborted: list[bool] = []

    def call(i: int) -> int:
        started.append(i)
        if i == 0:
            release.wait(30)  # a request blocked on a slow server
        if i == 1:
            raise ValueError("bad answer")
        time.sleep(0.2)
        return i

    begun = time.monotonic()
    with pytest.raises(ValueError, match="bad answer"):
        ordered_map(call, list(range(20)), 2, on_abort=lambda: aborted.append(True))
    assert time.monotonic() - begun < 5  # did not wait for item 0
    assert aborted == [True] and len(started) < 20  # nothing new started after the failure
    release.set()


def test_one_worker_is_a_plain_loop() -> None:
    calls: list[str] = []
    out = ordered_map(lambda s: calls.append(threading.current_thread().name) or s.upper(), ["a", "b"], 1)
    assert out == ["A", "B"] and set(calls) == {threading.main_thread().name}


def test_a_local_backend_called_from_several_threads_takes_turns(smollm2: Path) -> None:
    """A remote-first batch escalating to a local model calls it from worker threads: one llama.cpp
    context must see one call at a time, and every call must still finish."""
    from dsv2cli.chat import Message, format_chat
    from dsv2cli.engines.base import GenerationParams, Usage
    from dsv2cli.engines.llamacpp import LlamaCppBackend, LlamaCppOptions

    backend = LlamaCppBackend(LlamaCppOptions(model_path=smollm2, n_ctx=512, threads=1), "smollm2")
    tok = backend.tokenizer
    assert backend.tokenizer is tok  # one instance: its special-token table is built once

    def ask(word: str) -> str:
        prompt = format_chat(tok, [Message("user", f"Say {word}.")], None, "llama")
        return "".join(backend.generate(prompt, GenerationParams(6, 0.0, 0), Usage()))

    answers = ordered_map(ask, ["one", "two", "three"], 3)
    assert len(answers) == 3 and all(answers)


def test_ahead_holds_workers_back_while_the_oldest_item_is_unfinished() -> None:
    """A slow first item: with ``ahead=3`` the other worker does items 1 and 2, then waits."""
    gate = threading.Event()
    third_done = threading.Event()
    started: list[int] = []
    held: list[list[int]] = []

    def call(i: int) -> int:
        started.append(i)
        if i == 0:
            gate.wait(10)
        if i == 2:
            third_done.set()
        return i

    def release_later() -> None:
        third_done.wait(10)
        time.sleep(0.4)  # time enough for the free worker to start item 3, were it allowed to
        held.append(sorted(started))
        gate.set()

    threading.Thread(target=release_later, daemon=True).start()
    seen: list[int] = []
    out = ordered_map(call, list(range(12)), 2, lambda i, _r: seen.append(i), ahead=3)
    assert held == [[0, 1, 2]]  # while item 0 ran, nothing past item 2 started
    assert out == list(range(12)) and seen == list(range(12)) and sorted(started) == list(range(12))


class _Result:
    def __init__(self, i: int) -> None:
        self.i = i


@pytest.mark.parametrize("workers", [1, 3])
def test_keep_false_drops_each_result_once_handed_on(workers: int) -> None:
    """A long batch: results reach ``on_each`` in order and are not held after (nor returned)."""
    refs: list[weakref.ref[_Result]] = []
    alive_before: list[int] = []

    def on_each(i: int, result: _Result) -> None:
        assert result.i == i
        gc.collect()
        alive_before.append(sum(ref() is not None for ref in refs[: max(i - 1, 0)]))
        refs.append(weakref.ref(result))

    out = ordered_map(_Result, list(range(30)), workers, on_each, keep=False)
    assert out == [] and len(refs) == 30
    assert alive_before == [0] * 30  # results two or more places back were already gone
