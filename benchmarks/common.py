"""Shared by the benchmark scripts: timing whole processes, and writing results into
docs/benchmarks.md between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers."""

import os
import platform
import statistics
import subprocess
import sys
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


def write_section(name: str, markdown: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text()
    if start not in text:
        raise SystemExit(f"docs/benchmarks.md has no {start} marker")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    DOC.write_text(f"{before}{start}\n{markdown.strip()}\n{end}{after}")
    print(f"updated docs/benchmarks.md ({name})")
