"""`x + 1` on a one-element tensor, eager: the per-call overhead PyTorch's
dynamo microbenchmark tracks, with requires_grad and in inference mode.

Usage: add_one.py RESULT_FILE [CALLS_PER_REPEAT] [REPEATS]

Appends PyTorch result lines (name,metric,value) with the median seconds per
call. Compiled variants need torch.compile (PyTorch 2.0+); Debian ships 1.13.
"""
import statistics
import sys
import timeit

import torch


def per_call_seconds(fn, x, number, repeat):
    for _ in range(3):  # warm-up: allocator, dispatcher caches
        fn(x)
    times = timeit.repeat(lambda: fn(x), number=number, repeat=repeat)
    return statistics.median(times) / number


def main():
    result_file = sys.argv[1]
    number = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    torch.manual_seed(0)
    add1 = lambda x: x + 1
    rows = [
        ("add_one_eager", per_call_seconds(add1, torch.randn(1), number, repeat)),
        ("add_one_eager_requires_grad", per_call_seconds(add1, torch.randn(1, requires_grad=True), number, repeat)),
    ]
    with torch.inference_mode():
        rows.append(("add_one_eager_inference_mode", per_call_seconds(add1, torch.randn(1), number, repeat)))
    with open(result_file, "a") as out:
        for name, seconds in rows:
            out.write(f"{name},time_per_call_s,{seconds:.12g}\n")


if __name__ == "__main__":
    main()
