"""Regenerate docs/gallery.md and its SVGs: every network of the zoo at a readable depth.

    make gallery        (or: .venv/bin/python scripts/gallery.py)

Small networks are drawn in full; larger ones at depth 2 (blocks as nodes), or depth 1 when
that is still too many nodes. Aliases (the same network under another name) are drawn once.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.backends.diagram import to_dot  # noqa: E402
from archdsl.report import human  # noqa: E402

OUT = ROOT / "docs" / "gallery"
MAX_NODES = 60


def drawn_nodes(dot) -> int:
    return len(re.findall(r"^\s+\S+ \[label=", dot.source, re.M))


def choose(net):
    if len(net.graph) <= 45:
        return None, to_dot(net)
    for depth in (2, 1):
        dot = to_dot(net, depth=depth)
        if drawn_nodes(dot) <= MAX_NODES or depth == 1:
            return depth, dot


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.svg"):
        old.unlink()
    lines = ["# Gallery", "",
             "Every network of the zoo, drawn by `archdsl draw` from its spec. Regenerate with",
             "`make gallery`. Depth: *full* shows every layer; 2 and 1 collapse deeper blocks into",
             "one node each (with their parameters and MACs), as `--depth` does.", ""]
    seen = set()
    for path in sorted((ROOT / "specs").glob("*.arch")):
        spec = archdsl.load(path)
        lines += [f"## {path.name}", ""]
        for name in spec.concrete_networks():
            net = spec.network(name)
            key = (path.name, net.params_total, net.macs, len(net.graph))
            if key in seen:
                lines.append(f"- `{name}`: the same network as one above")
                continue
            seen.add(key)
            depth, dot = choose(net)
            (OUT / f"{name}.svg").write_bytes(dot.pipe(format="svg"))
            lines.append(f"### {name}")
            lines.append("")
            lines.append(f"{net.params_total:,} parameters, {human(net.macs)} MACs, input "
                         f"{'x'.join(map(str, net.input_shape))}; depth "
                         f"{'full' if depth is None else depth}.")
            lines.append("")
            lines.append(f"![{name}](gallery/{name}.svg)")
            lines.append("")
    (ROOT / "docs" / "gallery.md").write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote docs/gallery.md and {len(seen)} SVGs in docs/gallery/")


if __name__ == "__main__":
    main()
