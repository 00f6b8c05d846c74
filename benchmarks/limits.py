"""How long archdsl takes to answer hostile specs: resource bombs beyond the limits of
archdsl/limits.py (refused) and the most expensive specs within them (accepted), each timed as
a whole `archdsl check` process (median of 3). Target: every answer within 2 s.

    .venv/bin/python benchmarks/limits.py [--write]
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import ARCHDSL, ROOT, machine, write_section

NETWORK = "network n:\n    input 3x8x8\n"
TREE = "block tree(n):\n    if n > 0:\n        tree(n - 1)\n        tree(n - 1)\n    else:\n        identity\n"
FIB = "def fib(n) = 1 if n < 2 else fib(n - 1) + fib(n - 2)\n"


def nested_repeats(depth, count):
    lines = [NETWORK.rstrip("\n")]
    for level in range(1, depth + 1):
        lines.append("    " * level + f"repeat {count}:")
    lines.append("    " * (depth + 1) + "let a = 1")
    return "\n".join(lines) + "\n    relu\n"


# name -> (what it tries, spec text)
BOMBS = {
    "layers": ("100,001 layers", NETWORK + "    relu x 100001\n"),
    "layers_at_limit": ("100,000 layers (accepted)", NETWORK + "    relu x 100000\n"),
    "block_tree": ("2**40 block calls", TREE + NETWORK + "    tree(40)\n"),
    "function_tree": ("fib(60) by double recursion", FIB + NETWORK + "    conv(fib(60), 1)\n"),
    "loops": ("six nested loops of 10", nested_repeats(6, 10)),
    "many_networks": ("100 variants of a 90,000-layer network", NETWORK + "    relu x 90000\n"
                      + "".join(f"network v{i} = n()\n" for i in range(100))),
    "power_tower": ("2 ** 2 ** 100", NETWORK + "    conv(2 ** 2 ** 100, 1)\n"),
    "huge_tensor": ("a 2**48-element feature map", "network n:\n    input 3x65536x65536\n"
                    "    conv(65536, 1)\n"),
    "huge_layer": ("a 2**42-parameter linear layer", "network n:\n    input 2097152\n"
                   "    linear(2097152)\n"),
    "long_list": ("a list of 10**8 items", NETWORK + "    let xs = [0] * 100000000\n    relu\n"),
    "long_string": ("a string doubled 40 times", "def grow(s, n) = s if n == 0 else "
                    "grow(s + s, n - 1)\n" + NETWORK + '    let s = grow("ab", 40)\n    relu\n'),
    "operator_chain": ("20,000 `+` in one expression", NETWORK + "    conv("
                       + "+".join(["1"] * 20000) + ", 1)\n"),
    "brackets": ("1,000 nested brackets", NETWORK + "    conv(" + "(" * 1000 + "1"
                 + ")" * 1000 + ", 1)\n"),
    "big_file": ("a 1 MiB spec", NETWORK + "    relu\n" * (2 ** 20 // 9)),
    "largest_file": ("a 64 KiB spec of 10,900 steps (accepted)",
                     NETWORK + "    relu relu relu relu relu relu\n" * 1800),
}


def run(path: Path):
    times, result = [], None
    for _ in range(3):
        start = time.perf_counter()
        result = subprocess.run([*ARCHDSL, "check", str(path)], capture_output=True, text=True,
                                cwd=ROOT)
        times.append(time.perf_counter() - start)
    first = (result.stderr or result.stdout).strip().splitlines()[0]
    return statistics.median(times), result.returncode, first


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (what, text) in BOMBS.items():
            path = Path(folder) / f"{name}.arch"
            path.write_text(text)
            seconds, status, first = run(path)
            rows.append((what, seconds, status, first.replace("|", "\\|")))
            print(f"{name:16s} {seconds:5.2f} s  exit {status}  {first}", flush=True)
    worst = max(s for _, s, _, _ in rows)
    table = ["| spec | time | exit | answer |", "|---|---:|---:|---|"]
    table += [f"| {what} | {s:.2f} s | {status} | `{first[:110]}` |"
              for what, s, status, first in rows]
    text = "\n".join([f"Machine: {machine()}; whole `archdsl check` process, median of 3.", "",
                      *table, "", f"Slowest answer {worst:.2f} s (target 2 s: "
                      f"{'met' if worst <= 2 else 'missed'})."])
    print(text)
    if args.write:
        write_section("limits", text)


if __name__ == "__main__":
    main()
