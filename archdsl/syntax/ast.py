"""The abstract syntax tree of a .arch file.

One dataclass per grammar rule (grammar.lark), each with the `span` of source it came from, so
every later error can point at the user's own text. The tree is plain data: elaboration
(archdsl/elaborate) gives it meaning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..diagnostics import Span

# ---- expressions ---------------------------------------------------------------------------


@dataclass
class Expr:
    span: Span


@dataclass
class Int(Expr):
    value: int


@dataclass
class Float(Expr):
    value: float


@dataclass
class Str(Expr):
    value: str


@dataclass
class Bool(Expr):
    value: bool


@dataclass
class NoneLit(Expr):
    pass


@dataclass
class Name(Expr):
    id: str


@dataclass
class InShape(Expr):
    """`in`: the shape of the tensor entering the current step (`in.c`, `in.h`, `in.w`)."""


@dataclass
class ListExpr(Expr):
    items: list[Expr]


@dataclass
class Dims(Expr):
    """`3x224x224`, `1x7`, `3x{res}x{res}`: a list of sizes."""

    items: list[Expr]


@dataclass
class BinOp(Expr):
    op: str  # + - * / // % **
    left: Expr
    right: Expr


@dataclass
class Unary(Expr):
    op: str  # + -
    operand: Expr


@dataclass
class Compare(Expr):
    op: str  # == != < <= > >=
    left: Expr
    right: Expr


@dataclass
class And(Expr):
    left: Expr
    right: Expr


@dataclass
class Or(Expr):
    left: Expr
    right: Expr


@dataclass
class Not(Expr):
    operand: Expr


@dataclass
class IfExp(Expr):
    cond: Expr
    then: Expr
    otherwise: Expr


@dataclass
class Arg:
    """One argument of a call: positional (`name` is None) or named."""

    span: Span
    name: str | None
    value: Expr


@dataclass
class Apply(Expr):
    """A function call inside an expression: `divisible(c * w, 8)`."""

    func: Expr
    args: list[Arg]


@dataclass
class Index(Expr):
    value: Expr
    index: Expr


@dataclass
class Attr(Expr):
    value: Expr
    name: str


# ---- steps ---------------------------------------------------------------------------------


@dataclass
class Step:
    span: Span


@dataclass
class Call(Step):
    """A layer or a block by name: `relu`, `conv(64, 3, stride=2)`, `bottleneck(128, s=2)`.

    `args` is None for a bare name. Table notation (`conv3-64`) is parsed into a Call too, with
    `notation` keeping the original token for messages and diagrams.
    """

    name: str
    name_span: Span
    args: list[Arg] | None
    notation: str | None = None


@dataclass
class Group(Step):
    """`[conv3-256 relu]`: an inline sequence."""

    steps: list[Step]


@dataclass
class Times(Step):
    """`basic(64) x 2`: the step repeated `count` times."""

    step: Step
    count: Expr


@dataclass
class Choose(Step):
    """`identity if s == 1 else conv_bn(c, 1, s)`: one of two steps, chosen at elaboration."""

    then: Step
    cond: Expr
    otherwise: Step


@dataclass
class When(Step):
    """`dropout(p) when p > 0`: the step, or nothing."""

    step: Step
    cond: Expr


# ---- statements ----------------------------------------------------------------------------


@dataclass
class Statement:
    span: Span


@dataclass
class TensorName:
    """The name of a label, an output or a `from`: `c4`, or computed: `p{i + 3}`. `parts`
    holds the text's pieces: strings, and expressions for the {...} pieces."""

    span: Span
    text: str
    parts: list

    @property
    def static(self) -> str | None:
        """The name, when it has no computed piece."""
        return self.text if self.parts == [self.text] else None


@dataclass
class StepLine(Statement):
    """Steps applied in order, to the flowing tensor or, after `from NAME`, to that one."""

    steps: list[Step]
    source: TensorName | None = None


@dataclass
class Input(Statement):
    """`input 3x224x224`, `input 197x768 seq`, `input 1024 tokens of 50257`; one of several:
    `input meta: 12`."""

    shape: Expr
    layout: str | None = None  # the layout word as written
    layout_span: Span | None = None
    vocab: Expr | None = None
    name: str | None = None
    name_span: Span | None = None


@dataclass
class Let(Statement):
    name: str
    value: Expr


@dataclass
class If(Statement):
    """`if`/`elif`/`else`: `branches` holds (condition, body) pairs in order."""

    branches: list[tuple[Expr, list[Statement]]]
    otherwise: list[Statement] | None


@dataclass
class Repeat(Statement):
    count: Expr
    var: str | None
    body: list[Statement]


@dataclass
class LayerDefaults:
    span: Span
    layer: str
    layer_span: Span
    args: list[Arg]


@dataclass
class With(Statement):
    defaults: list[LayerDefaults]
    body: list[Statement]


@dataclass
class Frozen(Statement):
    """`frozen:` or `frozen when COND:` — the parameters of the layers inside are frozen."""

    condition: Expr | None
    body: list[Statement]


@dataclass
class Branch:
    span: Span
    name: str | None
    body: list[Statement]


@dataclass
class BranchRepeat:
    """`repeat n as i:` inside a merge: its branches, n times (a C2f block's n bottlenecks
    joined by one concat)."""

    span: Span
    count: Expr
    var: str | None
    branches: list[Branch | BranchRepeat]


@dataclass
class Merge(Statement):
    op: str  # add | concat | mul
    branches: list[Branch | BranchRepeat]


@dataclass
class Output(Statement):
    name: TensorName
    body: list[Statement]


@dataclass
class Label(Statement):
    name: TensorName
    body: list[Statement]


# ---- definitions ---------------------------------------------------------------------------


@dataclass
class Param:
    span: Span
    name: str
    default: Expr | None


@dataclass
class Definition:
    span: Span
    name: str
    name_span: Span


@dataclass
class Use(Definition):
    """`use "blocks.arch"`: `name` holds the path as written."""


@dataclass
class Def(Definition):
    params: list[Param]
    body: Expr


@dataclass
class Block(Definition):
    params: list[Param]
    body: list[Statement]


@dataclass
class Network(Definition):
    params: list[Param]
    body: list[Statement]


@dataclass
class Recipe(Definition):
    """`recipe lenet5: optimizer="adamw", lr=0.003, epochs=40`: training options for the
    network of that name (and its variants), used where the command line gives none."""

    args: list[Arg]


@dataclass
class Variant(Definition):
    """`network resnet50 = resnet(bottleneck, [3, 4, 6, 3])`."""

    base: str
    base_span: Span
    args: list[Arg]


@dataclass
class Module:
    """One parsed file."""

    source: object  # diagnostics.Source
    definitions: list[Definition] = field(default_factory=list)


# ---- traversal ---------------------------------------------------------------------------

def children(node):
    """The syntax nodes directly inside `node` (dataclasses, lists and tuples of them)."""
    for f in dataclasses.fields(node):
        if f.name in ("span", "source"):
            continue
        yield from _nodes_in(getattr(node, f.name))


def _nodes_in(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _nodes_in(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, Span):
        yield value


def walk(node):
    """Every syntax node under `node`, itself first, in source order; iterative, so the
    deepest expression the parser accepts cannot exhaust Python's stack."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(reversed(list(children(item))))
