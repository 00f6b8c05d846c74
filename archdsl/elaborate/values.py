"""Values a spec computes with, besides numbers, booleans, strings, lists and none.

Blocks, layers and functions are values too, so a block can take a block as argument
(`stage(bottleneck, ...)`) and a layer can be passed as an activation (`act=relu`). Calling one
with some arguments in an expression binds them (`act=leakyrelu(0.2)`, `unit=bottleneck(e=4)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layers.registry import BoundArg, LayerValue  # layers are values too (declared there)
from ..syntax import ast

__all__ = ["BoundArg", "LayerValue", "BlockValue", "FunctionValue", "NetworkValue", "Builtin",
           "TensorShape", "TensorValue", "ListValue", "type_name"]


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


@dataclass(frozen=True, eq=False)
class TensorValue:
    """A tensor given to a block by name (`decoder_layer(8, memory=encoder)`): inside the
    block, the parameter names that tensor, as a label would (`from memory`,
    `cross_attention(8, memory=memory)`). `node` is the graph node that computed it."""

    name: str
    node: object

    def description(self) -> str:
        return f"the tensor `{self.name}`"


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
            TensorShape: "a shape", TensorValue: "a tensor"}.get(type(value), type(value).__name__)


class ListValue(list):
    """A list of the language. Specs never change a list, so lists share their items freely:
    `[xs] * 1000` holds one `xs` a thousand times. Each list therefore knows its `size` (its
    items, and the characters of its strings, counted through nested lists, shared ones as
    often as they occur: the work any walk over it does, when it is compared or turned into
    JSON) and its `depth` (lists inside lists). Both are bounded (limits.MAX_LIST,
    limits.MAX_VALUE_DEPTH), so no value can stand for more than it costs to build."""

    __slots__ = ("size", "depth")

    def __init__(self, items=(), size: int | None = None, depth: int | None = None):
        """`size` and `depth`, when the caller knows them (`xs * n`, `xs + ys`), spare a walk
        over the items."""
        super().__init__(items)
        if size is None or depth is None:
            size, depth = len(self), 0
            for item in self:
                if isinstance(item, ListValue):
                    size += item.size
                    depth = max(depth, item.depth)
                elif isinstance(item, str):
                    size += len(item)
            depth += 1
        self.size = size
        self.depth = depth

    @staticmethod
    def measure(value) -> tuple[int, int]:
        """(size, depth) of any list; a ListValue knows its own."""
        if isinstance(value, ListValue):
            return value.size, value.depth
        v = ListValue(value)
        return v.size, v.depth


def size_of(value) -> int:
    """The work of walking a value: 1 for a number, the length of a string, a list's size."""
    if isinstance(value, ListValue):
        return value.size
    if isinstance(value, str):
        return max(len(value), 1)
    return 1


def from_python(value):
    """A value given through the Python API (`spec.network(layers=[2, 2, 2, 2])`) as a value of
    the language, checked as the language checks its own: numbers within range, strings and
    lists within their limits, lists nested at most MAX_VALUE_DEPTH deep (so a value nested
    a million deep, or containing itself, is refused instead of recursing). Raises ValueError
    saying what is wrong."""
    from ..limits import MAX_INT, MAX_LIST, MAX_VALUE_DEPTH

    converted: dict[int, ListValue] = {}  # keeps shared lists shared, and bounds the work
    visited = 0

    def convert(v, depth: int):
        nonlocal visited
        if v is None or isinstance(v, (bool, BlockValue, FunctionValue, LayerValue)):
            return v
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise ValueError("an integer beyond ±2**62")
            return int(v)
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError(f"the number {v}")
            return v
        if isinstance(v, str):
            if len(v) > MAX_LIST:
                raise ValueError(f"a string longer than {MAX_LIST:,} characters")
            return v
        if isinstance(v, (list, tuple)):
            if id(v) in converted:
                return converted[id(v)]
            if depth >= MAX_VALUE_DEPTH:
                raise ValueError(f"lists nested more than {MAX_VALUE_DEPTH} deep")
            visited += len(v)
            if visited > MAX_LIST:
                raise ValueError(f"lists of more than {MAX_LIST:,} items")
            result = ListValue([convert(item, depth + 1) for item in v])
            if result.size > MAX_LIST:
                raise ValueError(f"a list that holds more than {MAX_LIST:,} items and "
                                 "characters, counting the lists inside it")
            converted[id(v)] = result
            return result
        raise ValueError(f"a {type(v).__name__}; give a number, a boolean, a string, a list "
                         "or none (or a string holding an expression of the language)")

    return convert(value, 0)
