"""Counting: parameters (trainable, buffers, frozen), MACs and FLOPs, analytically.

Every layer states its own counts in the registry; this pass applies them at the network's
real input size and records them on each node (`params`, `macs`, `flops`). No weights are
allocated and torch is not imported. Conventions: docs/counting.md.

Parameters count every layer. MACs and FLOPs count an inference pass — the layers the main
outputs need; the heads that only side outputs need (GoogLeNet's auxiliary classifiers) run
in training only and are counted apart (`macs_side`, `flops_side`). A layer whose result
reaches no output (steps left behind by a `from`) is built but never run: its parameters
count, its MACs and FLOPs are 0 (`unused` on its node).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import LayerGraph
from ..layers import Params


@dataclass(frozen=True)
class Totals:
    params: Params
    macs: int
    flops: int
    macs_side: int = 0
    flops_side: int = 0

    # Keras' three figures (docs/counting.md)
    @property
    def params_total(self) -> int:
        return self.params.total

    @property
    def params_trainable(self) -> int:
        return self.params.trainable

    @property
    def params_nontrainable(self) -> int:
        return self.params.non_trainable

    # PyTorch's: parameters (trainable and frozen) and buffers
    @property
    def params_torch(self) -> int:
        return self.params.torch

    @property
    def params_frozen(self) -> int:
        return self.params.frozen


def layer_inputs(graph: LayerGraph, node: dict):
    """The input shape of a layer as its declaration expects it (a list for merges)."""
    shapes = [graph[i]["shape"] for i in node["inputs"]]
    return shapes if node["layer"].is_merge else shapes[0]


def count(graph: LayerGraph) -> Totals:
    """Count every layer of the graph, recording per-node figures; returns the totals."""
    main = graph.main_ancestors()
    live = set(main)
    for out in graph.side_outputs:
        live |= graph.ancestors(graph.outputs[out])
    params = Params()
    macs = {True: 0, False: 0}
    flops = {True: 0, False: 0}
    counted: dict[tuple, tuple] = {}  # a layer repeated (the same args on the same input shape)
    for name, node in graph.layers():
        layer, args = node["layer"], node["args"]
        x = layer_inputs(graph, node)
        key = (layer, id(args), tuple(x) if layer.is_merge else x, node["shape"])
        figures = counted.get(key)
        if figures is None:
            y = node["shape"]
            figures = counted[key] = (Params.of(layer.params_count(args, x)),
                                      layer.macs(args, x, y), layer.flops(args, x, y))
        node["params"], node["macs"], node["flops"] = figures
        if node.get("frozen"):  # `frozen:` keeps its parameters out of training
            p = node["params"]
            node["params"] = Params(0, p.buffers, p.frozen + p.trainable)
        node["unused"] = name not in live
        if node["unused"]:
            node["macs"] = node["flops"] = 0
        node["side_only"] = name not in main
        params += node["params"]
        macs[name in main] += node["macs"]
        flops[name in main] += node["flops"]
    return Totals(params, macs[True], flops[True], macs[False], flops[False])
