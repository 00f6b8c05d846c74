"""The layer registry: every layer kind declared once, with all its facts.

A layer kind is a class that states, side by side (MLIR ODS's "single source of truth"):

    name, aliases, family   what the spec calls it and how diagrams colour it
    params                  its signature: names, types, defaults (PyTorch's where it has one)
    doc                     one paragraph for `docs/` and error messages
    shape(a, x)             the output shape, or ShapeError
    params_count(a, x)      its parameters: trainable, buffers, frozen (Params)
    macs(a, x, y)           multiply-adds of weights (the headline figure, bias excluded)
    flops(a, x, y)          every arithmetic operation of an inference forward pass
    saves, saved_extra      what autograd keeps of it for the backward pass, and autocast's
    autocast, view          type for it (the training-memory estimate, passes/memory.py)
    torch(a, x, y)          how to build it in PyTorch: a module class and its kwargs, or an
                            expression — a description, not an instance, so the module builder
                            and the source exporter share it and torch is never imported here
    describe(a)             the short notation shown in summaries and diagrams

    accepts                 the layouts of input it takes (archdsl.shapes): checked before
                            `shape` runs, with a hint on how to get there
    resolve(a, x)           the arguments made definite for this input (a kernel `3` on a
                            2-D map is 3x3): run once before the facts above

`a` is the dict of all arguments (defaults filled in, values normalised by their types, then
resolved); `x` is the input Shape (for merges, the list of input Shapes), `y` the output
Shape: sizes without the batch, and a layout (shapes.py).
Adding a layer touches one file; the tests parametrised over the registry test it for free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from ..shapes import (FEATURES, GRID, LAYOUT_WORDS, MAP2D, MAPS, SEQ, TOKENS, VECTOR, Shape,
                      describe as describe_shape, show)
from .types import ArgType, Optional, TensorLabel

REQUIRED = object()


class Params(NamedTuple):
    """A layer's parameters, by what training does with them. Keras counts `trainable` and
    "non-trainable" (buffers + frozen); PyTorch's `model.parameters()` holds trainable +
    frozen (the frozen ones with requires_grad=False), and `model.buffers()` the buffers.

    trainable   what an optimizer updates: weights, biases, BatchNorm's scale and shift
    buffers     state that is not a parameter: BatchNorm's running mean and variance (and all
                four tensors of a frozen BatchNorm, torchvision's FrozenBatchNorm2d)
    frozen      parameters training leaves as they are: YOLOv8's DFL integral weights, the
                layers under `frozen:`
    """

    trainable: int = 0
    buffers: int = 0
    frozen: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.buffers + self.frozen

    @property
    def non_trainable(self) -> int:
        """Keras' "Non-trainable params"."""
        return self.buffers + self.frozen

    @property
    def torch(self) -> int:
        """PyTorch's `sum(p.numel() for p in model.parameters())` (Ultralytics' "parameters")."""
        return self.trainable + self.frozen

    def __add__(self, other):
        return Params(self[0] + other[0], self[1] + other[1], self[2] + other[2])

    @classmethod
    def of(cls, value) -> "Params":
        """A layer's declared count as Params: plug-ins may return a (trainable, buffers)
        pair."""
        return value if isinstance(value, Params) else Params(*value)


@dataclass(frozen=True)
class Param:
    name: str
    type: ArgType
    default: object = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class ShapeError(Exception):
    """A layer cannot apply to its input. `arg` names the argument to point at, if any;
    `code` is the diagnostic's (E0403: no output left, E0404: wrong kind of input,
    E0405: channels and groups disagree)."""

    def __init__(self, message: str, help: str | None = None, arg: str | None = None,
                 code: str = "E0404"):
        super().__init__(message)
        self.message = message
        self.help = help
        self.arg = arg
        self.code = code


@dataclass(frozen=True)
class TorchModule:
    """Build `cls(**kwargs)`; call it on the input after the `pre` steps.

    `cls` is a dotted path: `torch.nn.Conv2d`, or one of archdsl's own small modules in
    `archdsl.backends.torch_modules`. `pre` holds input adjustments that need no parameters,
    so they stay out of the state_dict: ("flatten",) or ("pad", (left, right, top, bottom), value).
    """

    cls: str
    kwargs: dict = field(default_factory=dict)
    pre: tuple = ()


@dataclass(frozen=True)
class TorchFunction:
    """A parameter-free operation written as a Python expression over the inputs:
    `{x}` is the input, `{xs}` the comma-separated inputs of a merge. `in_place`: the same
    operation writing into its first input (for layers that run in place)."""

    template: str
    in_place: str = ""

    def expression(self, inputs: list[str]) -> str:
        """The template filled in with the inputs' variable names."""
        if "{x}" in self.template:
            return self.template.replace("{x}", inputs[0])
        return self.template.format(*inputs)


class LayerKind:
    name: str = ""
    aliases: tuple[str, ...] = ()
    family: str = ""
    doc: str = ""
    params: tuple[Param, ...] = ()
    # merges take two or more inputs; every other layer exactly one
    is_merge: bool = False
    # `act=relu` on this layer appends an activation layer after it (Keras' `activation=`)
    accepts_act: bool = False
    # Running in place, as torchvision's ReLU(inplace=True), SiLU(inplace=True) and
    # `out += identity` do, saves a tensor's allocation and a pass over memory. A layer may
    # overwrite its (first) input when PyTorch computes the same values and gradients either
    # way: relu, silu, hardswish... (their modules take `inplace=True`; autograd keeps what
    # their backward needs) and add (its TorchFunction has an `in_place` form). Not elu,
    # whose in-place gradient differs in the last bits. The compiler does so when that input
    # is a fresh value that nothing else reads and whose producer's backward does not need it
    # (`output_disposable`: convolutions, linear, bn, pools, merges). Dropout and droppath
    # return their input itself at inference (`passes_input_through`): their output is
    # disposable when their input is, as torchvision's `result += input` after its
    # StochasticDepth.
    runs_in_place: bool = False
    output_disposable: bool = False
    passes_input_through: bool = False
    # torch.compile's dynamo runs a module of this kind (nn.LSTM, nn.GRU) eagerly, and the
    # whole forward with it, unless torch._dynamo.config.allow_rnn is set; `archdsl train
    # --compile` sets it for a network with one
    is_rnn: bool = False
    # The layouts of input the layer takes (shapes.py); merges: of each branch.
    accepts: tuple[str, ...] = FEATURES
    # Parameters that name a further tensor the layer reads, each with the argument its
    # shape fills in: upsample's {"like": "size"} reads only the shape (`like=input` is
    # torchvision's F.interpolate(x, size=input.shape[-2:])); cross_attention's {"memory":
    # "memory_length"} reads the values too (the module is called as module(x, memory)). The
    # elaborator makes each named tensor a further input of the node, after the data input,
    # and `with_shapes` fills in the argument, so that every stage sees a layer of one input
    # and plain arguments; the code it compiles to reads the shape when it runs, so the module
    # takes other sizes.
    shape_inputs: dict[str, str] = {}
    # Whether the layer reads those tensors' values too (cross_attention), not their shapes
    # alone (upsample): diagrams draw them as data, not as dashed "size" edges
    reads_shape_inputs: bool = False
    # Named arguments besides its parameters are sizes of named axes, collected in
    # a["sizes"] (rearrange's `h=14`)
    named_sizes: bool = False
    # What a training pass keeps for the backward one (passes/memory.py), as PyTorch's
    # derivative formulas do: `saves` names the layer's tensors it keeps, "input" (all of its
    # inputs) and/or "output" (a convolution keeps its input, relu and sigmoid their output,
    # an add nothing); `saved_extra` returns the tensors of its own besides them (max-pool's
    # indices, dropout's mask) as (values, dtype) pairs, dtype "act" for the type it computes
    # in. `autocast`: the type autocast runs it in, "low" (bf16: convolutions and matrix
    # products), "fp32" (the norms and softmax it keeps in full precision) or None (the type
    # of its inputs). `view`: its output is its input's memory (flatten, pick).
    saves: tuple[str, ...] = ("input",)
    autocast: str | None = None
    view: bool = False

    def saved(self, a: dict) -> tuple[str, ...]:
        """`saves` for these arguments (a frozen bn keeps nothing)."""
        return self.saves

    def saved_extra(self, a: dict, x, y: Shape) -> tuple[tuple[int, str], ...]:
        return ()

    def resolve(self, a: dict, x) -> dict:
        return a

    def tensor_params(self) -> set[str]:
        """The parameters that take the name of a labelled tensor (`tied=`, `like=`), not a
        value."""
        return {p.name for p in self.params if isinstance(p.type, TensorLabel) or
                (isinstance(p.type, Optional) and isinstance(p.type.inner, TensorLabel))}

    def with_shapes(self, a: dict, x, shapes: list) -> dict:
        """The arguments with the parameters that `shape_inputs` fill (None in `a`) filled in
        from the shapes of the tensors named (in their order); a ShapeError when one will not
        do."""
        return a

    def refill(self, a: dict, x, shapes: list) -> dict:
        """A node's arguments filled in again from other shapes of its shape inputs (passes/
        sizes.py infers the shapes at other input sizes)."""
        if not self.shape_inputs:
            return a
        return self.with_shapes({**a, **dict.fromkeys(self.shape_inputs.values())}, x, shapes)

    def shape(self, a: dict, x) -> Shape:
        raise NotImplementedError

    def params_count(self, a: dict, x) -> tuple[int, int]:
        raise NotImplementedError

    def macs(self, a: dict, x, y: Shape) -> int:
        raise NotImplementedError

    def flops(self, a: dict, x, y: Shape) -> int:
        raise NotImplementedError

    def macs_per_batch(self, a: dict, x) -> int:
        """The part of `macs` computed once per batch, however large (Swin V2's position-bias
        MLP, which depends on no input): counted once per image, as a batch of one runs it."""
        return 0

    # How the layer runs when a language model writes a token at a time with a cache
    # (train/text.py `generate`): "position" where each position's output depends on that
    # position alone (a linear layer, a norm over features, an activation, an add: the new
    # tokens are all it needs), "cached" where it keeps what the earlier positions left
    # (causal attention's keys and values, a position embedding's offset), None where it
    # needs the whole sequence (then the whole window is read again for every token).
    decoding: str | None = None

    def decodes(self, a: dict, x) -> str | None:
        """`decoding` for these arguments (attention is cached only when causal)."""
        return self.decoding

    def onnx_one_size(self, a: dict, x) -> str | None:
        """Why this layer, written to ONNX, would run at its input's size only (None: at any
        size the network takes). `archdsl compile -o NAME.onnx --dynamic` refuses it."""
        return None

    def torch(self, a: dict, x, y: Shape) -> TorchModule | TorchFunction:
        raise NotImplementedError

    def describe(self, a: dict) -> str:
        return self.name

    def weight_shape(self, a: dict, x) -> tuple | None:
        """The shape of the weight another layer may share (`tied=`); None: none to share."""
        return None

    @property
    def signature(self) -> str:
        parts = []
        for p in self.params:
            parts.append(p.name if p.required else f"{p.name}={_show_default(p.default)}")
        if self.accepts_act:
            parts.append("act=none")
        return f"{self.name}({', '.join(parts)})"


def _show_default(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


class NoCost(LayerKind):
    """Moves or masks data: no parameters, no multiply-adds, no arithmetic at inference."""

    saves = ()  # their backward moves the gradient back: it needs only sizes

    def params_count(self, a, x):
        return Params()

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return 0


# ---- layers as values of a spec -----------------------------------------------------------

@dataclass(frozen=True)
class BoundArg:
    """An argument as a call gives it: by position (name None) or by name, with its value and
    where it was written (a diagnostics.Span)."""

    name: str | None
    value: object
    span: object


@dataclass(frozen=True)
class LayerValue:
    """A layer kind as a value of the language (`act=relu`, `act=leakyrelu(0.2)`): the kind
    and the arguments bound to it so far."""

    kind: LayerKind
    bound: tuple[BoundArg, ...] = ()

    def description(self) -> str:
        return f"the layer `{self.kind.name}`"


# ---- the registry --------------------------------------------------------------------------

LAYERS: dict[str, LayerKind] = {}
_ALIASES: dict[str, LayerKind] = {}

# The facts every kind must state itself: no layer is ever silently counted as zero.
FACTS = ("shape", "params_count", "macs", "flops", "torch")


class LayerDeclarationError(TypeError):
    """A layer kind declared wrongly (by archdsl or by a plugin)."""


def register(cls):
    """Class decorator: declare a layer kind. The same for archdsl's own layers and for
    layers from user code (`archdsl.register_layer`): every fact must be stated, every
    parameter typed, every name new."""
    if not (isinstance(cls, type) and issubclass(cls, LayerKind)):
        raise LayerDeclarationError("a layer kind is a subclass of archdsl.layers.LayerKind")
    kind = cls()
    if not (isinstance(kind.name, str) and kind.name.isidentifier()):
        raise LayerDeclarationError(f"layer name {kind.name!r} must be an identifier")
    missing = [f for f in FACTS if getattr(cls, f) is getattr(LayerKind, f)]
    if missing:
        raise LayerDeclarationError(f"layer `{kind.name}` does not state: {', '.join(missing)}")
    for p in kind.params:
        if not isinstance(p, Param) or not isinstance(p.type, ArgType):
            raise LayerDeclarationError(f"layer `{kind.name}`: parameter {p!r} must be a Param "
                                        "with an archdsl.layers.types type")
    for name in (kind.name, *kind.aliases):
        if name in _ALIASES:
            raise LayerDeclarationError(f"layer name `{name}` is already declared")
    for name in (kind.name, *kind.aliases):
        _ALIASES[name] = kind
    LAYERS[kind.name] = kind
    return cls


def unregister(name: str) -> None:
    kind = LAYERS.pop(name)
    for alias in (kind.name, *kind.aliases):
        _ALIASES.pop(alias, None)


def lookup(name: str) -> LayerKind | None:
    return _ALIASES.get(name)


def all_names() -> list[str]:
    return sorted(_ALIASES)


# ---- helpers shared by the declarations ----------------------------------------------------

def numel(shape: Shape) -> int:
    return math.prod(shape)


def spatial(kind: str, x: Shape) -> tuple[int, int, int]:
    """The (C, H, W) of a 2-D feature map, or a ShapeError naming the layer (for layers
    declared before layouts; a kind's `accepts` says the same for the built-in ones)."""
    check_layout(kind, (MAP2D,), x)
    return x


def check_layout(kind: str, accepts: tuple[str, ...], x: Shape) -> None:
    """A ShapeError (E0404) unless the input's layout is one the layer takes, with a hint on
    how to get from the layout it has to one it takes."""
    layout = getattr(x, "layout", None)
    if layout in accepts:
        return
    raise ShapeError(f"`{kind}` needs {_layout_list(accepts)}, got {describe_shape(x)}",
                     help=_layout_hint(layout, accepts))


def _layout_list(accepts) -> str:
    if set(MAPS) <= set(accepts) and len(accepts) == len(MAPS):
        return "a map (CxL, CxHxW or CxDxHxW)"
    words = [LAYOUT_WORDS[layout] for layout in accepts]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _layout_hint(have: str, accepts) -> str | None:
    """How a spec moves from the layout `have` to one of `accepts`: the explicit steps."""
    if have == TOKENS:
        return "`embedding(vocab, d)` turns token ids into a sequence of vectors"
    if have == VECTOR and any(a in MAPS for a in accepts):
        return "put it before the `flatten` or `linear` that made the vector"
    if have == SEQ and any(a in MAPS for a in accepts):
        return 'a sequence becomes a map with `rearrange("(h w) c -> c h w", h=...)`'
    if have == GRID and any(a in MAPS for a in accepts):
        return 'a grid becomes a map with `rearrange("h w c -> c h w")`'
    if have == MAP2D and GRID in accepts:
        return 'a map becomes a grid (channels last) with `rearrange("c h w -> h w c")`'
    if have in MAPS and SEQ in accepts:
        return 'a map becomes a sequence of its positions with `rearrange("c h w -> (h w) c")`'
    if have == GRID and SEQ in accepts:
        return 'a grid becomes a sequence of its positions with `rearrange("h w c -> (h w) c")`'
    if have == SEQ and VECTOR in accepts:
        return "`pick(0)` takes one position out (a class token); `flatten` joins them all"
    if have in MAPS and any(a in MAPS for a in accepts):
        return f"this layer works on {_layout_list([a for a in accepts if a in MAPS])} only"
    if have in MAPS and VECTOR in accepts:
        return "`flatten` or `gap` turns a map into a vector"
    return None
