"""`x + 1` on a one-element tensor, eager against compiled, modelled on
PyTorch's microbenchmarks/overheads.py: requires_grad false and true, and
under torch.inference_mode(). Debian's PyTorch 1.13 has no torch.compile, so
torch.jit.script is the compiler.

Usage: add_one.py RESULT_FILE [CALLS_PER_REPEAT] [REPEATS]

Appends NAME,time_per_call_ns,NANOSECONDS (median over REPEATS blocks of
calls, the thread's CPU time) and NAME,warmup_ns,NANOSECONDS (scripting plus the first three calls, apart from
the per-call time, as overheads.py prints it). Whole nanoseconds, because
PyTorch's expected-results format holds integers. In the agent's region-count
runs (`instructions: region`) each variant's region is COUNTED_CALLS calls
after its warm-up: NAME,instruction_count. PERFGATE_SLOWDOWN_PCT=N makes N%
more calls per block (and per region), divided by the nominal count.
"""
import statistics
import sys
import timeit

import torch

import perfgate_region


def add1(x):
    return x + 1


def calls(fn, x, n):
    for _ in range(n):
        fn(x)


# Calls in a variant's counted region, as runtime_overhead counts 100 calls.
COUNTED_CALLS = 100


def bench(name, make_fn, requires_grad, number, repeat):
    torch.manual_seed(0)
    x = torch.randn(1, requires_grad=requires_grad)
    start = perfgate_region.cpu_seconds()
    fn = make_fn()
    calls(fn, x, 3)
    warmup = perfgate_region.cpu_seconds() - start
    if perfgate_region.counting():
        with perfgate_region.region(f"{name},instruction_count"):
            calls(fn, x, perfgate_region.with_slowdown(COUNTED_CALLS))
        return None
    slowed = perfgate_region.with_slowdown(number)
    times = timeit.repeat(lambda: calls(fn, x, slowed), timer=perfgate_region.cpu_seconds, number=1, repeat=repeat)
    return statistics.median(times) / number, warmup


def main():
    result_file = sys.argv[1]
    number = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    compilers = {"eager": lambda: add1, "jit_script": lambda: torch.jit.script(add1)}
    rows = []
    for compiler, make_fn in compilers.items():
        for suffix, requires_grad, inference in (("", False, False), ("_requires_grad", True, False),
                                                 ("_inference_mode", False, True)):
            name = f"add_one_{compiler}{suffix}"
            with torch.inference_mode(inference):
                measured = bench(name, make_fn, requires_grad, number, repeat)
            if measured:
                rows.append((name, *measured))
    if perfgate_region.counting():
        return
    with open(result_file, "a") as out:
        for name, per_call, warmup in rows:
            out.write(f"{name},time_per_call_ns,{round(per_call * 1e9)}\n{name},warmup_ns,{round(warmup * 1e9)}\n")


if __name__ == "__main__":
    main()
