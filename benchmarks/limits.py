"""How long archdsl takes to answer hostile specs: resource bombs beyond the limits of
archdsl/limits.py (refused) and the most expensive specs within them (accepted), each timed as
a whole `archdsl check` process (`summary` where marked; median of 3). Target: every answer
within 2 s.

The second table holds the specs of the security issue that hung or took many seconds before
work on values was metered by size (tests/test_security.py runs the same ones with a generous
bound). Machines differ: the line "Python speed" times a fixed pure-Python loop, to compare a
run with another machine's.

    .venv/bin/python benchmarks/limits.py [--write] [--only NAME]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ARCHDSL, ROOT, machine, write_section

sys.path.insert(0, str(ROOT))  # archdsl from this checkout, for its limits
from archdsl.limits import MAX_NODES  # noqa: E402

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
    "layers": (f"{MAX_NODES + 1:,} layers", NETWORK + f"    relu x {MAX_NODES + 1}\n"),
    "layers_at_limit": (f"{MAX_NODES:,} layers (accepted)", NETWORK + f"    relu x {MAX_NODES}\n"),
    "block_tree": ("2**40 block calls", TREE + NETWORK + "    tree(40)\n"),
    "function_tree": ("fib(60) by double recursion", FIB + NETWORK + "    conv(fib(60), 1)\n"),
    "loops": ("six nested loops of 10", nested_repeats(6, 10)),
    "many_networks": (f"100 variants of a {MAX_NODES * 9 // 10:,}-layer network",
                      NETWORK + f"    relu x {MAX_NODES * 9 // 10}\n"
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


def tree(name, depth):
    """Lets building a binary tree of lists that shares its halves: 2**depth leaves."""
    lines = [f"    let {name}0 = [0]"]
    lines += [f"    let {name}{i} = [{name}{i - 1}, {name}{i - 1}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


# name -> (what it tries, spec text, command): the specs that hung or were slow before values
# were metered by size (issue 15). "FIFO" stands for a folder holding a FIFO named *.arch.
VALUES = {
    "round_digits": ("`round(5, -30000000)`", NETWORK + "    let a = round(5, -30000000)\n"
                     "    relu\n", "check"),
    "list_in_a_loop": ("a million-item list built 40,000 times", NETWORK + "    repeat 40000:\n"
                       "        let n = len([0] * 1000000)\n    relu\n", "check"),
    "list_copied": ("a 500,000-item list copied 40,000 times", NETWORK + "    let xs = [0] * "
                    "500000\n    repeat 40000:\n        let n = len(xs + xs)\n    relu\n", "check"),
    "shared_message": ("a shared 999,999-item list in a message", NETWORK + "    let a = [0] * 1000\n"
                       "    let b = [a] * 999\n    dropout(b)\n", "check"),
    "shared_title": ("the same list as a block's argument (its title)", "block blk(v):\n"
                     "    relu\n" + NETWORK + "    let a = [0] * 1000\n    let b = [a] * 999\n"
                     "    blk(b)\n    blk(b)\n", "check"),
    "tree_equality": ("equality of two shared trees of 2**40 leaves", NETWORK + tree("t", 40)
                      + tree("u", 40) + "    relu when t40 == u40\n", "check"),
    "adaptive_width": ("`adaptive_avgpool` to a width of 10**9", "network n:\n    input 1x1x"
                       "1000000000\n    adaptive_avgpool(1x1000000000)\n", "check"),
    "trillion_zeros": ("`dropout([[0] * 1000000] * 1000000)`", NETWORK + "    dropout([[0] * "
                       "1000000] * 1000000)\n", "check"),
    "fifo": ("`archdsl check FOLDER` with a FIFO named x.arch", "FIFO", "check"),
    "unknown_repeated": ("`nosuchlayer x 50000`", NETWORK + "    nosuchlayer x 50000\n",
                         "check"),
    "nested_repeats": ("`[linear() x 50000] x 8`", NETWORK + "    [linear() x 50000] x 8\n",
                       "check"),
    "variant_chain": ("a chain of 2,500 variants", NETWORK + "    relu\nnetwork v0 = n()\n"
                      + "".join(f"network v{i} = v{i - 1}()\n" for i in range(1, 2500)), "check"),
    "convs_check": ("100,000 convolutions", "network n:\n    input 1x4x4\n"
                    "    conv(1, 1) x 100000\n", "check"),
    "convs_within": ("as many convolutions as the work allows (accepted)", "network n:\n"
                     "    input 1x4x4\n    conv(1, 1) x 45000\n", "check"),
    "convs_summary": ("the same, `summary` (accepted)", "network n:\n    input 1x4x4\n"
                      "    conv(1, 1) x 45000\n", "summary"),
    "expression_bomb": ("a 3,000-term function body called 40,000 times", "def f(n) = "
                        + "+".join(["n"] * 3000) + "\n" + NETWORK + "    repeat 40000:\n"
                        "        let a = f(1)\n    relu\n", "check"),
}


def run(path: Path, command: str = "check"):
    times, result = [], None
    for _ in range(3):
        start = time.perf_counter()
        result = subprocess.run([*ARCHDSL, command, str(path)], capture_output=True, text=True,
                                cwd=ROOT, timeout=120)
        times.append(time.perf_counter() - start)
    first = (result.stderr or result.stdout).strip().splitlines()[0]
    return statistics.median(times), result.returncode, first


def python_speed() -> float:
    """Seconds for ten million additions in a Python loop (best of 3): this machine's speed."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def measure(cases: dict, folder: str, only) -> list:
    rows = []
    for name, (what, text, *rest) in cases.items():
        if only and name not in only:
            continue
        command = rest[0] if rest else "check"
        path = Path(folder) / f"{name}.arch"
        if text == "FIFO":  # a folder with a spec and a FIFO named like one
            path = Path(folder) / name
            path.mkdir()
            (path / "ok.arch").write_text(NETWORK + "    relu\n")
            os.mkfifo(path / "pipe.arch")
        else:
            path.write_text(text)
        seconds, status, first = run(path, command)
        rows.append((what, seconds, status, first.replace("|", "\\|")))
        print(f"{name:18s} {seconds:5.2f} s  exit {status}  {first}", flush=True)
    return rows


def table(rows) -> list[str]:
    lines = ["| spec | time | exit | answer |", "|---|---:|---:|---|"]
    return lines + [f"| {what} | {s:.2f} s | {status} | `{first[:110]}` |"
                    for what, s, status, first in rows]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--only", action="append", help="time only these (names as printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bombs = measure(BOMBS, folder, args.only)
        values = measure(VALUES, folder, args.only)
    speed = python_speed()
    worst = max(s for _, s, _, _ in bombs + values)
    text = "\n".join([
        f"Machine: {machine()}; whole `archdsl` processes, median of 3. Python speed: ten "
        f"million additions in a loop take {speed:.2f} s here.", "",
        "Resource bombs, and the largest specs within the limits:", "", *table(bombs), "",
        "Values metered by size, files that are not files, repeated errors (the specs that hung "
        "or took seconds before):", "", *table(values), "",
        f"Slowest answer {worst:.2f} s (target 2 s: {'met' if worst <= 2 else 'missed'})."])
    print(text)
    if args.write and not args.only:
        write_section("limits", text)


if __name__ == "__main__":
    main()
