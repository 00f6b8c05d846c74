"""Layer graph → torch.nn.Module.

Each layer becomes the module its declaration names, registered under its hierarchical name
(`conv3_x.0.add.0.conv1.conv` → `model.conv3_x[0]...`), so `print(model)`, the state_dict and
profiler traces speak the spec's vocabulary. The forward pass is generated straight-line
Python (codegen.py), compiled once; `model.code` shows it. The result is an ordinary module:
it moves to CUDA, trains, works with torch.compile, torch.fx and DDP.
"""

from __future__ import annotations

import importlib
import itertools
import linecache

import torch
from torch import nn

from ..graph import LayerGraph
from ..layers.registry import TorchModule
from ..passes.sizes import InputSizes
from .codegen import forward_source, in_place_layers, module_path, torch_op

_counter = itertools.count()


def example_input(shape, batch: int = 2, device="cpu") -> torch.Tensor:
    """A random batch for an input shape: token ids below the vocabulary (int64, what
    nn.Embedding takes), standard normal numbers otherwise."""
    if getattr(shape, "layout", None) == "tokens":
        return torch.randint(0, shape.vocab, (batch, *shape), device=device)
    return torch.randn(batch, *shape, device=device)


def example_inputs(graph: LayerGraph, batch: int = 2, device="cpu") -> tuple:
    """A random batch for each of a network's inputs, in order: the forward's arguments."""
    return tuple(example_input(shape, batch, device) for shape in graph.input_shapes().values())


def resolve_class(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class InputError(ValueError):
    """A batch the network cannot take: archdsl's message instead of a matmul's."""


def _check_inputs(module, inputs) -> None:
    """Before each eager call: each input is a batch of the spec's rank, with its channels
    (a map's C, a vector's or a sequence's features). Sizes along spatial axes and positions
    may differ from the spec's where every layer takes them (a convolutional network takes
    other image sizes; passes/sizes.py answers, once per size). Skipped
    while torch.compile or torch.export trace the model, so a compiled forward costs
    nothing more."""
    if torch.compiler.is_compiling():
        return
    expected = module.input_shapes
    if len(inputs) != len(expected):
        raise InputError(f"`{module.network_name}` takes {len(expected)} input"
                         f"{'s' if len(expected) != 1 else ''} "
                         f"({', '.join(expected)}), got {len(inputs)}")
    for (name, shape), x in zip(expected.items(), inputs):
        layout = module.input_layouts.get(name)
        what = f"`{module.network_name}`" + (f"'s input `{name}`" if len(expected) > 1 else "")
        sizes = "x".join(map(str, shape))
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{what} takes a tensor (a batch of {sizes}), got "
                             f"{type(x).__name__}")
        got = "x".join(map(str, x.shape))
        if x.dim() == len(shape) and tuple(x.shape) == shape:
            raise InputError(f"{what} takes a batch of {sizes}, got one example of {got}: "
                             "add the batch dimension (x.unsqueeze(0))")
        if x.dim() != len(shape) + 1:
            raise InputError(f"{what} takes a batch of {sizes} ({len(shape) + 1} dimensions "
                             f"with the batch), got {x.dim()} dimensions: {got}")
        # the axis every example must match: a sequence's or a grid's features (last), else
        # the first (a map's channels, a vector's features); token ids have none
        axis = len(shape) - 1 if layout in ("seq", "grid") else 0
        if layout != "tokens" and x.shape[axis + 1] != shape[axis]:
            kind = "channels" if layout not in ("vector", "seq", "grid") else "features"
            raise InputError(f"{what} takes a batch of {sizes} ({shape[axis]} {kind}), got "
                             f"{x.shape[axis + 1]} {kind}: {got} with the batch")
        fixed = module.fixed_by
        if fixed is not None and tuple(x.shape[1:]) != shape:
            raise InputError(f"{what} takes a batch of {sizes}, got {got} with the batch: "
                             f"it takes no other size (`{fixed}` depends on it; "
                             "passes/sizes.py)")
    # another size for a network that takes other sizes: does each of its layers take it?
    sizes = {name: tuple(x.shape[1:]) for name, x in zip(expected, inputs)}
    if module.fixed_by is None and sizes != expected:
        refused = module.input_sizes.refusal(sizes)
        if refused:
            layer, why = refused
            layouts = module.input_layouts
            raise InputError(f"`{module.network_name}` cannot take {_sizes(sizes, layouts)}: "
                             f"at `{layer}`, {why} (its spec's size: "
                             f"{_sizes(expected, layouts)})")


def _sizes(shapes: dict, layouts: dict) -> str:
    """`3x200x200`; token ids as `17 token ids`."""
    return ", ".join(f"{shape[0]} token ids" if layouts.get(name) == "tokens" else
                     "x".join(map(str, shape)) for name, shape in shapes.items())


def make_module(op: TorchModule) -> nn.Module:
    return resolve_class(op.cls)(**op.kwargs)


class ArchModule(nn.Module):
    """A network compiled from a spec. Call it on a batch: (N, C, H, W) or (N, F); with
    several inputs, on one batch of each, in the order of the spec's `input` lines."""

    def __init__(self, graph: LayerGraph, *, logits: bool = False, side_outputs: str = "train",
                 in_place: bool = True):
        super().__init__()
        self.network_name = graph.name
        self.input_shape = tuple(graph.input_shape)
        self.input_shapes = {name: tuple(s) for name, s in graph.input_shapes().items()}
        self.output_names = graph.main_outputs + (
            graph.side_outputs if side_outputs != "never" else [])
        # what each input's sizes mean, for the message of a wrong input (_check_inputs)
        self.input_layouts = {name: s.layout for name, s in graph.input_shapes().items()}
        # the layer that ties the network to its spec's input size, if one does (LeNet-5's
        # first linear layer, a ViT's position embedding): other sizes are refused up front
        self.input_sizes = InputSizes(graph)
        self.fixed_by = self.input_sizes.fixed_by
        self.register_forward_pre_hook(_check_inputs)
        in_place = in_place_layers(graph) if in_place else set()
        for name, node in graph.layers():
            op = torch_op(graph, name, in_place)
            if isinstance(op, TorchModule):
                self._register(module_path(name), make_module(op))
        for name, node in graph.layers():
            if node.get("tied"):
                # one Parameter in two modules: parameters() yields it once, the state_dict
                # has both keys (as Hugging Face's GPT-2 lm_head and wte)
                self._module(name).weight = self._module(node["tied"]).weight
            if node.get("frozen") and isinstance(torch_op(graph, name, in_place), TorchModule):
                self._module(name).requires_grad_(False)  # `frozen:`
        self.code = forward_source(graph, logits=logits, side_outputs=side_outputs,
                                   in_place=in_place)
        # Each model gets a class of its own whose `forward` is its generated function.
        # torch.compile caches compiled code per code object and stops recompiling one after 8
        # variants: a `forward` shared by every ArchModule made the ninth model compiled in a
        # process silently run eagerly, at half speed (found by benchmarks/model_speed.py).
        base = type(self)
        self.__class__ = type(base.__name__, (base,), {
            "forward": _compile(self.code, graph.name), "__module__": base.__module__,
            "__qualname__": base.__qualname__, "__doc__": base.__doc__})

    def _module(self, name: str) -> nn.Module:
        return self.get_submodule(".".join(module_path(name)))

    def _register(self, path: list[str], module: nn.Module) -> None:
        parent: nn.Module = self
        for segment in path[:-1]:
            child = parent._modules.get(segment)
            if child is None:
                child = nn.Module()
                parent.add_module(segment, child)
            parent = child
        parent.add_module(path[-1], module)


def _compile(source: str, name: str):
    filename = f"<archdsl:{name}:{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"torch": torch, "F": torch.nn.functional}
    exec(compile(source, filename, "exec"), namespace)  # our generated code, not the spec's
    return namespace["forward"]


def build(graph: LayerGraph, *, logits: bool = False, side_outputs: str = "train",
          in_place: bool = True) -> ArchModule:
    """Compile a layer graph into a PyTorch module.

    logits: leave out a final softmax (for training on logits with cross-entropy).
    side_outputs: "train" (side outputs returned in training mode only, like torchvision's
    GoogLeNet), "always", or "never".
    in_place: let relus and residual adds overwrite values that nothing else reads, as
    torchvision's models do (faster; values and gradients are the same). False keeps every
    layer's output intact, for forward hooks that keep them.
    """
    return ArchModule(graph, logits=logits, side_outputs=side_outputs, in_place=in_place)
