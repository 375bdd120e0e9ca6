"""Many model calls at once (a remote backend), results in input order, and a prompt way out;
and how many CPU threads llama.cpp gets (:func:`default_threads`).

Used by map-reduce (chunk summaries, reduce levels), ``summarize --each`` and batch extraction.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

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
    ahead: int | None = None,
    keep: bool = True,
) -> list[R]:
    """``[fn(item) for item in items]`` with up to ``workers`` calls running at once.

    ``on_each(i, result)`` runs in this thread: in input order as soon as every earlier item is
    done (``in_order``), or as each finishes (for progress counts). When a call fails or the user
    presses Ctrl-C, no further item starts, ``on_abort`` runs, and the error propagates at once:
    the workers are daemon threads, so a request blocked on a slow server does not hold up the
    exit (a ThreadPoolExecutor would join it at interpreter exit, and closing an httpx client
    does not wake a thread blocked reading its socket).

    For long batches: ``ahead`` bounds how far the workers run past the oldest unfinished item
    (item ``i`` starts only while ``i < oldest unfinished + ahead``), so a slow item holds the
    others back instead of letting finished results pile up; ``keep=False`` drops each result
    once ``on_each`` has it and returns an empty list, so memory does not grow with ``items``.
    """
    if workers <= 1 or len(items) <= 1:
        results: list[R] = []
        for i, item in enumerate(items):
            result = fn(item)
            if keep:
                results.append(result)
            if on_each is not None:
                on_each(i, result)
        return results
    limit = len(items) if ahead is None else max(1, ahead)
    cond = threading.Condition()
    claimed = 0  # items started (guarded by cond)
    oldest = 0  # items before this one are all finished and handed on (guarded by cond)
    finished: queue.SimpleQueue[tuple[int, bool, object]] = queue.SimpleQueue()
    stop = threading.Event()

    def claim() -> int | None:
        nonlocal claimed
        with cond:
            while not stop.is_set() and claimed < len(items) and claimed >= oldest + limit:
                cond.wait(0.25)
            if stop.is_set() or claimed >= len(items):
                return None
            claimed += 1
            return claimed - 1

    def work() -> None:
        while (i := claim()) is not None:
            try:
                finished.put((i, True, fn(items[i])))
            except BaseException as exc:  # handed to the caller's thread
                finished.put((i, False, exc))

    def advance(to: int) -> None:
        nonlocal oldest
        with cond:
            oldest = to
            cond.notify_all()

    for n in range(min(workers, len(items))):
        threading.Thread(target=work, name=f"dsv2-call-{n}", daemon=True).start()

    values: dict[int, R] = {}  # finished, not yet handed on (or kept)
    completed = False
    try:
        ready: set[int] = set()
        next_in_order = 0
        while next_in_order < len(items):
            try:
                i, ok, value = finished.get(timeout=0.25)  # a timeout keeps Ctrl-C responsive
            except queue.Empty:
                continue
            if not ok:  # fail now, not when the items before it are done
                raise cast(BaseException, value)
            result = cast(R, value)
            ready.add(i)
            if not in_order:
                if keep:
                    values[i] = result
                if on_each is not None:
                    on_each(i, result)
            else:
                values[i] = result
            while next_in_order in ready:
                ready.discard(next_in_order)
                if in_order:
                    result = values[next_in_order] if keep else values.pop(next_in_order)
                    if on_each is not None:
                        on_each(next_in_order, result)
                next_in_order += 1
                advance(next_in_order)
        completed = True
        return [values[i] for i in range(len(items))] if keep else []
    finally:
        stop.set()
        with cond:
            cond.notify_all()
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


# --- CPU threads for llama.cpp ------------------------------------------------------------------


@dataclass(frozen=True)
class CpuCounts:
    """The CPUs this process may run on: logical CPUs and the physical cores behind them."""

    logical: int
    physical: int

    def candidates(self) -> list[int]:
        """The thread counts worth comparing, distinct, largest first: logical, physical, physical - 1."""
        return sorted({self.logical, self.physical, max(1, self.physical - 1)}, reverse=True)


def _cgroup_cpu_limit() -> int | None:
    """CPUs allowed by a cgroup v2 quota (``cpu.max``, containers started with --cpus), if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, -(-int(quota) // int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def _physical_cores(cpus: set[int]) -> int | None:
    """Distinct (package, core) pairs among ``cpus``: sysfs topology first, then /proc/cpuinfo.
    None when neither says (not Linux, a restricted /sys)."""
    pairs: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            pairs.add(
                ((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip())
            )
        except OSError:
            pairs.clear()
            break
    if pairs:
        return len(pairs)
    try:
        return cores_in_cpuinfo(Path("/proc/cpuinfo").read_text(), cpus)
    except OSError:
        return None


def cores_in_cpuinfo(text: str, cpus: set[int]) -> int | None:
    """Distinct (physical id, core id) pairs of the processors in ``cpus``, from /proc/cpuinfo's
    text; None when it names no cores (some ARM and virtual machines list processors only)."""
    pairs: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields_ = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())}
        number = fields_.get("processor", "")
        if number.isdigit() and int(number) in cpus and "core id" in fields_:
            pairs.add((fields_.get("physical id", "0"), fields_["core id"]))
    return len(pairs) or None


def cpu_counts() -> CpuCounts:
    """Logical CPUs this process may use (affinity mask, cgroup quota) and their physical cores."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = set(range(os.cpu_count() or 1))
    logical = max(1, len(cpus))
    physical = min(_physical_cores(cpus) or logical, logical)
    limit = _cgroup_cpu_limit()
    if limit is not None:
        logical, physical = min(logical, limit), min(physical, limit)
    return CpuCounts(logical=logical, physical=physical)


DEFAULT_THREADS_RULE = "physical cores"


def default_threads() -> int:
    """llama.cpp threads when --threads is not given: one per physical core this process may use.

    bench/threads.py on the project's 2-core machine (2 logical = 2 physical CPUs), 2026-11-30:
    SmolLM2-135M, prompt evaluation of 1,536 tokens / 64 generated tokens, tok/s, medians of 5
    rounds, each a fresh process; llama.cpp's OpenMP threads waiting passively as llama.py now
    has them (spinning, the old behaviour, in brackets):

    - idle: 2 threads 197 / 89 (216 / 116); 1 thread 111 / 74 (112 / 74)
    - one busy process alongside: 2 threads 115 / 54 (103 / 34); 1 thread 96 / 73 (109 / 70)
    - other jobs, load average ~3.5: 2 threads 60 / 41 (49 / 11); 1 thread 72 / 52 (79 / 48)

    With passive waits, all cores is best idle (prompt evaluation 1.8x one thread) and never far
    behind under load (one thread generates up to 1.35x faster, and at load 3.5 is 1.2-1.3x
    faster at both), while one thread fewer than the cores gives up the idle machine's second
    core for good. The old collapse of two threads on shared cores (generation 2-20x slower than
    one thread) came from the spinning, not from the count.
    SMT siblings beyond the physical cores share a core's arithmetic units; llama.cpp's own tools
    default to physical cores for that reason (this machine has none to measure).
    """
    return cpu_counts().physical
