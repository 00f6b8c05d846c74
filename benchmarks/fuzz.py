"""The long fuzz run: tests/test_fuzz.py's fuzzers with many cases each (hypothesis, random
seeds; the value-heavy and `use` fuzzers a third as many), logging every case's time and
outcome; then a summary. Target: no traceback (any exception other than a diagnostic fails the
run), no leaked file, and no case slower than 2 s. Then random command lines
(benchmarks/cli_fuzz.py): no exit status 3, no traceback.

    .venv/bin/python benchmarks/fuzz.py [--cases 6000] [--cli-cases 2000] [--write]
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import ROOT, machine, write_section


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=6000, help="per fuzzer")
    parser.add_argument("--cli-cases", type=int, default=2000, help="random command lines")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--slow", metavar="FILE", help="keep the cases slower than 1 s here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        log = os.path.join(folder, "fuzz.log")
        env = {**os.environ, "ARCHDSL_FUZZ_EXAMPLES": str(args.cases), "ARCHDSL_FUZZ_LOG": log}
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "tests/test_fuzz.py", "-k",
                                 "mutated or random or value_heavy or use_of_links or "
                                 "language_server"],
                                cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        print(result.stdout[-3000:], result.stderr[-3000:])
        rows = [line.split("\t") for line in open(log).read().splitlines()]
        if args.slow and os.path.exists(log + ".slow"):
            shutil.copy(log + ".slow", args.slow)
    times = [float(t) for t, _, _ in rows]
    outcomes = collections.Counter(code for _, code, _ in rows)
    accepted = outcomes.pop("ok", 0)
    codes = ", ".join(f"{code} {n}" for code, n in outcomes.most_common())
    slowest = max(times)
    passed = result.returncode == 0
    text = "\n".join([
        f"Machine: {machine()}. {len(rows):,} cases ({args.cases:,} requested per fuzzer; "
        f"hypothesis also replays and shrinks) in {wall / 60:.1f} min: "
        f"{'no failure' if passed else 'FAILED: see the run'}.", "",
        f"- accepted and checked against PyTorch: {accepted:,}",
        f"- answered with a diagnostic: {sum(outcomes.values()):,} (first codes: {codes})",
        f"- slowest case {slowest:.3f} s; median {sorted(times)[len(times) // 2] * 1000:.1f} ms "
        f"(target: none over 2 s: {'met' if slowest <= 2 else 'missed'})"])
    # then the command line (benchmarks/cli_fuzz.py)
    from cli_fuzz import run_cases, summary

    start = time.perf_counter()
    cli = run_cases(args.cli_cases)
    cli_passed = not cli["failures"]
    for argv, status, err in cli["failures"][:10]:
        print("FAILED:", argv, status, err, sep="\n")
    text += "\n- command lines (`benchmarks/cli_fuzz.py`): " + summary(
        cli, args.cli_cases, time.perf_counter() - start)
    passed = passed and cli_passed
    print(text)
    if args.write and passed:
        write_section("fuzz", text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
