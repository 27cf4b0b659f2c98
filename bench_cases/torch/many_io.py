"""Compile time of a function of 100 inputs and 100 outputs, modelled on
PyTorch's pr_time_benchmarks aotdispatcher.py: inference and training
(inputs requiring grad), each with plain tensors and with a tensor subclass
(a two-tensor wrapper with __torch_dispatch__, like PyTorch's TwoTensor).
Debian's PyTorch 1.13 has no torch.compile; functorch.compile.aot_function
with the nop compiler is the compiler (AOT Autograd: tracing, joint graph,
partitioning), a fresh one per compilation, so nothing is cached.

Usage: many_io.py RESULT_FILE [SAMPLES]

Timed runs append NAME,compile_time_ns,NANOSECONDS (median of SAMPLES
compilations, the thread's CPU time; integers, as PyTorch's expected-results format holds). In the agent's region-count runs one compilation of each is
a region: NAME,compile_time_instruction_count. PERFGATE_SLOWDOWN_PCT=N
compiles a function of N% more inputs and outputs.
"""
import statistics
import sys

import torch
from functorch.compile import aot_function, nop
from torch.utils._pytree import tree_map

import perfgate_region

INPUTS = 100


class TwoTensor(torch.Tensor):
    """Holds two tensors and applies every op to both."""

    @staticmethod
    def __new__(cls, a, b):
        return torch.Tensor._make_wrapper_subclass(cls, a.shape, strides=a.stride(), storage_offset=a.storage_offset(),
                                                   dtype=a.dtype, device=a.device, layout=a.layout,
                                                   requires_grad=a.requires_grad)

    def __init__(self, a, b):
        self.a, self.b = a, b

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        def side(pick):
            unwrap = lambda t: pick(t) if isinstance(t, TwoTensor) else t
            return func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs or {}))

        a, b = side(lambda t: t.a), side(lambda t: t.b)
        if isinstance(a, torch.Tensor):
            return TwoTensor(a, b)
        if isinstance(a, (list, tuple)):
            return type(a)(TwoTensor(x, y) if isinstance(x, torch.Tensor) else x for x, y in zip(a, b))
        return a


def f(*args):
    return [torch.add(x, x) for x in args]


def make_inputs(training, subclass):
    args = [torch.ones(100, requires_grad=training) for _ in range(perfgate_region.with_slowdown(INPUTS))]
    if subclass:
        args = [TwoTensor(x, x.clone().detach().requires_grad_(training)) for x in args]
    return args


def compile_and_run(args):
    return aot_function(f, fw_compiler=nop, bw_compiler=nop)(*args)


def main():
    result_file = sys.argv[1]
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rows = []
    for training in (False, True):
        for subclass in (False, True):
            name = f"aotdispatcher_{'training' if training else 'inference'}_{'subclass' if subclass else 'nosubclass'}_cpu"
            args = make_inputs(training, subclass)
            compile_and_run(args)  # warm-up: imports, dispatcher caches
            if perfgate_region.counting():
                with perfgate_region.region(f"{name},compile_time_instruction_count"):
                    compile_and_run(args)
                continue
            times = []
            for _ in range(samples):
                start = perfgate_region.cpu_seconds()
                compile_and_run(args)
                times.append(perfgate_region.cpu_seconds() - start)
            rows.append((name, statistics.median(times)))
    if rows:
        with open(result_file, "a") as out:
            for name, seconds in rows:
                out.write(f"{name},compile_time_ns,{round(seconds * 1e9)}\n")


if __name__ == "__main__":
    main()
