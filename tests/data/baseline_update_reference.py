#!/usr/bin/env python3
"""Reference outputs for tests/baseline_update_test.cc.

Our own re-statement, for the test, of what PyTorch's
benchmarks/dynamo/pr_time_benchmarks/check_results.py does when it writes its
reference expected-results file (read there; no code copied):
  - the new value replaces the old one only if
    abs(float(result - expected) * 100 / expected) > margin * 100 / 3;
  - the new value keeps the integer's leading four digits, the rest zeros,
    with Python's floor division;
  - each row is written by csv.writer (so the margin is Python's str(float))
    and followed by three empty rows; csv.writer ends lines with "\\r\\n".
Run it to write the files the test reads (next to this script):
  python3 tests/data/baseline_update_reference.py
"""
import csv
import io
import os

MARGINS = ["0.003", "0.006", "0.012", "0.15", "0.3", "0.015", "0.01", "0.1", "0.025", "0.2"]
EXPECTED = [1000, 3000, 10000, 283178305, 3066000000, 5703000000, 32120000000, 999, 7]


def leading_four(n):
    drop = len(str(abs(n))) - 4
    return n if drop <= 0 else (n // 10**drop) * 10**drop


def updated(e, r, margin):
    return leading_four(r) if abs(float(r - e) * 100 / e) > margin * 100 / 3 else e


def table():
    """(expected, result, margin text, new expected): around a third of each margin."""
    rows = []
    for text in MARGINS:
        m = float(text)
        for e in EXPECTED:
            third = int(e * m / 3)
            for d in sorted({third - 1, third, third + 1, third + 2, int(e * m), int(e * m * 2)}):
                for r in (e + d, e - d):
                    rows.append((e, r, text, updated(e, r, m)))
    return rows


def new_file(expected_text, results):
    """The file check_results.py writes, for an expected file and {key: result}."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    for row in csv.reader(io.StringIO(expected_text)):
        if not row:
            continue
        name, metric, e, m = row[0].strip(), row[1].strip(), int(row[2]), float(row[3])
        writer.writerow([name, metric, updated(e, results[(name, metric)], m), m])
        for _ in range(3):
            writer.writerow([])
    return out.getvalue()


FILE_IN = (
    "add_loop_eager,compile_time_instruction_count,3066000000,0.015\n\n\n\n"
    "add_loop_eager_dynamic, compile_time_instruction_count ,5703000000, 0.025\n"
    "basic_modules,compile_time_instruction_count,943000000,0.10\n\n"
    "update_hint,compile_time_instruction_count,1686000000,1e-2\n"
    "symint_sum,compile_time_instruction_count,3324000000,0.003\n"
    "sum_floordiv,compile_time_instruction_count,1031000000,0.3\n"
    "tiny,compile_time_instruction_count,1000,1\n"
)
FILE_RESULTS = {
    ("add_loop_eager", "compile_time_instruction_count"): 3123456789,
    ("add_loop_eager_dynamic", "compile_time_instruction_count"): 5702999999,
    ("basic_modules", "compile_time_instruction_count"): 1043210987,
    ("update_hint", "compile_time_instruction_count"): 1691000000,
    ("symint_sum", "compile_time_instruction_count"): 3327324000,
    ("sum_floordiv", "compile_time_instruction_count"): 1134100000,
    ("tiny", "compile_time_instruction_count"): 1400,
}


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "baseline_update_table.csv"), "w") as f:
        f.write("# expected,result,margin,new expected: written by baseline_update_reference.py\n")
        for e, r, text, new in table():
            f.write(f"{e},{r},{text},{new}\n")
    with open(os.path.join(here, "baseline_update_in.csv"), "w") as f:
        f.write(FILE_IN)
    with open(os.path.join(here, "baseline_update_results.csv"), "w") as f:
        for (name, metric), r in FILE_RESULTS.items():
            f.write(f"{name},{metric},{r}\n")
    with open(os.path.join(here, "baseline_update_out.csv"), "w", newline="") as f:
        f.write(new_file(FILE_IN, FILE_RESULTS))
