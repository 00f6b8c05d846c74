"""Argument types of layers: each checks and normalises one value given in a spec.

A type's `accept` returns the normalised value or raises ArgumentError with a message that
names what was expected. Values come from the expression evaluator: int, float, bool, str,
list, None, or references to layers and blocks.
"""

from __future__ import annotations

import math


class ArgumentError(Exception):
    """`code` is E0303 for a value of the wrong type, E0304 for one out of range."""

    def __init__(self, message: str, help: str | None = None, code: str = "E0303"):
        super().__init__(message)
        self.message = message
        self.help = help
        self.code = code


def value_text(value, limit: int | None = None, quote: bool = False) -> str:
    """A value as a spec would write it: `[1, 2]`, `true`, `none`, `0.5`, `bottleneck`.
    Strings are shown as they are, or in double quotes with `quote`.

    With a `limit` (characters), a longer text is cut and ends in `...`, and the work done is
    proportional to the limit, not to the value: lists may share their items, so a list of
    six items can stand for a million (`[[0] * 1000] * 1000`), and a message or a title that
    shows it must not walk them all."""
    if limit is None:
        return "".join(_chunks(value, quote))
    out, length = [], 0
    for chunk in _chunks(value, quote):
        out.append(chunk[:limit + 1])
        length += len(out[-1])
        if length > limit:
            return "".join(out)[:max(limit - 3, 0)] + "..."
    return "".join(out)


def _chunks(value, quote: bool):
    """The text of a value, piece by piece (lazily: see value_text)."""
    if isinstance(value, (list, tuple)):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ", "
            yield from _chunks(item, quote)
        yield "]"
    elif isinstance(value, str):
        yield f'"{value}"' if quote else value
    else:
        yield _scalar_text(value)


def _scalar_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    if hasattr(value, "definition"):  # a block, function or network
        return value.definition.name
    if hasattr(value, "kind"):  # a layer
        return value.kind.name
    if hasattr(value, "node"):  # a tensor given to a block by name
        return value.name
    if hasattr(value, "shape"):  # `in`
        return "x".join(map(str, value.shape))
    return type(value).__name__


# Messages quote a value at most this long.
SHOWN_VALUE = 80


def describe_value(value) -> str:
    """How a value is named in messages: `3`, "same", [1, 2], the layer `relu`. Long values
    are cut (value_text)."""
    if value is None or isinstance(value, (bool, int, float)):
        return f"`{_scalar_text(value)}`"
    if isinstance(value, (str, list, tuple)):
        return value_text(value, SHOWN_VALUE, quote=True)
    return getattr(value, "description", lambda: type(value).__name__)()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ArgType:
    description = "a value"

    def accept(self, value):
        raise NotImplementedError


class Int(ArgType):
    def __init__(self, minimum: int | None = None):
        self.minimum = minimum
        self.description = {None: "an integer", 0: "an integer ≥ 0", 1: "a positive integer"}.get(
            minimum, f"an integer ≥ {minimum}")

    def accept(self, value):
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            raise ArgumentError(f"expected {self.description}, got `{value}` (a float)",
                                help="convert it explicitly: int({expr}) or round({expr})")
        if not _is_int(value):
            raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")
        if self.minimum is not None and value < self.minimum:
            raise ArgumentError(f"expected {self.description}, got `{value}`", code="E0304")
        return value


class Float(ArgType):
    def __init__(self, low: float | None = None, high: float | None = None,
                 high_inclusive: bool = False, low_inclusive: bool = True):
        self.low, self.high = low, high
        self.low_inclusive, self.high_inclusive = low_inclusive, high_inclusive
        if low is not None and high is not None:
            lo = "[" if low_inclusive else "("
            hi = "]" if high_inclusive else ")"
            self.description = f"a number in {lo}{low:g}, {high:g}{hi}"
        elif low is not None:
            self.description = f"a number {'≥' if low_inclusive else '>'} {low:g}"
        else:
            self.description = "a number"

    def accept(self, value):
        if not (_is_int(value) or isinstance(value, float)):
            raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise ArgumentError(f"expected {self.description}, got `{value}`")
        too_low = self.low is not None and (value < self.low or
                                            (value == self.low and not self.low_inclusive))
        too_high = self.high is not None and (value > self.high or
                                              (value == self.high and not self.high_inclusive))
        if too_low or too_high:
            raise ArgumentError(f"expected {self.description}, got `{value:g}`", code="E0304")
        return value


class Bool(ArgType):
    description = "`true` or `false`"

    def accept(self, value):
        if not isinstance(value, bool):
            raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")
        return value


class Pair(ArgType):
    """A size per spatial axis: `3` means 3x3; `1x7` or `[1, 7]` means height 1, width 7."""

    def __init__(self, minimum: int = 1):
        self.minimum = minimum
        self.description = ("a positive size such as 3 or 1x7" if minimum == 1
                            else f"a size ≥ {minimum} such as 3 or 1x7")

    def accept(self, value):
        pair = (value, value) if _is_int(value) else value
        if (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(_is_int(v) for v in pair)):
            if min(pair) < self.minimum:
                raise ArgumentError(f"expected {self.description}, got {describe_value(value)}",
                                    code="E0304")
            return tuple(pair)
        raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")


class Sizes(ArgType):
    """A size for every spatial axis of a map: `3` (the same on each), or one per axis —
    `1x7` or `[1, 7]` on a 2-D map, `3x3x3` on a volume. An int is kept as it is and a list
    becomes a tuple; how many sizes the input needs is known only once it is (per_axis)."""

    def __init__(self, minimum: int = 1):
        self.minimum = minimum
        what = "a positive size" if minimum == 1 else f"a size ≥ {minimum}"
        self.description = f"{what} such as 3 or 1x7"

    def accept(self, value):
        sizes = [value] if _is_int(value) else value
        if (isinstance(sizes, (list, tuple)) and 1 <= len(sizes) <= 3
                and all(_is_int(v) for v in sizes)):
            if min(sizes) < self.minimum:
                raise ArgumentError(f"expected {self.description}, got {describe_value(value)}",
                                    code="E0304")
            return value if _is_int(value) else tuple(value)
        raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")


def per_axis(value, axes: int, name: str):
    """A Sizes or Padding value as a tuple of one entry per spatial axis; ValueError (with the
    message for the user) when a list gives another number of sizes."""
    if _is_int(value):
        return (value,) * axes
    if len(value) != axes:
        raise ValueError(f"`{name}` gives {len(value)} sizes ({value_text(list(value))}) for "
                         f"an input with {axes} spatial ax{'is' if axes == 1 else 'es'}")
    return tuple(value)


class Padding(ArgType):
    """`same`, `valid`, a number of pixels (`1`), or one per axis (`[0, 3]`, `0x3`)."""

    description = "`same`, `valid`, or a padding such as 1 or [0, 3]"

    def accept(self, value):
        if value in ("same", "valid"):
            return value
        if _is_int(value):
            return _paddings(value, (value,), 1, self.description)[0]
        count = len(value) if isinstance(value, (list, tuple)) and 1 <= len(value) <= 3 else 2
        return _paddings(value, value, count, self.description)


def _paddings(given, sides, count: int, description: str) -> tuple:
    """`sides` as a tuple of `count` non-negative ints, or an error about `given`."""
    if (isinstance(sides, (list, tuple)) and len(sides) == count
            and all(_is_int(v) for v in sides)):
        if min(sides) < 0:
            raise ArgumentError(f"padding cannot be negative, got {describe_value(given)}",
                                code="E0304")
        return tuple(sides)
    raise ArgumentError(f"expected {description}, got {describe_value(given)}")


class Pads4(ArgType):
    """Explicit zero padding: `1`, per axis `[top_bottom, left_right]`, or
    `[left, right, top, bottom]` (the order of PyTorch's ZeroPad2d)."""

    description = "a padding such as 1, [1, 2] or [left, right, top, bottom]"

    def accept(self, value):
        sides = value
        if _is_int(value):
            sides = [value] * 4
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            sides = [value[1], value[1], value[0], value[0]]
        return _paddings(value, sides, 4, self.description)


class Numbers(ArgType):
    """A list of a fixed count of positive numbers, each with its meaning (`names`): Llama
    3.1's rotary scaling `[8, 1, 4, 8192]`."""

    def __init__(self, *names: str):
        self.names = names
        self.description = f"a list of {len(names)} positive numbers [{', '.join(names)}]"

    def accept(self, value):
        if not (isinstance(value, (list, tuple)) and len(value) == len(self.names)
                and all(_is_int(v) or isinstance(v, float) for v in value)):
            raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")
        if not all(math.isfinite(v) and v > 0 for v in value):
            raise ArgumentError(f"expected {self.description}, got {describe_value(value)}",
                                code="E0304")
        return tuple(float(v) for v in value)


class Choice(ArgType):
    def __init__(self, *choices: str):
        self.choices = choices
        self.description = " or ".join(f"`{c}`" for c in choices)

    def accept(self, value):
        if value not in self.choices:
            raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")
        return value


class Optional(ArgType):
    def __init__(self, inner: ArgType):
        self.inner = inner
        self.description = f"{inner.description} or `none`"

    def accept(self, value):
        return None if value is None else self.inner.accept(value)


class Activation(ArgType):
    """A reference to an activation layer (`relu`, `leakyrelu(0.2)`) or `none`."""

    description = "an activation such as `relu` or `none`"

    def accept(self, value):
        from .registry import LayerValue  # registry.py declares parameters with these types

        if value is None:
            return None
        if isinstance(value, LayerValue) and value.kind.family == "activation":
            return value
        if isinstance(value, LayerValue) and value.kind.name == "identity" and not value.bound:
            return None  # no activation, as `act=identity` means for a block's parameter
        raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")


class TensorLabel(ArgType):
    """The name of a tensor a label made (`tied=wte`, `memory=encoder`); the elaborator
    checks that it exists and is in scope (and, for `tied`, was computed by a layer with a
    weight to share)."""

    def __init__(self, example: str = "tied=wte", what: str = "a labelled layer"):
        self.example = example
        self.description = f"the name of {what}, such as `{example.split('=')[1]}`"

    def accept(self, value):
        if isinstance(value, str) and value.isidentifier():
            return value
        raise ArgumentError(f"expected {self.description}, got {describe_value(value)}",
                            help=f"write the label's name bare: `{self.example}`")
