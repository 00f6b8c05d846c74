"""Layer graph → Graphviz diagram.

One node per layer, labelled in the spec's own notation (`conv 3x3, 64, /2`) with its output
shape and parameter count; labels, block calls, merges and side outputs drawn as nested
clusters titled with the spec's names, so the picture has the hierarchy of the spec. Merges
are small circles (+, ×) or a `concat` bar, side outputs are notes, edges carry tensor shapes,
and colours follow layer families (legend in the corner). `depth` collapses every frame deeper
than that many levels into one node with its totals, so ResNet-152 fits on a page.

Writing DOT text needs nothing but the `graphviz` Python package; rendering to SVG, PNG or PDF
needs Graphviz's `dot` program.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from pathlib import Path

from ..files import write_output
from ..layers.registry import Params, show
from ..report import describe, human

FAMILY_COLOURS = {
    "conv": "#cfe2f3", "linear": "#d9d2e9", "norm": "#fff2cc", "activation": "#d9ead3",
    "pool": "#fce5cd", "regularization": "#f4cccc", "structure": "#eeeeee", "merge": "#ffffff",
    "block": "#e8eef7", "resample": "#d0e0e3", "attention": "#ead1dc",
}
FAMILY_NAMES = {
    "conv": "convolution", "linear": "fully connected", "norm": "normalisation",
    "activation": "activation", "pool": "pooling", "regularization": "dropout",
    "structure": "reshaping", "block": "collapsed block", "resample": "resampling",
    "attention": "attention and embedding",
}
OTHER = "#f3f3f3"  # families of layers from plugins
CLUSTER_COLOURS = {"label": "#7f8c8d", "block": "#95a5a6", "merge": "#bdc3c7",
                   "branch": "#d5dbdb", "output": "#c0392b"}
FORMATS = ("svg", "png", "pdf", "dot")


# Graphviz's layout time grows faster than linearly; 5,000 boxes take a few seconds, and
# 100,000 crash `dot`. Beyond this the user is asked for a shallower --depth.
MAX_DIAGRAM_BOXES = 5_000
_NODE_STATEMENT = re.compile(r'^\t+(?:"[^"]*"|[\w.]+) \[')


class DiagramError(Exception):
    def __init__(self, message: str, help: str | None = None):
        super().__init__(message)
        self.message = message
        self.help = help


def _label(title: str, *lines: str) -> str:
    body = "".join(f'<br/><font point-size="9" color="#444444">{html.escape(line)}</font>'
                   for line in lines if line)
    return f"<<b>{html.escape(title)}</b>{body}>"


def _params_text(params) -> str:
    total = params.total
    if total == 0:
        return ""
    return f"{total:,} params" if total < 10_000 else f"{human(total)} params"


class _Group:
    """A collapsed frame: one node standing for everything inside it."""

    def __init__(self, entry):
        self.entry = entry
        self.members: list[str] = []
        self.params = Params()
        self.macs = 0


def to_dot(net, *, depth: int | None = None, rankdir: str = "TB", names: bool = False,
           dpi: int | None = None):
    """A graphviz.Digraph of the network. `names`: each layer also shows its name in the
    built module (its state_dict keys' prefix, `encoder.0.add1.1.linear`); `dpi`: the
    resolution of raster formats (PNG)."""
    import graphviz

    from .codegen import module_path

    g = net.graph
    t = net.totals
    inputs = show(g.input_shape) if len(g.inputs) == 1 else ", ".join(
        f"{n} {show(s)}" for n, s in g.input_shapes().items())
    title = (f"{g.name}  —  input{'s' if len(g.inputs) > 1 else ''} {inputs}  ·  "
             f"{t.params_total:,} params  ·  {human(t.macs)} MACs")
    dot = graphviz.Digraph(g.name, graph_attr={
        "rankdir": rankdir, "fontname": "Helvetica", "fontsize": "14", "label": title,
        "labelloc": "t", "labeljust": "l", "nodesep": "0.25", "ranksep": "0.3",
        "newrank": "true", "compound": "true", **({"dpi": str(dpi)} if dpi else {})},
        node_attr={"fontname": "Helvetica", "fontsize": "10", "shape": "box",
                   "style": "rounded,filled", "margin": "0.08,0.04", "height": "0.3"},
        edge_attr={"fontname": "Helvetica", "fontsize": "8", "fontcolor": "#666666",
                   "color": "#555555", "arrowsize": "0.6"})

    # identity layers are drawn as plain edges
    source_of = {}
    for name, node in g.graph.nodes(data=True):
        source_of[name] = source_of[node["inputs"][0]] if node["kind"] == "identity" else name

    def collapsed_into(node):
        """The frame a node is drawn as (depth collapsing), or None to draw it itself."""
        scope = node["scope"]
        if depth is None or node["kind"] in ("input", "output") or len(scope) < depth:
            return None
        return scope[depth - 1]

    groups: dict[str, _Group] = {}
    represent: dict[str, str] = {}
    for name, node in g.graph.nodes(data=True):
        if node["kind"] == "identity":
            continue
        entry = collapsed_into(node)
        if entry is None:
            represent[name] = name
            continue
        group = groups.setdefault(entry.path, _Group(entry))
        group.members.append(name)
        group.params += node["params"]
        group.macs += node["macs"]
        represent[name] = "group/" + entry.path

    # which cluster each drawn node sits in, in the network's order (a collapsed frame at
    # the place of its first layer)
    placed = defaultdict(list)  # cluster path (tuple of entries) -> [(node id, attributes)]
    families = set()
    for name, node in g.graph.nodes(data=True):
        if node["kind"] == "identity":
            continue
        if represent[name] == name:
            attrs = _node_attrs(g, name, node, ".".join(module_path(name)) if names and
                                node["layer"] is not None and not node["layer"].is_merge
                                else "")
            families.add(node["layer"].family if node["layer"] is not None else None)
            scope = node["scope"] if depth is None else node["scope"][:depth - 1]
            placed[scope].append((name, attrs))
            continue
        group = groups[represent[name][len("group/"):]]
        if group.members[0] != name:
            continue
        last = _group_output(g, group, represent)
        title = group.entry.title + _repeat_text(g, group.entry.path)
        if len(group.members) == 1:  # a frame of one layer: keep the layer's notation
            title = f"{title} · {describe(g[group.members[0]])}"
        attrs = {"label": _label(title, *([group.entry.path] if names else []),
                                 show(g[last]["shape"]),
                                 _params_text(group.params),
                                 f"{human(group.macs)} MACs" if group.macs else ""),
                 "fillcolor": FAMILY_COLOURS["block"], "style": "rounded,filled,bold"}
        families.add("block")
        placed[node["scope"][:depth - 1]].append((represent[name], attrs))

    _emit_clusters(dot, placed)

    drawn = set()
    for u, v in g.graph.edges():
        if g[v]["kind"] == "identity":
            continue
        src = represent[source_of[u]]
        dst = represent[v]
        if src == dst or (src, dst) in drawn:
            continue
        drawn.add((src, dst))
        layer = g[v]["layer"]
        if layer is not None and not layer.is_merge and u != g[v]["inputs"][0] \
                and not layer.reads_shape_inputs:
            # a tensor whose size alone the layer reads (`upsample(like=input)`)
            dot.edge(src, dst, label=" size", style="dashed")
        else:
            dot.edge(src, dst, label=" " + show(g[source_of[u]]["shape"]))

    _legend(dot, families - {None, "merge"})
    return dot


def _repeat_text(g, path: str) -> str:
    """` · bottleneck(c=64) × 3` for a collapsed frame that holds one block repeated (a
    stage, a transformer's encoder), else ""."""
    frame = g.frames.get(path)
    if frame is None:
        return ""
    kids = [g.frames.get(p) for kind, p in frame.children if kind == "frame"]
    nodes = [p for kind, p in frame.children if kind == "node"]
    if len(kids) < 2 or nodes or any(k is None or k.kind != "block" for k in kids):
        return ""
    calls = {k.block for k in kids}
    if len(calls) != 1:
        return ""
    call = kids[0].title if len({k.title for k in kids}) == 1 else next(iter(calls))
    return f" · {call} × {len(kids)}"


def _node_attrs(g, name, node, module: str = "") -> dict:
    kind = node["kind"]
    if kind == "input":
        title = "input" if name == "input" and len(g.inputs) == 1 else \
            f"input `{next(n for n, v in g.inputs.items() if v == name)}`"
        return {"label": _label(title, show(node["shape"])), "shape": "box",
                "style": "filled", "fillcolor": "#ffffff", "penwidth": "1.5"}
    if kind == "output":
        out = node["output"]
        if out in g.main_outputs:
            title = "output" if out == "output" else f"output `{out}`"
            return {"label": _label(title, show(node["shape"])), "style": "filled",
                    "fillcolor": "#ffffff", "penwidth": "1.5"}
        return {"label": _label(f"side output `{out}`", show(node["shape"])), "shape": "note",
                "style": "filled", "fillcolor": "#fadbd8", "color": "#c0392b"}
    layer = node["layer"]
    if layer.is_merge:
        symbol = {"add": "+", "mul": "×"}.get(kind)
        if symbol:
            return {"label": symbol, "shape": "circle", "style": "filled", "fillcolor": "#ffffff",
                    "fixedsize": "true", "width": "0.3", "fontsize": "14",
                    "tooltip": f"{name}: {kind} → {show(node['shape'])}"}
        return {"label": _label(kind, show(node["shape"])), "shape": "box", "style": "filled",
                "fillcolor": "#ffffff", "penwidth": "2"}
    return {"label": _label(describe(node), *([module] if module else []), show(node["shape"]),
                            _params_text(node["params"])),
            "fillcolor": FAMILY_COLOURS.get(layer.family, OTHER), "tooltip": name}


def _group_output(g, group, represent) -> str:
    """The node whose value leaves the collapsed frame: the last with a consumer outside."""
    key = represent[group.members[0]]
    for name in reversed(group.members):
        if any(represent.get(s) != key for s in g.graph.successors(name)) or \
                not any(True for _ in g.graph.successors(name)):
            return name
    return group.members[-1]


def _emit_clusters(dot, placed) -> None:
    """Nested `cluster_` subgraphs, one per frame, titled with the spec's names."""
    tree: dict = {}
    for scope, nodes in placed.items():
        level = tree
        for entry in scope:
            level = level.setdefault(entry, {})
        level.setdefault(None, []).extend(nodes)

    def emit(graph, level):
        for name, attrs in level.get(None, []):
            graph.node(name, **attrs)
        for entry, sub in level.items():
            if entry is None:
                continue
            if list(sub) == [None] and len(sub[None]) == 1 and entry.kind != "output":
                # a frame around a single layer: its title goes into the layer's label
                name, attrs = sub[None][0]
                graph.node(name, **{**attrs, "label": _titled(entry.title, attrs["label"])})
                continue
            with graph.subgraph(name="cluster_" + (entry.path or "root")) as c:
                c.attr(label=entry.title, style="rounded,dashed" if entry.kind == "branch"
                       else "rounded", color=CLUSTER_COLOURS.get(entry.kind, "#999999"),
                       fontcolor="#333333", fontsize="10", labeljust="l", margin="8")
                emit(c, sub)

    emit(dot, tree)


def _titled(title: str, label: str) -> str:
    """An HTML label with a small title line above it."""
    inner = label[1:-1] if label.startswith("<") else html.escape(label)
    return f'<<font point-size="8" color="#555555">{html.escape(title)}</font><br/>{inner}>'


def _legend(dot, families) -> None:
    if not families:
        return
    rows = "".join(
        f'<tr><td bgcolor="{FAMILY_COLOURS.get(f, OTHER)}" width="14"> </td>'
        f'<td align="left"><font point-size="9">{html.escape(FAMILY_NAMES.get(f, f))}</font></td></tr>'
        for f in sorted(families))
    dot.node("legend", label=f'<<table border="0" cellspacing="2" cellpadding="2">{rows}</table>>',
             shape="box", style="rounded", color="#bbbbbb")


def render(net, path: str | Path, *, depth: int | None = None, rankdir: str = "TB",
           names: bool = False, dpi: int | None = None) -> Path:
    """Write the diagram to `path`; the format comes from its extension."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise DiagramError(f"cannot draw to `{path.name}`: unknown format `.{fmt}`",
                           help="use .svg, .png, .pdf or .dot")
    if dpi is not None and fmt != "png":
        raise DiagramError(f"--dpi sets the resolution of a .png; `{path.name}` is "
                           f"{'a vector format' if fmt in ('svg', 'pdf') else 'DOT text'}",
                           help="leave out --dpi, or draw to NAME.png")
    layers = sum(1 for _ in net.graph.layers())
    if depth is None and layers > MAX_DIAGRAM_BOXES and fmt != "dot":  # known without drawing
        boxes = layers
    else:
        dot = to_dot(net, depth=depth, rankdir=rankdir, names=names, dpi=dpi)
        boxes = sum(1 for line in dot.body if _NODE_STATEMENT.match(line))
    if boxes > MAX_DIAGRAM_BOXES and fmt != "dot":
        raise DiagramError(
            f"the diagram would have {boxes:,} boxes; Graphviz lays out at most "
            f"{MAX_DIAGRAM_BOXES:,} in reasonable time", help="draw fewer levels with --depth "
            "(repeats of one block fold into one box), or write DOT text with -o NAME.dot")
    if fmt == "dot":
        return write_output(path, dot.source.encode())
    import graphviz

    try:
        # quiet: Graphviz's own warnings (sizes, fonts) mean nothing to the spec's author
        data = dot.pipe(format=fmt, quiet=True)
    except graphviz.CalledProcessError as error:
        raise DiagramError(f"Graphviz's `dot` failed ({error.returncode}) on this diagram",
                           help="draw fewer levels with --depth, or write DOT text with -o "
                                "NAME.dot") from None
    except graphviz.ExecutableNotFound:
        raise DiagramError(
            "Graphviz's `dot` program is not installed, so the diagram cannot be rendered",
            help="install Graphviz (apt-get install graphviz, brew install graphviz, or "
                 "https://graphviz.org/download/), or write DOT text with -o NAME.dot") from None
    return write_output(path, data)


class Diagram:
    """A network's diagram for notebooks: Jupyter shows it (`_repr_svg_`); `source` is its
    DOT text. Made by `net.draw(depth=...)` without a path."""

    def __init__(self, net, **options):
        self.dot = to_dot(net, **options)

    @property
    def source(self) -> str:
        return self.dot.source

    def _repr_svg_(self):
        try:
            return self.dot.pipe(format="svg", quiet=True).decode()
        except Exception:  # no Graphviz: Jupyter falls back to the text repr
            return None
