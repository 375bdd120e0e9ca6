"""ordered_map: input order, progress as calls finish, and a prompt exit when one fails."""

from __future__ import annotations

import threading
import time

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
