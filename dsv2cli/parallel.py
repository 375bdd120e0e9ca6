"""Many model calls at once (a remote backend), results in input order, and a prompt way out.

Used by map-reduce (chunk summaries, reduce levels), ``summarize --each`` and batch extraction.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    on_each: Callable[[int, R], None] | None = None,
    *,
    in_order: bool = True,
    on_abort: Callable[[], None] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` with up to ``workers`` calls running at once.

    ``on_each(i, result)`` runs in this thread: in input order as soon as every earlier item is
    done (``in_order``), or as each finishes (for progress counts). When a call fails or the user
    presses Ctrl-C, no further item starts, ``on_abort`` runs, and the error propagates at once:
    the workers are daemon threads, so a request blocked on a slow server does not hold up the
    exit (a ThreadPoolExecutor would join it at interpreter exit, and closing an httpx client
    does not wake a thread blocked reading its socket).
    """
    if workers <= 1 or len(items) <= 1:
        results: list[R] = []
        for i, item in enumerate(items):
            results.append(fn(item))
            if on_each is not None:
                on_each(i, results[-1])
        return results
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(items)):
        todo.put(i)
    finished: queue.SimpleQueue[int] = queue.SimpleQueue()
    values: dict[int, R] = {}
    errors: dict[int, BaseException] = {}
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                values[i] = fn(items[i])
            except BaseException as exc:  # handed to the caller's thread
                errors[i] = exc
            finished.put(i)

    for n in range(min(workers, len(items))):
        threading.Thread(target=work, name=f"dsv2-call-{n}", daemon=True).start()

    def take(i: int) -> R:
        if i in errors:
            raise errors[i]
        return values[i]

    completed = False
    try:
        ready: set[int] = set()
        next_in_order = 0
        while len(ready) < len(items):
            try:
                i = finished.get(timeout=0.25)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            ready.add(i)
            if i in errors:  # fail now, not when the items before it are done
                raise errors[i]
            if not in_order:
                result = take(i)
                if on_each is not None:
                    on_each(i, result)
                continue
            while next_in_order in ready:
                result = take(next_in_order)
                if on_each is not None:
                    on_each(next_in_order, result)
                next_in_order += 1
        completed = True
        return [take(i) for i in range(len(items))]
    finally:
        stop.set()
        if not completed and on_abort is not None:
            on_abort()


def closer(*backends: object) -> Callable[[], None]:
    """An ``on_abort`` that closes every backend that can be closed (a remote one's connections)."""

    def close() -> None:
        for backend in backends:
            close_fn = getattr(backend, "close", None)
            if callable(close_fn):
                close_fn()

    return close
