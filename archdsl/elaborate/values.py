"""Values a spec computes with, besides numbers, booleans, strings, lists and none.

Blocks, layers and functions are values too, so a block can take a block as argument
(`stage(bottleneck, ...)`) and a layer can be passed as an activation (`act=relu`). Calling one
with some arguments in an expression binds them (`act=leakyrelu(0.2)`, `unit=bottleneck(e=4)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..diagnostics import Span
from ..layers.registry import LayerKind
from ..syntax import ast


@dataclass(frozen=True)
class BoundArg:
    name: str | None
    value: object
    span: Span


@dataclass(frozen=True)
class LayerValue:
    kind: LayerKind
    bound: tuple[BoundArg, ...] = ()

    def description(self) -> str:
        return f"the layer `{self.kind.name}`"


@dataclass(frozen=True)
class BlockValue:
    definition: ast.Block
    unit: object  # program.FileUnit the block was defined in (its names are the block's globals)
    bound: tuple[BoundArg, ...] = ()

    @property
    def name(self) -> str:
        return self.definition.name

    def description(self) -> str:
        return f"the block `{self.name}`"


@dataclass(frozen=True)
class FunctionValue:
    definition: ast.Def
    unit: object

    def description(self) -> str:
        return f"the function `{self.definition.name}`"


@dataclass(frozen=True)
class NetworkValue:
    definition: ast.Network | ast.Variant
    unit: object

    def description(self) -> str:
        return f"the network `{self.definition.name}`"


@dataclass(frozen=True)
class Builtin:
    name: str
    function: object  # a Python callable over plain values
    signature: str
    doc: str

    def description(self) -> str:
        return f"the built-in function `{self.name}`"


@dataclass(frozen=True)
class TensorShape:
    """The value of `in`: the shape of the tensor entering the current step."""

    shape: tuple

    def description(self) -> str:
        return "the input shape `" + "x".join(map(str, self.shape)) + "`"


def type_name(value) -> str:
    """The kind of a value, as messages name it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return {LayerValue: "a layer", BlockValue: "a block", FunctionValue: "a function",
            NetworkValue: "a network", Builtin: "a function",
            TensorShape: "a shape"}.get(type(value), type(value).__name__)
