"""Which input sizes a network takes: the spec's own, or others too.

A convolutional network with a global pool takes images of other sizes; LeNet-5 (its first
linear layer reads a 16x5x5 map, flattened), VGG's paper classifier and a ViT (its position
embedding holds 197 positions) take exactly the size they were written for. The built module
checks a batch against this before running (backends/torch_module.py), so a 28x28 image fed to
a 32x32 LeNet-5 gets archdsl's message, not a matrix product's.

The test: infer the shapes again with the input's sizes doubled (spatial axes of a map, the
positions of a sequence or of token ids; doubling keeps every stride and pooling divisible),
with each layer's arguments as elaborated; a sequence model that fails there is tried again
with half as many positions (a GPT's position embedding holds at most its context, and takes
any prompt up to it). A network takes other sizes when every layer its
results need still applies, has the same parameters, and is built the same way (the module
built at the spec's size is the module for the other: an upsampling built to a fixed output
size is not).
"""

from __future__ import annotations

from ..graph import LayerGraph
from ..layers.registry import Params, ShapeError, check_layout
from ..shapes import SEQ, TOKENS, Shape, as_shape


def size_dependent_layer(graph: LayerGraph, side_outputs: bool = False) -> str | None:
    """The first layer whose shape or parameters depend on the input's size (the network
    then takes only its spec's sizes), or None when the network takes other sizes too.
    `side_outputs`: count their heads too (an .onnx computes them), not only the layers the
    network's results need."""
    shapes = graph.input_shapes()
    failed = _first_failure(graph, {n: _doubled(s) for n, s in shapes.items()}, same_module=True,
                            side_outputs=side_outputs)
    if failed and any(s.layout in (SEQ, TOKENS) and s[0] > 1 for s in shapes.values()):
        # a sequence model may hold at most so many positions (a GPT's position embedding):
        # it takes other sizes when it takes shorter sequences
        halved = {n: _halved(s) if s.layout in (SEQ, TOKENS) else s for n, s in shapes.items()}
        if not _first_failure(graph, halved, same_module=True, side_outputs=side_outputs):
            return None
    return failed[0] if failed else None


def _first_failure(graph: LayerGraph, inputs: dict[str, Shape], same_module: bool,
                   side_outputs: bool = False) -> tuple[str, ShapeError | None] | None:
    """Infer the shapes again from other input shapes, through the layers the network's
    results need: the first layer that fails (and its error), or, with `same_module`, whose
    parameters or module differ from the ones built; None when all apply."""
    shapes: dict[str, Shape] = {}
    # the layers the network's results need: a side output's head (GoogLeNet's auxiliary
    # classifiers, run in training only) does not stop an inference on other sizes
    needed = set(graph.records) if side_outputs else (
        graph.main_ancestors() | {graph.outputs[o] for o in graph.main_outputs})
    input_of = {node: name for name, node in graph.inputs.items()}
    for name, node in graph.items():
        if name not in needed:
            continue
        if node["kind"] == "input":
            shapes[name] = inputs[input_of[name]]
            continue
        layer = node["layer"]
        xs = [shapes[i] for i in node["inputs"]]
        if layer is None:  # an output
            shapes[name] = xs[0]
            continue
        old = [graph[i]["shape"] for i in node["inputs"]]
        x, x_old = (xs, old) if layer.is_merge else (xs[0], old[0])
        try:
            for each in (xs if layer.is_merge else [x]):
                check_layout(layer.name, layer.accepts, each)
            args = node["args"] if layer.is_merge else layer.refill(node["args"], x, xs[1:])
            y = as_shape(layer.shape(args, x), xs[0])
            same = not same_module or (
                Params.of(layer.params_count(args, x)) ==
                Params.of(layer.params_count(node["args"], x_old)) and
                layer.torch(args, x, y) == layer.torch(node["args"], x_old, node["shape"]))
        except ShapeError as error:
            return name, error
        except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError):
            return name, None
        if not same:
            return name, None
        shapes[name] = y
    return None


class InputSizes:
    """What a built module asks of its graph about the sizes of a batch (backends/
    torch_module.py): the layer that ties the network to its spec's sizes, if one does, and
    for a network that takes other sizes, whether it takes these — a Swin whose patch merging
    meets an odd grid, a VGG whose pools meet a map smaller than their window — answered once
    per size. Shared, not copied, when the module is (an EMA copy of the model)."""

    def __init__(self, graph: LayerGraph):
        self.graph = graph
        self.fixed_by = size_dependent_layer(graph)
        self._answers: dict[tuple, tuple[str, str] | None] = {}

    def refusal(self, inputs: dict[str, tuple]) -> tuple[str, str] | None:
        """(layer, what fails there) when the network cannot take inputs of these sizes (the
        batch excluded), else None."""
        key = tuple(inputs.values())
        if key not in self._answers:
            if len(self._answers) >= 256:  # a stream of ever new sizes: forget the old ones
                self._answers.clear()
            shapes = {name: graph_shape.like(inputs[name])
                      for name, graph_shape in self.graph.input_shapes().items()}
            failed = _first_failure(self.graph, shapes, same_module=False)
            self._answers[key] = failed and (
                failed[0], failed[1].message if failed[1] else "its shape cannot be inferred")
        return self._answers[key]

    def __deepcopy__(self, memo):
        return self


def _doubled(shape: Shape) -> Shape:
    axes = shape.size_axes
    return shape.like([2 * n if i in axes else n for i, n in enumerate(shape)])


def _halved(shape: Shape) -> Shape:
    axes = shape.size_axes
    return shape.like([max(1, n // 2) if i in axes else n for i, n in enumerate(shape)])
