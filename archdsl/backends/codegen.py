"""Straight-line Python for a network's forward pass (torch.fx-style code generation).

From the layer graph this writes a `forward(self, x)` that calls each layer's module in
topological order, one line per layer with its output shape as a comment:

    def forward(self, x):
        x = self.conv1.conv(x)                          # 64x112x112
        x = self.conv1.bn(x)                            # 64x112x112
        ...

Values are kept in as few variables as possible (a value's variable is reused once its last
consumer has run) so intermediate tensors are freed as early as in hand-written code. A block
in which the called modules branch is looked up once, into a local named after its path
(`conv2_x_0 = getattr(conv2_x, "0")`, then `conv2_x_0.relu(x)`): each step of a module path
costs about half a microsecond in nn.Module.__getattr__, 2-4% of an EfficientNet-B0 forward at
batch 8 on a CPU when every call walked its whole path.
Side outputs (`output aux1: ...`) are computed only in training mode, like torchvision's
GoogLeNet; `side_outputs="always"` computes and returns them in eval mode too (for export).
The same generator serves the PyTorch module builder and the standalone source exporter.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, replace

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
    "input_shapes", "register_forward_hook", "register_forward_pre_hook", "to_empty",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_backward_hook",
    # nn.ModuleDict's methods (the exported source keeps containers in ModuleDicts)
    "keys", "items", "values", "update", "pop", "clear",
}


def module_path(name: str) -> list[str]:
    """The submodule path of a node: its name's segments, made safe as attribute names (a
    name that starts with `_` could be one of nn.Module's internals: `__class__`,
    `_modules`)."""
    return [s + "_" if s in _MODULE_ATTRIBUTES or s.startswith("_") else s
            for s in name.split(".")]


def attribute_expr(base: str, path: list[str]) -> str:
    expr = base
    for segment in path:
        if segment.isidentifier() and not keyword.iskeyword(segment):
            expr = f"{expr}.{segment}"
        else:
            expr = f'getattr({expr}, "{segment}")'
    return expr


def torch_op(graph: LayerGraph, name: str, in_place: set[str] = frozenset()):
    """The PyTorch operation of a layer; in its in-place form if `in_place` (chosen by
    in_place_layers) names it. Modules that can run in place always get their `inplace`
    argument, so that the exporter sees one structure whichever way each call went."""
    node = graph[name]
    layer = node["layer"]
    shapes = [graph[i]["shape"] for i in node["inputs"]]
    op = layer.torch(node["args"], shapes if layer.is_merge else shapes[0], node["shape"])
    if layer.runs_in_place and isinstance(op, TorchModule):
        op = replace(op, kwargs={**op.kwargs, "inplace": name in in_place})
    elif name in in_place and isinstance(op, TorchFunction) and op.in_place:
        op = TorchFunction(op.in_place)
    return op


def in_place_layers(graph: LayerGraph) -> set[str]:
    """The layers that may overwrite their (first) input (see LayerKind.runs_in_place): a
    relu, or a residual add, right after a conv, bn, pool or merge whose output nothing else
    reads; or after a dropout or droppath whose input is such a value. Never the network's
    input, which belongs to the caller."""
    chosen = set()
    for name, node in graph.layers():
        if node["layer"].runs_in_place and node["inputs"].count(node["inputs"][0]) == 1:
            if _disposable(graph, node["inputs"][0]):
                chosen.add(name)
    return chosen


def _disposable(graph: LayerGraph, value: str) -> bool:
    """Whether the output of `value` may be overwritten: read once, fresh, and not needed by
    its producer's backward."""
    g = graph.graph
    producer = g.nodes[value]["layer"]
    if producer is None or g.out_degree(value) != 1:
        return False
    if producer.passes_input_through:
        return _disposable(graph, g.nodes[value]["inputs"][0])
    return producer.output_disposable


def module_call(module: str, op: TorchModule, inputs: list[str]) -> str:
    """A module's call on its input after the op's `pre` steps; a module of further inputs
    (cross_attention's memory) gets them too: `module(x, memory)`."""
    return f"{module}({', '.join([_pre(op.pre, inputs[0]), *inputs[1:]])})"


def _pre(steps, var: str) -> str:
    for step in steps:
        if step[0] == "flatten":
            var = f"torch.flatten({var}, 1)"
        elif step[0] == "pad":
            _, pads, value = step
            fill = 'float("-inf")' if value == float("-inf") else repr(value)
            var = f"F.pad({var}, {tuple(pads)!r}, value={fill})"
    return var


@dataclass
class Op:
    """One line of a forward pass: the value `key` computed from `inputs` by `expression`
    (a function of the inputs' variable names), or an alias of its input when expression is
    None. `side_only`: needed by side outputs alone, so computed in training mode only.
    `module`: the path under `self` of the module the op calls; its expression then takes the
    module's expression first: expression(module, inputs)."""

    key: str
    inputs: list[str]
    expression: object
    shape: str
    side_only: bool = False
    module: list[str] | None = None


def emit(ops: list[Op], input_key: str, results: list[str], side_results: list[str] = (),
         side_outputs: str = "train", argument: str = "x",
         more_inputs: dict[str, str] | None = None) -> list[str]:
    """The body of a forward function (indented by 4), ending with its return.
    `more_inputs`: a network's further inputs, node key -> argument name."""
    more_inputs = more_inputs or {}
    value_of: dict[str, str] = {input_key: input_key, **{k: k for k in more_inputs}}
    for op in ops:
        value_of[op.key] = value_of[op.inputs[0]] if op.expression is None else op.key
    computed = [op for op in ops if op.expression is not None]
    last_use: dict[str, int] = {}
    for i, op in enumerate(computed):
        for key in op.inputs:
            last_use[value_of[key]] = i
    for key in [*results, *side_results]:
        last_use[value_of[key]] = len(computed)

    variables = _Variables()
    var_of = {input_key: variables.take(argument), **more_inputs}
    blocks = _Blocks([op.module for op in computed if op.module],
                     reserved={argument, *more_inputs.values(), *_RESERVED_LOCALS})
    lines = []
    in_training_block = False
    for i, op in enumerate(computed):
        inputs = [var_of[value_of[k]] for k in op.inputs]
        for key in {value_of[k] for k in op.inputs}:
            if last_use.get(key) == i:
                variables.release(var_of[key])
        target = variables.take(inputs[0] if inputs and inputs[0] in variables.free else None)
        var_of[op.key] = target
        side = op.side_only and side_outputs == "train"
        if side != in_training_block:
            in_training_block = side
            if side:
                lines.append("    if self.training:")
                blocks.enter_scope()
            else:
                blocks.leave_scope()
        indent = "        " if in_training_block else "    "
        if op.module:
            module = blocks.expression(op.module, lines, indent)
            statement = f"{indent}{target} = {op.expression(module, inputs)}"
        else:
            statement = f"{indent}{target} = {op.expression(inputs)}"
        lines.append(f"{statement:<72} # {op.shape}")
    main = [var_of[value_of[k]] for k in results]
    side = [var_of[value_of[k]] for k in side_results]
    if side and side_outputs == "train":
        lines.append("    if self.training:")
        lines.append(f"        return {', '.join(main + side)}")
        lines.append(f"    return {', '.join(main)}")
    else:
        lines.append(f"    return {', '.join(main + side)}")
    return lines


def forward_source(graph: LayerGraph, *, logits: bool = False, side_outputs: str = "train",
                   in_place: set[str] = frozenset()) -> str:
    """The source of `forward(self, x)` for a whole network, modules at their hierarchical
    names under `self`.

    logits: leave out a softmax that is the last layer before the main output (training fuses
    it into the loss). Several main outputs are returned as a tuple, in their order; several
    inputs are arguments in theirs (input_arguments). side_outputs: "train" (only in training
    mode), "always" or "never".
    in_place: the parameter-free layers to write in their in-place form (in_place_layers).
    """
    g = graph.graph
    mains = [graph.outputs[o] for o in graph.main_outputs]
    side = [graph.outputs[o] for o in graph.side_outputs]
    if side_outputs == "never":
        side = []
    last = g.nodes[mains[0]]["inputs"][0]
    dropped_softmax = last if (logits and len(mains) == 1 and g.nodes[last]["kind"] == "softmax"
                               and g.out_degree(last) == 1) else None
    needed_by_main = graph.main_ancestors()
    needed = set(needed_by_main)
    for node in side:
        needed |= graph.ancestors(node)
    ops = []
    for name, node in g.nodes(data=True):
        if name not in needed or node["kind"] in ("input", "output"):
            continue
        alias = node["kind"] == "identity" or name == dropped_softmax
        if alias:
            ops.append(Op(name, node["inputs"], None, show(node["shape"]),
                          side_only=name not in needed_by_main))
            continue
        op = torch_op(graph, name, in_place)
        if isinstance(op, TorchModule):
            call = (lambda module, inputs, op=op: module_call(module, op, inputs))
            path = module_path(name)
        else:
            call, path = op.expression, None
        ops.append(Op(name, node["inputs"], call, show(node["shape"]),
                      side_only=name not in needed_by_main, module=path))
    arguments = input_arguments(graph)
    body = emit(ops, "input", [g.nodes[n]["inputs"][0] for n in mains],
                [g.nodes[n]["inputs"][0] for n in side], side_outputs,
                more_inputs={k: v for k, v in arguments.items() if k != "input"})
    return "\n".join([f"def forward(self, {', '.join(arguments.values())}):",
                      *input_comments(graph, arguments), *body]) + "\n"


def input_arguments(graph: LayerGraph) -> dict[str, str]:
    """The forward function's arguments, input node -> name: `x` for the first input, the
    input's own name for the others (`meta`), unless it could clash with a generated name."""
    arguments = {}
    for i, (name, node) in enumerate(graph.inputs.items()):
        if i == 0:
            arguments[node] = "x"
        elif keyword.iskeyword(name) or name in _RESERVED_LOCALS or re.fullmatch(r"x\d*", name):
            arguments[node] = f"{name}_input"
        else:
            arguments[node] = name
    return arguments


def input_comments(graph: LayerGraph, arguments: dict[str, str]) -> list[str]:
    names = {node: name for name, node in graph.inputs.items()}
    return [f"    # {arg}: " + (f"`{names[node]}` " if len(names) > 1 else "")
            + show(graph[node]["shape"]) for node, arg in arguments.items()]


# Names the generated code uses besides its values (x, x1, x2, ...; a block's local never
# takes such a name either).
_RESERVED_LOCALS = {"self", "torch", "F", "getattr"}


class _Blocks:
    """The locals that hold blocks (module containers) of a forward pass. A block is bound
    where the modules called in the pass branch: when at least two of its members (modules
    or blocks) hold modules called in the pass; a block with a single member used is only a
    step of the path. It is bound when a module in it is first called, looked up from its
    nearest bound enclosing block. Bindings made inside `if self.training:` end with it."""

    def __init__(self, module_paths: list[list[str]], reserved: set[str]):
        members: dict[tuple, set] = {}
        for path in module_paths:
            for cut in range(1, len(path)):
                members.setdefault(tuple(path[:cut]), set()).add(path[cut])
        self.names: dict[tuple, str] = {}
        taken = set(reserved)
        for block in sorted(b for b, used in members.items() if len(used) >= 2):
            name = "_".join(block)
            if (not name.isidentifier() or keyword.iskeyword(name) or name in taken
                    or name[0] == "_" or (name[0] == "x" and name[1:].isdigit())):
                name = "block_" + name
            base, n = name, 2
            while name in taken:
                name, n = f"{base}_{n}", n + 1
            taken.add(name)
            self.names[block] = name
        self.bound: set[tuple] = set()
        self.outer: set[tuple] | None = None

    def enter_scope(self) -> None:
        self.outer = set(self.bound)

    def leave_scope(self) -> None:
        if self.outer is not None:
            self.bound, self.outer = self.outer, None

    def expression(self, path: list[str], lines: list[str], indent: str) -> str:
        """The expression of the module at `path`; binds its block first when due (appends
        the binding's line to `lines`)."""
        for cut in range(1, len(path)):
            block = tuple(path[:cut])
            if block in self.names and block not in self.bound:
                lines.append(f"{indent}{self.names[block]} = {self._from_nearest(block)}")
                self.bound.add(block)
        return self._from_nearest(tuple(path))

    def _from_nearest(self, path: tuple) -> str:
        for cut in range(len(path) - 1, 0, -1):
            if path[:cut] in self.bound:
                return attribute_expr(self.names[path[:cut]], list(path[cut:]))
        return attribute_expr("self", list(path))


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
