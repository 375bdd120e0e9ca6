"""How many threads llama.cpp gets, and how they wait (parallel.default_threads, llama.OMP_WAIT_POLICY)."""

from __future__ import annotations

import os
import subprocess
import sys

from dsv2cli.parallel import CpuCounts, cores_in_cpuinfo, cpu_counts, default_threads

# Two sockets, two cores each, two hyperthreads per core: 8 processors, 4 physical cores.
SMT_CPUINFO = "\n\n".join(
    f"processor\t: {n}\nvendor_id\t: GenuineIntel\nphysical id\t: {n // 4}\ncore id\t\t: {(n % 4) // 2}\n"
    for n in range(8)
)


def test_physical_cores_are_distinct_socket_and_core_pairs() -> None:
    assert cores_in_cpuinfo(SMT_CPUINFO, set(range(8))) == 4
    assert cores_in_cpuinfo(SMT_CPUINFO, {0, 1}) == 1  # two hyperthreads of one core
    assert cores_in_cpuinfo(SMT_CPUINFO, {0, 2, 4}) == 3
    assert cores_in_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\n", {0}) is None  # no core ids listed


def test_this_machine_counts_cpus_this_process_may_use() -> None:
    counts = cpu_counts()
    assert 1 <= counts.physical <= counts.logical <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert counts.logical <= len(os.sched_getaffinity(0))
    assert default_threads() == counts.physical


def test_candidates_are_logical_physical_and_one_core_less() -> None:
    assert CpuCounts(logical=16, physical=8).candidates() == [16, 8, 7]
    assert CpuCounts(logical=2, physical=2).candidates() == [2, 1]
    assert CpuCounts(logical=1, physical=1).candidates() == [1]


def _wait_policy(env: dict[str, str]) -> str:
    code = "import os\nfrom dsv2cli import llama\nllama._lib()\nprint(os.environ.get('OMP_WAIT_POLICY'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return proc.stdout.strip()


def test_llama_cpp_threads_wait_passively_unless_the_user_chose() -> None:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _wait_policy(base) == "PASSIVE"
    assert _wait_policy({**base, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
