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
    tied      the node whose weight this layer shares (`tied=wte`), or None
    frozen    True inside `frozen:`: its parameters are not trained (requires_grad=False)

Passes add their results to the node dict (passes/cost.py adds params, macs, flops).
"""

from __future__ import annotations

from dataclasses import dataclass



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
    """The layer graph. Node records are kept in an ordered dict (`records`, topological
    order); `graph` is the same nodes as a networkx.DiGraph, built on first use — sharing the
    records' dicts — so the analyses that need no graph algorithm (check, summary) never
    import networkx and start faster."""

    def __init__(self, name: str, file: str, parameters: dict, records: dict[str, dict],
                 outputs: dict[str, str], frames: dict[str, FrameRecord] | None = None,
                 main_outputs: list[str] | None = None, inputs: dict[str, str] | None = None):
        self.name = name
        self.file = file
        self.parameters = parameters
        self.records = records
        self.outputs = outputs  # output name -> node name, the main outputs first
        # The network's results, computed in every mode: `output` (where the body ends), or
        # the named outputs of a network whose body ends with them (an FPN's p3, p4, p5).
        # The others are side outputs, computed in training mode only (GoogLeNet's aux heads).
        self.main_outputs = main_outputs or ["output"]
        # input name -> node name, in order: {"input": "input"} for a network's only input;
        # several are named (`input image: ...`, `input meta: ...`), the first node "input"
        self.inputs = inputs or {"input": "input"}
        self.frames = frames or {}  # path -> FrameRecord; "" is the network itself
        self._graph = None

    def __repr__(self) -> str:
        return f"<LayerGraph {self.name}: {len(self)} nodes, input {self.input_shape}>"

    @property
    def graph(self):
        """The networkx.DiGraph: nodes by name (their attribute dicts are the records),
        an edge from each input to its consumer."""
        if self._graph is None:
            import networkx as nx

            g = nx.DiGraph()
            for name, node in self.records.items():
                g.add_node(name)
                g._node[name] = node  # share the record: passes' results show in both
            for name, node in self.records.items():
                for i in node["inputs"]:
                    g.add_edge(i, name)
            self._graph = g
        return self._graph

    # ---- reading ---------------------------------------------------------------------------

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, name) -> bool:
        return name in self.records

    def __getitem__(self, name: str) -> dict:
        return self.records[name]

    def items(self):
        return self.records.items()

    @property
    def input_shape(self) -> tuple:
        return self.records["input"]["shape"]

    def layers(self):
        """(name, node) for every layer, in topological order (no input or output nodes)."""
        for name, node in self.records.items():
            if node["layer"] is not None:
                yield name, node

    @property
    def side_outputs(self) -> list[str]:
        return [o for o in self.outputs if o not in self.main_outputs]

    def main_ancestors(self) -> set[str]:
        """Every node a main output depends on."""
        needed: set[str] = set()
        for out in self.main_outputs:
            needed |= self.ancestors(self.outputs[out])
        return needed

    def ancestors(self, name: str) -> set[str]:
        """Every node `name` depends on (not itself)."""
        seen, stack = set(), list(self.records[name]["inputs"])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.records[n]["inputs"])
        return seen

    def input_shapes(self) -> dict[str, tuple]:
        return {name: self.records[node]["shape"] for name, node in self.inputs.items()}

    def output_shapes(self) -> dict[str, tuple]:
        return {out: self.records[node]["shape"] for out, node in self.outputs.items()}

    # ---- invariants ------------------------------------------------------------------------

    def lint(self) -> None:
        """Check the graph's invariants; an AssertionError here is archdsl's bug, not the user's."""
        import networkx as nx

        g = self.graph
        assert nx.is_directed_acyclic_graph(g), "the layer graph has a cycle"
        order = {name: i for i, name in enumerate(g.nodes)}
        assert g.nodes["input"]["kind"] == "input"
        assert all(g.nodes[node]["kind"] == "input" for node in self.inputs.values())
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
        for name, node in self.records.items():
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
