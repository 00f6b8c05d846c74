"""`archdsl zoo`: every network in a set of specs, side by side — input, parameters, MACs and
depth — as a table, as JSON, or as the bubble chart of Canziani, Paszke & Culurciello 2017
("An Analysis of Deep Neural Network Models for Practical Applications", seed 001)."""

from __future__ import annotations

import math

from pathlib import Path

from .diagnostics import Diagnostics
from .files import write_output
from .layers.registry import show
from .report import human

WEIGHTED = ("conv", "linear")  # families whose layers count towards depth


def depth(graph) -> int:
    """Weight layers on the longest path from the input to a main output: VGG-16 is 16,
    ResNet-50 is 50, GoogLeNet 22, DenseNet-121 121."""
    longest = {}
    for name, node in graph.items():
        before = max((longest[i] for i in node["inputs"]), default=0)
        weighted = node["layer"] is not None and node["layer"].family in WEIGHTED
        longest[name] = before + (1 if weighted else 0)
    return max(longest[graph.outputs[o]] for o in graph.main_outputs)


def collect(files: list[Path], diagnostics: Diagnostics) -> list[dict]:
    from .api import load_all

    rows = []
    for spec in load_all(files, diagnostics):
        path = spec.path
        for name in spec.concrete_networks():
            net = spec.elaborate(name, diagnostics=diagnostics)
            if net is None:
                continue
            rows.append({
                "file": str(path), "network": name, "input": list(net.input_shape),
                "input_layout": net.input_shape.layout, "input_text": ", ".join(
                    show(s) for s in net.input_shapes.values()),
                "params_total": net.params_total, "params_trainable": net.params_trainable,
                "params_nontrainable": net.params_nontrainable, "macs": net.macs,
                "flops": net.flops, "depth": depth(net.graph),
                "outputs": {o: list(s) for o, s in net.output_shapes.items()},
            })
    return rows


def table(rows: list[dict]) -> str:
    header = ("file", "network", "input", "params", "MACs", "depth")
    lines = [header] + [(Path(r["file"]).name, r["network"], r["input_text"],
                         f"{r['params_total']:,}", human(r["macs"]), str(r["depth"]))
                        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    aligns = ["<", "<", "<", ">", ">", ">"]
    out = ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(line, aligns, widths))
           for line in lines]
    out.insert(1, "─" * len(out[0]))
    return "\n".join(out)


def markdown(rows: list[dict]) -> str:
    """The table of docs/zoo.md (`archdsl zoo specs --markdown`)."""
    out = ["| file | network | input | total params | trainable | non-trainable | MACs | depth |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {Path(r['file']).name} | `{r['network']}` | {r['input_text']} | "
                   f"{r['params_total']:,} | {r['params_trainable']:,} | "
                   f"{r['params_nontrainable']:,} | {human(r['macs'])} | {r['depth']} |")
    return "\n".join(out) + "\n"


PLOT_FORMATS = (".png", ".svg", ".pdf")


def plot(rows: list[dict], path: Path) -> Path:
    """MACs against parameters, one labelled bubble per network (area ∝ parameters), coloured
    by spec file. Aliases (same file, same counts) share a bubble and a label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bubbles: dict[tuple, dict] = {}
    for r in rows:
        key = (r["file"], r["params_total"], r["macs"])
        bubbles.setdefault(key, {**r, "names": []})["names"].append(r["network"])
    points = list(bubbles.values())
    files = sorted({r["file"] for r in points})
    # 20 colours, then the same colours with another marker: every file its own look
    colours = {f: plt.cm.tab20(i % 20) for i, f in enumerate(files)}
    markers = {f: "osD^v"[i // 20 % 5] for i, f in enumerate(files)}
    fig, ax = plt.subplots(figsize=(16, 10))
    for r in points:
        # the area grows with the logarithm of the size (which the y axis shows already):
        # in proportion to it, Llama 2 70B's disc would cover a third of the chart
        area = 10 + 45 * math.log10(max(r["params_total"], 50_000) / 50_000)
        ax.scatter(r["macs"] / 1e9, r["params_total"] / 1e6, s=area,
                   color=colours[r["file"]], marker=markers[r["file"]], alpha=0.45,
                   edgecolors="black", linewidths=0.5, zorder=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    macs = [r["macs"] / 1e9 for r in points]
    params = [r["params_total"] / 1e6 for r in points]
    ax.set_xlim(min(macs) / 2, max(macs) * 5)  # room for labels on both sides
    ax.set_ylim(min(params) / 1.6, max(params) * 1.8)
    ax.set_xlabel("MACs per image (G multiply-adds, log scale)")
    ax.set_ylabel("parameters (millions, log scale)")
    ax.set_title("Networks of the zoo: computation against size "
                 "(after Canziani, Paszke & Culurciello 2017)")
    ax.grid(True, which="both", alpha=0.25)
    for f in files:
        ax.scatter([], [], color=colours[f], marker=markers[f], alpha=0.6, label=Path(f).name)
    legend = ax.legend(title="spec file", fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    left_out = _place_labels(fig, ax, points, avoid=[legend])
    if left_out:
        ax.text(0.995, 0.005, f"{left_out} labels left out where they would overlap others "
                "(docs/zoo.md lists every network)", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=7, color="#555555")
    try:
        write_output(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)
    return path


def _place_labels(fig, ax, points, fontsize=7, avoid=()) -> int:
    """Greedy placement: each label takes the first nearby spot that overlaps no label so far
    (nor the artists in `avoid`, the legend); one that finds none is left out, never drawn
    over another. Returns how many were left out."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    taken = [artist.get_window_extent(renderer) for artist in avoid]
    offsets = [(6, 2), (6, -10), (-6, 2), (-6, -10), (6, 12), (-6, 12), (6, -20), (-6, -20),
               (0, 18), (0, -26), (12, 22), (-12, 22), (12, -32), (-12, -32), (24, 34),
               (-24, 34), (24, -44), (-24, -44), (36, 0), (-36, 0), (40, 48), (-40, 48),
               (40, -58), (-40, -58)]
    left_out = 0
    for r in sorted(points, key=lambda r: (-r["params_total"], r["macs"])):
        text = " = ".join(r["names"])
        xy = (r["macs"] / 1e9, r["params_total"] / 1e6)
        for dx, dy in offsets:
            label = ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points",
                                fontsize=fontsize, ha="left" if dx >= 0 else "right", zorder=3)
            box = label.get_window_extent(renderer).expanded(1.02, 1.1)
            if not any(box.overlaps(other) for other in taken):
                taken.append(box)
                if abs(dy) > 12 or abs(dx) > 6:
                    ax.annotate("", xy, xytext=(dx, dy), textcoords="offset points",
                                arrowprops=dict(arrowstyle="-", color="#888888", lw=0.5))
                break
            label.remove()
        else:
            left_out += 1
    return left_out
