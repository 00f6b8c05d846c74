"""The layer graph: a network after elaboration, the IR that every later stage reads.

A `networkx.DiGraph` whose nodes are keyed by hierarchical name (`conv3_x.0.add.0.conv1`) and
inserted in a topological order (the order of elaboration). Each node carries:

    kind      the layer kind's name, or "input" / "output"
    layer     the LayerKind from the registry (None for input and output)
    args      every argument, defaults filled in and normalised
    inputs    the names of its inputs, in order (edges say the same, without the order)
    shape     its output shape: (C, H, W) or (F,), batch excluded
    span      the source it came from
    notation  the table notation it was written in (`conv3-64`), if any
    scope     the frames around it, outermost first (labels, block calls, merges, branches)
    output    for output nodes: the output's name (`output` for the main one)

Passes add their results to the node dict (passes/cost.py adds params, macs, flops).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True)
class ScopeEntry:
    """One frame around a node: its path, what made it, and its title for diagrams."""

    path: str
    kind: str  # label | block | merge | branch | output
    title: str


@dataclass
class FrameRecord:
    """A frame of the spec (label, block call, merge, branch, output) as the graph keeps it:
    what made it, and its contents in order — ("frame", path) and ("node", name) items.
    `block` and `block_args` name the block call it stands for (its own, or one it absorbed
    by naming rule 2), if any."""

    path: str
    kind: str
    title: str
    block: str | None
    block_args: dict
    children: list
    call: str = ""  # the block call's title (`bottleneck(c=128, s=2)`), if any


class LayerGraph:
    def __init__(self, name: str, file: str, parameters: dict, graph: nx.DiGraph,
                 outputs: dict[str, str], frames: dict[str, FrameRecord] | None = None):
        self.name = name
        self.file = file
        self.parameters = parameters
        self.graph = graph
        self.outputs = outputs  # output name -> node name; "output" is the main one first
        self.frames = frames or {}  # path -> FrameRecord; "" is the network itself

    def __repr__(self) -> str:
        return f"<LayerGraph {self.name}: {len(self.graph)} nodes, input {self.input_shape}>"

    # ---- reading ---------------------------------------------------------------------------

    def __iter__(self):
        return iter(self.graph.nodes)

    def __len__(self) -> int:
        return len(self.graph)

    def __getitem__(self, name: str) -> dict:
        return self.graph.nodes[name]

    @property
    def input_shape(self) -> tuple:
        return self.graph.nodes["input"]["shape"]

    def layers(self):
        """(name, node) for every layer, in topological order (no input or output nodes)."""
        for name, node in self.graph.nodes(data=True):
            if node["layer"] is not None:
                yield name, node

    def output_shapes(self) -> dict[str, tuple]:
        return {out: self.graph.nodes[node]["shape"] for out, node in self.outputs.items()}

    # ---- invariants ------------------------------------------------------------------------

    def lint(self) -> None:
        """Check the graph's invariants; an AssertionError here is archdsl's bug, not the user's."""
        g = self.graph
        assert nx.is_directed_acyclic_graph(g), "the layer graph has a cycle"
        order = {name: i for i, name in enumerate(g.nodes)}
        assert g.nodes["input"]["kind"] == "input"
        for name, node in g.nodes(data=True):
            inputs = node["inputs"]
            assert set(inputs) == set(g.predecessors(name)), f"{name}: inputs disagree with edges"
            assert all(order[i] < order[name] for i in inputs), f"{name}: not topological"
            layer = node["layer"]
            if layer is None:
                assert node["kind"] in ("input", "output")
                continue
            shapes = [g.nodes[i]["shape"] for i in inputs]
            expected = layer.shape(node["args"], shapes if layer.is_merge else shapes[0])
            assert expected == node["shape"], f"{name}: shape {node['shape']} != {expected}"
        for out, node in self.outputs.items():
            assert g.nodes[node]["kind"] == "output"
            assert g.out_degree(node) == 0

    # ---- text ------------------------------------------------------------------------------

    def dump(self) -> str:
        """A deterministic text form, one node per line: for golden tests and debugging."""
        lines = [f"network {self.name}  # {self.file}"]
        for name, node in self.graph.nodes(data=True):
            args = ", ".join(f"{k}={_show(v)}" for k, v in node["args"].items())
            inputs = ", ".join(node["inputs"])
            shape = "x".join(str(d) for d in node["shape"])
            call = f"{node['kind']}({args})" if args else node["kind"]
            lines.append(f"{name} = {call}({inputs}) -> {shape}")
        return "\n".join(lines)


def _show(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if hasattr(value, "kind"):
        return value.kind.name
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)
