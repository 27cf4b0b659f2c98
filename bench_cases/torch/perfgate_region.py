"""Marks a Python case's measured regions for `instructions: region`.

The agent runs the case under callgrind with instrumentation and collection
off at start; `counting()` is true there. `region(name)` switches collection
on around its body with torch._C._valgrind_toggle() (where
torch._C._valgrind_supported_platform() says so) and dumps the count under
`name` ("BENCHMARK" or "BENCHMARK,METRIC"). Instrumentation on/off and the
named dump need valgrind client requests Python cannot issue, so they come
from libperfgate_region.so (bench_cases/src/perfgate_region.cc), built next
to perfgate. Outside valgrind all of it is a few no-op instructions.
"""
import contextlib
import ctypes
import os
import time

import torch


def counting():
    """True in the agent's region-count runs: skip timing loops there."""
    return os.environ.get("PERFGATE_REGION_COUNTER") == "callgrind"


def cpu_seconds():
    """This thread's CPU time, the clock of every timed metric here: wall
    time on a loaded machine counts the time the case waited for a core
    (at load 11-15 on 2 cores, x + 1 read 74 us a call instead of a few),
    CPU time only the time it ran."""
    return time.thread_time()


def with_slowdown(units):
    """`units` of work plus PERFGATE_SLOWDOWN_PCT percent more."""
    return units + units * int(os.environ.get("PERFGATE_SLOWDOWN_PCT", "0")) // 100


def _library():
    exe_dir = os.environ.get("PERFGATE_EXE_DIR")
    if not exe_dir:
        raise RuntimeError("PERFGATE_EXE_DIR is not set: run this case through perfgate (it sets it)")
    return ctypes.CDLL(os.path.join(exe_dir, "bench_cases", "libperfgate_region.so"))


_lib = _library() if counting() else None


def _toggle_collect():
    if torch._C._valgrind_supported_platform():
        torch._C._valgrind_toggle()
    else:
        _lib.perfgate_region_toggle_collect()


@contextlib.contextmanager
def paused():
    """Leaves set-up out of the region around it (no-op when not counting)."""
    if _lib is None:
        yield
        return
    _toggle_collect()
    try:
        yield
    finally:
        _toggle_collect()


@contextlib.contextmanager
def region(name):
    """Counts the body as region `name` (no-op when not counting)."""
    if _lib is None:
        yield
        return
    _lib.perfgate_region_start_instrumentation()
    _toggle_collect()
    try:
        yield
    finally:
        _toggle_collect()
        _lib.perfgate_region_dump(name.encode())
        _lib.perfgate_region_stop_instrumentation()
