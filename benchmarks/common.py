"""Shared by the benchmark scripts: timing whole processes, and writing results into
docs/benchmarks.md between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers."""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
ARCHDSL = [sys.executable, "-m", "archdsl"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def timed(cmd, repeat=5):
    """Median wall time of a command (seconds) and its last completed process."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise RuntimeError(f"{cmd} failed:\n{result.stderr}")
    return statistics.median(times), result


# glibc's malloc hands large freed blocks back to the system and faults fresh pages in at the
# next allocation, depending on the heap's history: on the 2-core VM the same EfficientNet-B0
# forward took 19 ms or 27-35 ms, and archdsl's and torchvision's models, which allocate in a
# different order, came out up to 30% apart either way from one process to the next. Timing
# scripts fix the two thresholds, for both sides alike (as jemalloc or tcmalloc would).
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295"


def steady_malloc_env() -> dict:
    """The environment for a timed child process."""
    return {**os.environ, "GLIBC_TUNABLES": MALLOC_TUNABLES}


def with_steady_malloc() -> None:
    """Re-run this script under steady_malloc_env (on Linux, once)."""
    if sys.platform == "linux" and os.environ.get("GLIBC_TUNABLES") != MALLOC_TUNABLES:
        os.execve(sys.executable, [sys.executable, *sys.argv], steady_malloc_env())


def interleaved(rounds: int, first, second) -> tuple[list, list]:
    """The results of `rounds` calls of each of two measurements, in rounds whose order
    alternates (AB BA AB ...): neither always runs first, and slow drift of the machine
    affects both alike, so the i-th results of the two make a fair pair."""
    a, b = [], []
    for r in range(rounds):
        if r % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return a, b


def write_section(name: str, markdown: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text()
    if start not in text:
        raise SystemExit(f"docs/benchmarks.md has no {start} marker")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    DOC.write_text(f"{before}{start}\n{markdown.strip()}\n{end}{after}")
    print(f"updated docs/benchmarks.md ({name})")


def archdsl_train_speed(arguments: list[str]) -> float:
    """The last epoch's throughput (`images_per_s` in metrics.json: images, or a language
    model's sequences) of `archdsl train ARGUMENTS`, quiet, in a scratch run directory, under
    steady malloc."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(ARCHDSL + ["train", *arguments, "--no-progress",
                                         "--no-tensorboard", "--out", f"{tmp}/run"],
                              capture_output=True, text=True, cwd=ROOT, env=steady_malloc_env())
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        return json.loads(Path(tmp, "run", "metrics.json").read_text())[-1]["images_per_s"]


def hand_written_speed(script: str, payload: dict, key: str) -> float:
    """`key` of the JSON line a hand-written training script prints last, run with `payload`
    (JSON) as its argument, under steady malloc."""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(payload)],
                          capture_output=True, text=True, cwd=ROOT, env=steady_malloc_env())
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])[key]
