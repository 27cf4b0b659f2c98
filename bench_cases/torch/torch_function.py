"""`__torch_function__` dispatch overhead of torch.add on a Tensor, a Tensor
subclass, a Tensor-like with __torch_function__, and a subclass that
overrides it (the four cases of PyTorch's overrides_benchmark).

Usage: torch_function.py RESULT_FILE [CALLS_PER_REPEAT] [REPEATS]

Timed runs append NAME,time_per_call_ns,NANOSECONDS (median over REPEATS of
the thread's CPU time;
whole nanoseconds: PyTorch's expected-results format holds integers). In
the agent's region-count runs each case is a region of 100 calls instead
(NAME,instruction_count). PERFGATE_SLOWDOWN_PCT=N makes N% more calls in
each timed block and region, divided by the nominal count.
"""
import statistics
import sys
import timeit

import torch

import perfgate_region

COUNTED_CALLS = 100


class SubTensor(torch.Tensor):
    pass


class WithTorchFunction:
    def __init__(self, data):
        self._tensor = torch.tensor(data)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        unwrapped = [a._tensor if isinstance(a, WithTorchFunction) else a for a in args]
        return WithTorchFunction(func(*unwrapped, **kwargs).tolist())


class SubWithTorchFunction(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})


def calls(a, b, n):
    for _ in range(n):
        torch.add(a, b)


def per_call_seconds(a, b, number, repeat):
    calls(a, b, 3)
    slowed = perfgate_region.with_slowdown(number)
    times = timeit.repeat(lambda: calls(a, b, slowed), timer=perfgate_region.cpu_seconds, number=1, repeat=repeat)
    return statistics.median(times) / number


def main():
    result_file = sys.argv[1]
    number = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    cases = {
        "torch_function_tensor": (torch.tensor([1.0]), torch.tensor([2.0])),
        "torch_function_subtensor": (SubTensor([1.0]), SubTensor([2.0])),
        "torch_function_tensor_like": (WithTorchFunction([1.0]), WithTorchFunction([2.0])),
        "torch_function_subclass_override": (SubWithTorchFunction([1.0]), SubWithTorchFunction([2.0])),
    }
    if perfgate_region.counting():
        for name, (a, b) in cases.items():
            calls(a, b, 10)
            with perfgate_region.region(name):
                calls(a, b, perfgate_region.with_slowdown(COUNTED_CALLS))
        return
    with open(result_file, "a") as out:
        for name, (a, b) in cases.items():
            out.write(f"{name},time_per_call_ns,{round(per_call_seconds(a, b, number, repeat) * 1e9)}\n")


if __name__ == "__main__":
    main()
