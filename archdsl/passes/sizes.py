"""Which input sizes a network takes: the spec's own, or others too.

A convolutional network with a global pool takes images of other sizes; LeNet-5 (its first
linear layer reads a 16x5x5 map, flattened), VGG's paper classifier and a ViT (its position
embedding holds 197 positions) take exactly the size they were written for. The built module
checks a batch against this before running (backends/torch_module.py), so a 28x28 image fed to
a 32x32 LeNet-5 gets archdsl's message, not a matrix product's.

The test: infer the shapes again with the input's sizes doubled (spatial axes of a map, the
positions of a sequence or of token ids; doubling keeps every stride and pooling divisible),
with each layer's arguments as elaborated. A network takes other sizes when every layer its
results need still applies, has the same parameters, and is built the same way (the module
built at the spec's size is the module for the other: an upsampling built to a fixed output
size is not).
"""

from __future__ import annotations

from ..graph import LayerGraph
from ..layers.registry import Params, ShapeError, check_layout
from ..shapes import MAPS, SEQ, TOKENS, Shape, as_shape


def size_dependent_layer(graph: LayerGraph) -> str | None:
    """The first layer whose shape or parameters depend on the input's size (the network
    then takes only its spec's sizes), or None when the network takes other sizes too."""
    shapes: dict[str, Shape] = {}
    # the layers the network's results need: a side output's head (GoogLeNet's auxiliary
    # classifiers, run in training only) does not stop an inference on other sizes
    needed = graph.main_ancestors() | {graph.outputs[o] for o in graph.main_outputs}
    for name, node in graph.items():
        if name not in needed:
            continue
        if node["kind"] == "input":
            shapes[name] = _doubled(node["shape"])
            continue
        layer = node["layer"]
        inputs = [shapes[i] for i in node["inputs"]]
        if layer is None:  # an output
            shapes[name] = inputs[0]
            continue
        old = [graph[i]["shape"] for i in node["inputs"]]
        x, x_old = (inputs, old) if layer.is_merge else (inputs[0], old[0])
        try:
            for each in (inputs if layer.is_merge else [x]):
                check_layout(layer.name, layer.accepts, each)
            y = as_shape(layer.shape(node["args"], x), inputs[0])
            same = Params.of(layer.params_count(node["args"], x)) == \
                Params.of(layer.params_count(node["args"], x_old)) and \
                layer.torch(node["args"], x, y) == layer.torch(node["args"], x_old, node["shape"])
        except (ShapeError, ValueError, TypeError, KeyError, IndexError, ZeroDivisionError):
            return name
        if not same:
            return name
        shapes[name] = y
    return None


def _doubled(shape: Shape) -> Shape:
    if shape.layout in MAPS:
        return shape.like((shape[0], *(2 * s for s in shape[1:])))
    if shape.layout in (SEQ, TOKENS):
        return shape.like((2 * shape[0], *shape[1:]))
    return shape  # a vector's features are its size
