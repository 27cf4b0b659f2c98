"""Compile time of deep inlining, modelled on PyTorch's pr_time_benchmarks
dynamo_inline.py: a module whose forward calls a ten-deep chain of small
functions 1,000 times. Debian's PyTorch 1.13 has no torch.compile; torch.fx
symbolic tracing stands in for dynamo: like dynamo it runs through every
Python frame of the chain and records one graph of 1,000 adds, then
generates the module's code. Each compilation starts from nothing (fx keeps
no cache between traces), as PyTorch's fresh_cache().

Usage: compile_inline.py RESULT_FILE [SAMPLES]

Timed runs append basic_InlineMod_fx,compile_time_ns,NANOSECONDS (median of
SAMPLES compilations, the thread's CPU time; integers, as PyTorch's expected-results format holds). In the agent's region-count runs one compilation is
the region: basic_InlineMod_fx,compile_time_instruction_count.
PERFGATE_SLOWDOWN_PCT=N calls the chain N% more times.
"""
import statistics
import sys

import torch
import torch.fx

import perfgate_region

NAME = "basic_InlineMod_fx"


def fn(x):
    return x + 1


def fn1(x):
    return fn(x)


def fn2(x):
    return fn1(x)


def fn3(x):
    return fn2(x)


def fn4(x):
    return fn3(x)


def fn5(x):
    return fn4(x)


def fn6(x):
    return fn5(x)


def fn7(x):
    return fn6(x)


def fn8(x):
    return fn7(x)


def fn9(x):
    return fn8(x)


class InlineMod(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self._n = perfgate_region.with_slowdown(1000)

    def forward(self, x):
        for _ in range(self._n):
            x = fn9(x)
        return x


def compile_and_run(module, x):
    compiled = torch.fx.symbolic_trace(module)
    return compiled(x)


def main():
    result_file = sys.argv[1]
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    module, x = InlineMod(), torch.ones(10)
    compile_and_run(module, x)  # warm-up: imports, code objects
    if perfgate_region.counting():
        with perfgate_region.region(f"{NAME},compile_time_instruction_count"):
            compile_and_run(module, x)
        return
    times = []
    for _ in range(samples):
        start = perfgate_region.cpu_seconds()
        compile_and_run(module, x)
        times.append(perfgate_region.cpu_seconds() - start)
    with open(result_file, "a") as out:
        out.write(f"{NAME},compile_time_ns,{round(statistics.median(times) * 1e9)}\n")


if __name__ == "__main__":
    main()
