"""Analysis speed: `archdsl summary` and `archdsl check` as whole processes (torch is never
imported by either).

    .venv/bin/python benchmarks/analysis_speed.py [--write]

Median of 5 runs. Targets: summary of any zoo network <= 0.3 s; check of the whole zoo <= 1 s.
The comparison with torchinfo and fvcore belongs to the benchmarks issue.
"""

import sys

from common import ARCHDSL, machine, timed, write_section

NETWORKS = [("vgg.arch", "vgg19"), ("resnet.arch", "resnet152"), ("alexnet.arch", "alexnet_cifar10"),
            ("lenet.arch", "lenet5")]


def main():
    rows = []
    for file, name in NETWORKS:
        seconds, done = timed(ARCHDSL + ["summary", f"specs/{file}", name, "--json"])
        layers = done.stdout.count('"name"')
        rows.append((f"`summary {name}`", seconds, f"{layers} layers"))
    seconds, done = timed(ARCHDSL + ["check", "specs"])
    rows.append(("`check specs/`", seconds, done.stdout.strip()))
    table = ["| command | median wall time | notes |", "|---|---|---|"]
    table += [f"| {c} | {s * 1000:.0f} ms | {n} |" for c, s, n in rows]
    worst_summary = max(s for c, s, _ in rows if "summary" in c)
    text = "\n".join([f"Machine: {machine()}.", "", *table, "",
                      f"Slowest summary {worst_summary * 1000:.0f} ms (target 300 ms); "
                      f"check of the zoo {rows[-1][1] * 1000:.0f} ms (target 1,000 ms)."])
    print(text)
    if "--write" in sys.argv:
        write_section("analysis-speed", text)


if __name__ == "__main__":
    main()
