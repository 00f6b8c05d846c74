"""Memory for one training step, estimated from the layer graph without building anything.

A step (forward, loss, backward, optimizer step) holds:

    parameters        every parameter and buffer, in fp32 (autocast keeps the weights fp32)
    gradients         one per trainable parameter, fp32
    optimizer state   SGD with momentum: one buffer per trainable parameter; AdamW: two
    activations       what the forward pass keeps for the backward one: each layer kind
                      states which of its tensors its derivative reads (LayerKind.saves,
                      saved_extra), as PyTorch's derivative formulas do

and, for a moment, values in flight. The peak is found by walking the step as PyTorch runs it:

    forward     each layer's output is allocated; a value is freed once its last reader has
                run, unless a layer keeps it
    backward    in reverse: a layer allocates its parameters' gradients and its inputs'
                gradients, then drops its output's gradient and what it alone still kept
    optimizer   the working copies of the update (foreach SGD's weight-decayed gradients,
                AdamW's denominators), with every gradient allocated

With `precision="bf16"` (autocast), layers that autocast runs in bf16 (convolutions, matrix
products: LayerKind.autocast == "low") compute and keep bf16 values, cast copies of their
fp32 inputs and of their weights (autocast caches those until the backward pass); norms and
softmax run in fp32; the rest in the type of their inputs. Checked against the allocator's
own peak (benchmarks/memory_estimate.py, tests/test_memory.py): docs/counting.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import LayerGraph
from ..layers.registry import numel
from ..shapes import TOKENS
from .cost import layer_inputs

BYTES = {"fp32": 4, "bf16": 2, "int64": 8, "bool": 1}
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("sgd", "adamw")
# per trainable parameter: the optimizer's state, and its step's working copies
STATE_COPIES = {"sgd": 1, "adamw": 2}
STEP_COPIES = {"sgd": 1, "adamw": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for one training step at `batch` samples."""

    batch: int
    precision: str
    optimizer: str
    parameters: int
    gradients: int
    optimizer_state: int
    activations: int  # kept for the backward pass, at the end of the forward pass
    peak: int

    def as_dict(self) -> dict:
        return dict(batch=self.batch, precision=self.precision, optimizer=self.optimizer,
                    parameters=self.parameters, gradients=self.gradients,
                    optimizer_state=self.optimizer_state, activations=self.activations,
                    peak=self.peak)


def estimate(graph: LayerGraph, batch: int, precision: str = "fp32",
             optimizer: str = "sgd") -> MemoryEstimate:
    """The memory of one training step of a counted graph (passes.cost.count has run)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
    step = _Step(graph, batch, precision)
    trainable = sum(node["params"].trainable for _, node in step.layers)
    every = sum(node["params"].total for _, node in step.layers)
    parameters, gradients = every * 4, trainable * 4
    state = STATE_COPIES[optimizer] * gradients
    fixed = parameters + state
    forward_peak, kept = step.forward()
    backward_peak = step.backward(kept)
    step_peak = gradients * (1 + STEP_COPIES[optimizer])
    peak = fixed + max(forward_peak, backward_peak, step_peak)
    return MemoryEstimate(batch, precision, optimizer, parameters, gradients, state,
                          sum(kept.values()), peak)


class _Step:
    """One training step's tensors, by key: (node, dtype) for a node's value in that type
    (a view's key is its base's), ("extra", node, i) for a layer's own kept tensors."""

    def __init__(self, graph: LayerGraph, batch: int, precision: str):
        self.graph, self.batch, self.precision = graph, batch, precision
        live = graph.main_ancestors()
        for out in graph.side_outputs:  # training computes the side heads too
            live |= graph.ancestors(graph.outputs[out])
        dropped = _dropped_softmax(graph)
        self.layers = [(name, node) for name, node in graph.layers()
                       if name in live and name != dropped]
        self.base = {}  # node -> the node whose memory holds its value
        self.dtype = {}
        for name, node in graph.items():
            if node["layer"] is None:  # inputs; outputs are their input's value
                self.base[name] = self.base[node["inputs"][0]] if node["inputs"] else name
                self.dtype[name] = (self.dtype[node["inputs"][0]] if node["inputs"] else
                                    "int64" if node["shape"].layout == TOKENS else "fp32")
            elif name == dropped:
                self.base[name], self.dtype[name] = (self.base[node["inputs"][0]],
                                                     self.dtype[node["inputs"][0]])
            else:
                self.dtype[name] = self._out_dtype(node)
                self.base[name] = (self.base[node["inputs"][0]] if node["layer"].view
                                   else name)
        # what each layer keeps: key -> bytes, and key -> the layers that keep it
        self.kept_by: dict[tuple, list[str]] = {}
        self.size: dict[tuple, int] = {}
        self.keeps: dict[str, list[tuple]] = {}
        for name, node in self.layers:
            self.keeps[name] = keys = self._kept(name, node)
            for key in keys:
                self.kept_by.setdefault(key, []).append(name)

    def bytes_of(self, name: str, dtype: str) -> int:
        return numel(self.graph[name]["shape"]) * self.batch * BYTES[dtype]

    def _out_dtype(self, node) -> str:
        autocast = node["layer"].autocast if self.precision == "bf16" else None
        if autocast == "low":
            return "bf16"
        types = {self.dtype[i] for i in node["inputs"]} - {"int64"}
        # fp32 wins a mixed merge (type promotion); token ids look up fp32 weights
        return "bf16" if types == {"bf16"} and autocast != "fp32" else "fp32"

    def _input_dtype(self, node, name: str) -> str:
        """The type a layer reads an input in: autocast casts it to the layer's."""
        autocast = node["layer"].autocast if self.precision == "bf16" else None
        if autocast == "low" and self.dtype[name] == "fp32":
            return "bf16"
        if autocast == "fp32" and self.dtype[name] == "bf16":
            return "fp32"
        return self.dtype[name]

    def _kept(self, name: str, node) -> list[tuple]:
        layer, args = node["layer"], node["args"]
        saves = layer.saved(args)
        keys = []
        if "input" in saves:
            for i in node["inputs"]:
                dtype = self._input_dtype(node, i)
                key = (self.base[i], dtype)
                self.size[key] = self.bytes_of(i, dtype)
                keys.append(key)
        if "output" in saves:
            key = (self.base[name], self.dtype[name])
            self.size[key] = self.bytes_of(name, self.dtype[name])
            keys.append(key)
        x = layer_inputs(self.graph, node)
        for j, (values, dtype) in enumerate(layer.saved_extra(args, x, node["shape"])):
            key = ("extra", name, j)
            self.size[key] = values * self.batch * BYTES[self.dtype[name] if dtype == "act"
                                                         else dtype]
            keys.append(key)
        if layer.autocast == "low" and self.precision == "bf16":
            # autocast's bf16 copy of the layer's weights, cached until the backward pass
            key = ("weights", name)
            self.size[key] = node["params"].trainable * 2
            keys.append(key)
        return keys

    def forward(self) -> tuple[int, dict]:
        """The forward pass's peak (besides parameters and optimizer state) and what it keeps
        at its end, key -> bytes."""
        readers: dict[str, int] = {}
        for _, node in self.layers:
            for i in node["inputs"]:
                readers[self.base[i]] = readers.get(self.base[i], 0) + 1
        for out in self.graph.outputs.values():  # the loss reads the outputs
            readers[self.base[out]] = readers.get(self.base[out], 0) + 1
        alive = {}
        for name in self.graph.inputs.values():
            alive[(name, self.dtype[name])] = self.bytes_of(name, self.dtype[name])
        kept = set(self.kept_by)
        peak = sum(alive.values())
        for name, node in self.layers:
            for key in self.keeps[name]:
                alive[key] = self.size[key]
            if self.base[name] == name:
                alive[(name, self.dtype[name])] = self.bytes_of(name, self.dtype[name])
            peak = max(peak, sum(alive.values()))
            for i in node["inputs"]:
                readers[self.base[i]] -= 1
                value = (self.base[i], self.dtype[self.base[i]])
                if readers[self.base[i]] == 0 and value not in kept:
                    alive.pop(value, None)
        # the loss keeps its log-probabilities (fp32) of each main output
        for out in self.graph.main_outputs:
            node = self.graph.outputs[out]
            alive[("loss", out)] = self.bytes_of(node, "fp32")
        peak = max(peak, sum(alive.values()))
        return peak, {k: v for k, v in alive.items() if k in kept}

    def backward(self, kept: dict) -> int:
        """The backward pass's peak, besides parameters and optimizer state."""
        kept = dict(kept)
        grads = {}  # node -> bytes of the gradient of its value, while it is alive
        for out in self.graph.outputs.values():
            base = self.base[out]
            grads[base] = self.bytes_of(base, self.dtype[base])
        needs_grad = self._needs_grad()
        param_grads = 0
        peak = sum(kept.values()) + sum(grads.values())
        order = {name: i for i, (name, _) in enumerate(self.layers)}
        for name, node in reversed(self.layers):
            if self.base[name] not in grads and node["params"].trainable == 0:
                continue
            param_grads += node["params"].trainable * 4
            flowing = 0  # this layer's input gradients that are new tensors
            for i in node["inputs"]:
                if needs_grad.get(self.base[i]):
                    flowing += self.bytes_of(i, self.dtype[i])
            peak = max(peak, sum(kept.values()) + sum(grads.values()) + flowing + param_grads)
            for i in node["inputs"]:
                if needs_grad.get(self.base[i]):
                    grads[self.base[i]] = self.bytes_of(i, self.dtype[i])
            if self.base[name] == name:
                grads.pop(name, None)
            for key in self.keeps[name]:
                if min(order[n] for n in self.kept_by[key]) == order[name]:
                    kept.pop(key, None)
        return peak

    def _needs_grad(self) -> dict[str, bool]:
        """Which values autograd computes a gradient for: those that depend on a trainable
        parameter (the network's input needs none)."""
        needs = {}
        for name, node in self.layers:
            needs[self.base[name]] = needs.get(self.base[name], False) or (
                node["params"].trainable > 0
                or any(needs.get(self.base[i], False) for i in node["inputs"]))
        return needs


def _dropped_softmax(graph: LayerGraph) -> str | None:
    """A softmax that ends the only main output: training runs on logits without it."""
    if len(graph.main_outputs) != 1:
        return None
    last = graph[graph.outputs[graph.main_outputs[0]]]["inputs"][0]
    node = graph[last]
    readers = sum(last in n["inputs"] for _, n in graph.items())
    return last if node["layer"] is not None and node["layer"].name == "softmax" \
        and readers == 1 else None
