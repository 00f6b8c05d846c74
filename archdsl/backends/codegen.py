"""Straight-line Python for a network's forward pass (torch.fx-style code generation).

From the layer graph this writes a `forward(self, x)` that calls each layer's module in
topological order, one line per layer with its output shape as a comment:

    def forward(self, x):
        x = self.conv1.conv(x)                          # 64x112x112
        x = self.conv1.bn(x)                            # 64x112x112
        ...

Values are kept in as few variables as possible (a value's variable is reused once its last
consumer has run) so intermediate tensors are freed as early as in hand-written code.
Side outputs (`output aux1: ...`) are computed only in training mode, like torchvision's
GoogLeNet; `side_outputs="always"` computes and returns them in eval mode too (for export).
The same generator serves the PyTorch module builder and the standalone source exporter.
"""

from __future__ import annotations

import keyword

from ..graph import LayerGraph
from ..layers.registry import TorchFunction, TorchModule, show

# Attribute names an nn.Module already has; a submodule of that name gets a trailing `_`.
_MODULE_ATTRIBUTES = {
    "training", "forward", "eval", "train", "to", "cuda", "cpu", "type", "half", "float",
    "double", "bfloat16", "state_dict", "parameters", "buffers", "children", "modules", "apply",
    "register_buffer", "register_parameter", "add_module", "zero_grad", "requires_grad_",
    "named_modules", "named_parameters", "named_buffers", "named_children", "load_state_dict",
    "extra_repr", "get_submodule", "get_parameter", "get_buffer", "share_memory", "dump_patches",
    "call_super_init", "compile", "ipu", "xpu", "mtia", "register_module", "set_extra_state",
    "get_extra_state", "code", "graph", "input_shape", "output_names", "network_name",
}


def module_path(name: str) -> list[str]:
    """The submodule path of a node: its name's segments, made safe as attribute names."""
    return [s + "_" if s in _MODULE_ATTRIBUTES else s for s in name.split(".")]


def attribute_expr(base: str, path: list[str]) -> str:
    expr = base
    for segment in path:
        if segment.isidentifier() and not keyword.iskeyword(segment):
            expr = f"{expr}.{segment}"
        else:
            expr = f'getattr({expr}, "{segment}")'
    return expr


def torch_op(graph: LayerGraph, name: str):
    node = graph[name]
    shapes = [graph[i]["shape"] for i in node["inputs"]]
    x = shapes if node["layer"].is_merge else shapes[0]
    return node["layer"].torch(node["args"], x, node["shape"])


def _pre(steps, var: str) -> str:
    for step in steps:
        if step[0] == "flatten":
            var = f"torch.flatten({var}, 1)"
        elif step[0] == "pad":
            _, pads, value = step
            fill = 'float("-inf")' if value == float("-inf") else repr(value)
            var = f"F.pad({var}, {tuple(pads)!r}, value={fill})"
    return var


def forward_source(graph: LayerGraph, *, logits: bool = False,
                   side_outputs: str = "train") -> str:
    """The source of `forward(self, x)`.

    logits: leave out a softmax that is the last layer before the main output (training fuses
    it into the loss). side_outputs: "train" (only in training mode), "always" or "never".
    """
    g = graph.graph
    names = list(g.nodes)
    main_output = graph.outputs["output"]
    side = {out: node for out, node in graph.outputs.items() if out != "output"}
    if side_outputs == "never":
        side = {}

    # values: identity layers (and a dropped softmax) are aliases of their input
    value_of: dict[str, str] = {}
    dropped_softmax = None
    last = g.nodes[main_output]["inputs"][0]
    if logits and g.nodes[last]["kind"] == "softmax" and g.out_degree(last) == 1:
        dropped_softmax = last
    for n in names:
        node = g.nodes[n]
        is_alias = node["kind"] == "identity" or n == dropped_softmax
        value_of[n] = value_of[node["inputs"][0]] if is_alias else n

    # which nodes only side outputs need: computed inside `if self.training:`
    needed_by_main = _ancestors(g, main_output) | {main_output}
    needed = set(needed_by_main)
    for node in side.values():
        needed |= _ancestors(g, node) | {node}
    side_only = needed - needed_by_main if side_outputs == "train" else set()

    order = [n for n in names if n in needed and g.nodes[n]["kind"] not in ("input", "output")
             and value_of[n] == n]
    last_use: dict[str, int] = {}
    for i, n in enumerate(order):
        for inp in g.nodes[n]["inputs"]:
            last_use[value_of[inp]] = i
    for node in [main_output, *side.values()]:
        last_use[value_of[g.nodes[node]["inputs"][0]]] = len(order)

    variables = _Variables()
    var_of = {"input": variables.take("x")}
    lines = [f"def forward(self, x):", f"    # x: {show(graph.input_shape)}"]
    in_training_block = False
    for i, n in enumerate(order):
        node = g.nodes[n]
        inputs = [var_of[value_of[inp]] for inp in node["inputs"]]
        for inp in {value_of[v] for v in node["inputs"]}:
            if last_use.get(inp) == i:
                variables.release(var_of[inp])
        target = variables.take(inputs[0] if inputs[0] in variables.free else None)
        var_of[n] = target
        expression = _call(graph, n, inputs)
        if (n in side_only) != in_training_block:
            in_training_block = n in side_only
            if in_training_block:
                lines.append("    if self.training:")
        indent = "        " if in_training_block else "    "
        statement = f"{indent}{target} = {expression}"
        lines.append(f"{statement:<72} # {show(node['shape'])}")
    results = [var_of[value_of[g.nodes[main_output]["inputs"][0]]]]
    side_results = [var_of[value_of[g.nodes[node]["inputs"][0]]] for node in side.values()]
    if side_results and side_outputs == "train":
        lines.append("    if self.training:")
        lines.append(f"        return {', '.join(results + side_results)}")
        lines.append(f"    return {results[0]}")
    elif side_results:
        lines.append(f"    return {', '.join(results + side_results)}")
    else:
        lines.append(f"    return {results[0]}")
    return "\n".join(lines) + "\n"


def _call(graph: LayerGraph, name: str, inputs: list[str]) -> str:
    op = torch_op(graph, name)
    if isinstance(op, TorchModule):
        module = attribute_expr("self", module_path(name))
        return f"{module}({_pre(op.pre, inputs[0])})"
    assert isinstance(op, TorchFunction)
    if "{x}" in op.template:
        return op.template.replace("{x}", inputs[0])
    return op.template.format(*inputs)


def _ancestors(g, node) -> set[str]:
    import networkx as nx

    return nx.ancestors(g, node)


class _Variables:
    """Variable names x, x1, x2, ...; a name is reused once the value it held is dead."""

    def __init__(self):
        self.free: list[str] = []
        self.count = 0

    def take(self, preferred: str | None) -> str:
        if preferred is not None and preferred in self.free:
            self.free.remove(preferred)
            return preferred
        if self.free:
            return self.free.pop(0)
        name = "x" if self.count == 0 else f"x{self.count}"
        self.count += 1
        return name

    def release(self, name: str) -> None:
        if name not in self.free:
            self.free.append(name)
