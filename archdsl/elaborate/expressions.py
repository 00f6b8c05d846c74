"""The expression language: evaluation, names in scope, and the built-in functions.

Expressions are pure: numbers, booleans, strings, lists, and references to layers, blocks and
functions. Nothing in them can run Python. Evaluation is bounded: integers beyond ±2**62,
lists beyond a million items (counted through nested and shared lists, values.ListValue),
lists nested more than 64 deep and function recursion beyond 200 calls are refused with a
diagnostic instead of exhausting the machine. Work on values is metered by their size, not
only by the number of operations: building, copying or comparing a long list costs work
units in proportion (limits.ITEMS_PER_WORK), from the same budget as statements and layers.
"""

from __future__ import annotations

import math
import operator

from ..diagnostics import Diagnostic, SpecError
from ..layers import registry
from ..limits import (FUNCTION_CALL_WORK, ITEMS_PER_WORK, MAX_CALL_DEPTH, MAX_INT, MAX_LIST,
                      MAX_VALUE_DEPTH)
from ..shapes import GRID, MAP1D, MAP2D, MAP3D, MAPS, SEQ, TOKENS, VECTOR
from ..shapes import describe as describe_shape
from ..syntax import ast
from .values import (BlockValue, BoundArg, Builtin, FunctionValue, LayerValue, ListValue,
                     NetworkValue, TensorShape, size_of, type_name)



class Failed:
    """The value of a `let` whose expression failed (its error is already reported)."""


FAILED = Failed()


class BuiltinError(Exception):
    """Raised by a built-in function; becomes a diagnostic at the call."""


# ---- built-in functions --------------------------------------------------------------------

def _number(value, what="argument"):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BuiltinError(f"{what} must be a number, got {type_name(value)}")
    return value


def _numbers(args, what="argument"):
    """The numbers of `args`, checked at C speed (min, max and sum may walk a million items;
    a Python call per item would cost 30 times the copy the work budget charges for)."""
    if not set(map(type, args)) <= {int, float}:  # exact types: a boolean is no number
        for a in args:
            _number(a, what)
    return args


def _number_list(args):
    if len(args) == 1 and isinstance(args[0], list):
        args = args[0]
    if not args:
        raise BuiltinError("needs at least one number")
    return _numbers(args)


def _divisible(value, divisor=8, min_value=None):
    """Round `value` to a multiple of `divisor`, never below 90% of it: torchvision's
    `_make_divisible` (from the TensorFlow MobileNet/EfficientNet code), used to scale channels."""
    value, divisor = _number(value), _number(divisor)
    if not isinstance(divisor, int) or divisor < 1:
        raise BuiltinError("the divisor must be a positive integer")
    min_value = divisor if min_value is None else _number(min_value)
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


def _round(value, digits=None):
    value = _number(value)
    if digits is None:
        return int(round(value))
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise BuiltinError(f"the number of digits must be an integer, got {type_name(digits)}")
    # Beyond ±400 digits the answer no longer changes (every number here is below 10**309),
    # and Python would compute 10**|digits| exactly: round(x, -30000000) takes minutes.
    return round(value, max(-400, min(digits, 400)))


def _log(value, base=None):
    value = _number(value)
    if value <= 0:
        raise BuiltinError(f"the logarithm needs a positive number, got {value}")
    if base is None:
        return math.log(value)
    base = _number(base)
    if base <= 0 or base == 1:
        raise BuiltinError(f"a logarithm's base must be positive and not 1, got {base}")
    return math.log(value) / math.log(base)


def _len(value):
    if not isinstance(value, (list, str)):
        raise BuiltinError(f"argument must be a list, got {type_name(value)}")
    return len(value)


def _sum(value):
    if not isinstance(value, list):
        raise BuiltinError(f"argument must be a list, got {type_name(value)}")
    return sum(_numbers(value, "every item"))


BUILTINS = {b.name: b for b in [
    Builtin("min", lambda *a: min(_number_list(a)), "min(a, b, ...) or min(list)", "the smallest"),
    Builtin("max", lambda *a: max(_number_list(a)), "max(a, b, ...) or max(list)", "the largest"),
    Builtin("int", lambda x: int(_number(x)), "int(x)", "x truncated toward zero"),
    Builtin("round", _round, "round(x, digits=none)", "x rounded to the nearest (half to even)"),
    Builtin("ceil", lambda x: math.ceil(_number(x)), "ceil(x)", "the smallest integer ≥ x"),
    Builtin("floor", lambda x: math.floor(_number(x)), "floor(x)", "the largest integer ≤ x"),
    Builtin("abs", lambda x: abs(_number(x)), "abs(x)", "the absolute value"),
    Builtin("log", _log, "log(x, base=e)", "the logarithm (RegNet's quantised widths)"),
    Builtin("divisible", _divisible, "divisible(v, divisor=8, min_value=divisor)",
            "v rounded to a multiple of divisor, never below 90% of v (EfficientNet, MobileNet)"),
    Builtin("len", _len, "len(list)", "the number of items"),
    Builtin("sum", _sum, "sum(list)", "the sum of the items"),
]}

# The arithmetic operators over numbers (`**` is _power's: it is bounded before it is computed).
_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
               "//": operator.floordiv, "%": operator.mod}
_NUMBERS = (int, float)  # exact types: a boolean is not a number here

# Names that mean themselves: padding modes, and the constants of the language.
CONSTANTS = {"same": "same", "valid": "valid"}


# ---- scopes --------------------------------------------------------------------------------

class Scope:
    """Names visible at a point of a spec: local bindings, innermost first, then the names of
    the file (its definitions and those it `use`s), then layers, then built-ins."""

    def __init__(self, unit, parent: "Scope | None" = None):
        self.unit = unit
        self.parent = parent
        self.names: dict[str, object] = {}

    def child(self) -> "Scope":
        return Scope(self.unit, self)

    def define(self, name: str, value) -> None:
        self.names[name] = value

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        if name in self.unit.namespace:
            return self.unit.value(name)
        kind = registry.lookup(name)
        if kind is not None:
            return LayerValue(kind)
        if name in BUILTINS:
            return BUILTINS[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        raise KeyError(name)

    def visible(self) -> set[str]:
        names, scope = set(), self
        while scope is not None:
            names |= set(scope.names)
            scope = scope.parent
        return names | set(self.unit.namespace) | set(registry.all_names()) | set(BUILTINS) \
            | set(CONSTANTS)


# ---- evaluation ----------------------------------------------------------------------------

class Evaluator:
    """Evaluates expressions. `context` supplies `in` (the current tensor's shape) and the notes
    that locate an error in the chain of block calls."""

    def __init__(self, context):
        self.context = context
        self.depth = 0

    def error(self, code, message, span, help=None) -> SpecError:
        return SpecError(Diagnostic(code, message, span, self.context.notes(), help))

    def charge(self, span, items: int) -> None:
        """Meter work on values: `items` list items or characters built, copied or compared."""
        if items >= ITEMS_PER_WORK:
            self.context.tick(span, items // ITEMS_PER_WORK)

    def new_list(self, items: list, span, size: int | None = None,
                 depth: int | None = None) -> ListValue:
        """A list value, within the limits on its length, its size and its nesting. `size`
        and `depth`, when known beforehand, are checked before anything is built."""
        if len(items) > MAX_LIST:
            raise self.error("E0604", f"list too long (more than {MAX_LIST:,} items)", span)
        if size is not None and size > MAX_LIST:
            raise self._too_large(span)
        self.charge(span, len(items))
        value = ListValue(items, size, depth)
        if value.size > MAX_LIST:
            raise self._too_large(span)
        if value.depth > MAX_VALUE_DEPTH:
            raise self.error("E0604", f"lists nested more than {MAX_VALUE_DEPTH} deep", span)
        return value

    def _too_large(self, span) -> SpecError:
        return self.error("E0604", f"list too large: with the lists inside it, it holds more "
                          f"than {MAX_LIST:,} items and characters", span,
                          help="a list repeated inside another counts each time it occurs")

    def eval(self, e: ast.Expr, scope: Scope):
        # every node evaluated is work (a function whose body is a long expression, called
        # in a loop, must not escape the budget): one unit each, counted inline since this
        # is the evaluator's hottest line
        budget = self.context.budget
        budget.spent += 1
        if budget.spent > budget.limit:
            self.context.tick(e.span, 0)  # reports the limit, located here
        return getattr(self, "_" + type(e).__name__)(e, scope)

    def condition(self, e: ast.Expr, scope: Scope) -> bool:
        value = self.eval(e, scope)
        if not isinstance(value, bool):
            raise self.error("E0603", f"a condition must be `true` or `false`, got {type_name(value)}",
                             e.span, help="compare explicitly, e.g. `p > 0`")
        return value

    def integer(self, e: ast.Expr, scope: Scope, what: str) -> int:
        value = self.eval(e, scope)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error("E0603", f"{what} must be an integer, got {type_name(value)}", e.span)
        return value

    # literals and names
    def _Int(self, e, scope):
        return self._check_int(e.value, e.span)

    def _Float(self, e, scope):
        return e.value

    def _Str(self, e, scope):
        return e.value

    def _Bool(self, e, scope):
        return e.value

    def _NoneLit(self, e, scope):
        return None

    def _Name(self, e, scope):
        try:
            value = scope.lookup(e.id)
        except KeyError:
            help_text = self.context.suggest(e.span, e.id, scope.visible)
            if e.id in ("True", "False", "None"):
                help_text = f"write `{e.id.lower()}`"
            raise self.error("E0202", f"undefined name `{e.id}`", e.span, help=help_text) from None
        if value is FAILED:  # its definition was reported already; say nothing more
            self.context.abandon()
        return value

    def _TensorName(self, e, scope):
        raise self.error("E0603", f"`{e.text}` is a computed tensor name, not a value", e.span,
                         help="a tensor's name goes after `from`, or in an argument that names "
                              "a tensor: `like=l{i + 2}`, `tied=wte`")

    def _InShape(self, e, scope):
        return TensorShape(self.context.in_shape(e.span))

    def _ListExpr(self, e, scope):
        return self.new_list([self.eval(item, scope) for item in e.items], e.span)

    def _Dims(self, e, scope):
        sizes = []
        for item in e.items:
            value = self.eval(item, scope)
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error("E0603", f"a size must be an integer, got {type_name(value)}",
                                 item.span)
            sizes.append(value)
        return self.new_list(sizes, e.span)

    # operators
    def _check_int(self, value, span):
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise self.error("E0604", "number too large", span,
                             help="archdsl computes with integers up to 2**62")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error("E0604", f"number out of range ({value})", span)
        return value

    def _operand(self, value, op, span):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error("E0603", f"`{op}` needs numbers, got {type_name(value)}", span)
        return value

    def _BinOp(self, e, scope):
        left = self.eval(e.left, scope)
        right = self.eval(e.right, scope)
        op = e.op
        if type(left) in _NUMBERS and type(right) in _NUMBERS and op in _ARITHMETIC:
            return self._arithmetic(op, left, right, e)  # the common case, first
        if op == "+" and isinstance(left, list) and isinstance(right, list):
            if len(left) + len(right) > MAX_LIST:  # refused before it is built
                raise self.error("E0604", f"list too long (more than {MAX_LIST:,} items)", e.span)
            (a, da), (b, db) = ListValue.measure(left), ListValue.measure(right)
            return self.new_list(left + right, e.span, a + b, max(da, db))
        if op == "*" and isinstance(left, list) and isinstance(right, int) and not isinstance(right, bool):
            if len(left) * right > MAX_LIST:
                raise self.error("E0604", f"list too long (more than {MAX_LIST:,} items)", e.span)
            size, depth = ListValue.measure(left)
            return self.new_list(left * max(right, 0), e.span, size * max(right, 0), depth)
        if op == "+" and isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_LIST:
                raise self.error("E0604", f"string too long (more than {MAX_LIST:,} characters)",
                                 e.span)
            self.charge(e.span, len(left) + len(right))
            return left + right
        self._operand(left, op, e.left.span)
        self._operand(right, op, e.right.span)
        if op == "**":
            return self._power(left, right, e)
        return self._arithmetic(op, left, right, e)

    def _arithmetic(self, op, left, right, e):
        if right == 0 and op in ("/", "//", "%"):
            raise self.error("E0601", "division by zero", e.span,
                             help=f"the right-hand side `{_source_text(e.right)}` is 0 here")
        try:
            result = _ARITHMETIC[op](left, right)
        except OverflowError:
            raise self.error("E0604", "number too large", e.span) from None
        return self._check_int(result, e.span)

    def _power(self, base, exponent, e):
        if isinstance(base, int) and isinstance(exponent, int):
            if exponent < 0:
                if base == 0:
                    raise self.error("E0601", "division by zero (0 to a negative power)", e.span)
                return self._check_int(float(base) ** exponent, e.span)
            if abs(base) > 1 and exponent * math.log2(abs(base)) > 62:
                raise self.error("E0604", "number too large", e.span,
                                 help="archdsl computes with integers up to 2**62")
            return base ** exponent
        try:
            result = float(base) ** float(exponent)
        except (OverflowError, ZeroDivisionError):
            raise self.error("E0604", "number out of range", e.span) from None
        if isinstance(result, complex):
            raise self.error("E0603", "a negative number to a fractional power is not real", e.span)
        return self._check_int(result, e.span)

    def _Unary(self, e, scope):
        value = self._operand(self.eval(e.operand, scope), e.op, e.span)
        return -value if e.op == "-" else value

    def _Compare(self, e, scope):
        left = self.eval(e.left, scope)
        right = self.eval(e.right, scope)
        if e.op in ("==", "!="):
            self.charge(e.span, min(size_of(left), size_of(right)))  # the worst case: all equal
            return _equal(left, right) == (e.op == "==")
        self._operand(left, e.op, e.left.span)
        self._operand(right, e.op, e.right.span)
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[e.op]

    def _And(self, e, scope):
        return self.condition(e.left, scope) and self.condition(e.right, scope)

    def _Or(self, e, scope):
        return self.condition(e.left, scope) or self.condition(e.right, scope)

    def _Not(self, e, scope):
        return not self.condition(e.operand, scope)

    def _IfExp(self, e, scope):
        return self.eval(e.then if self.condition(e.cond, scope) else e.otherwise, scope)

    def _Index(self, e, scope):
        value = self.eval(e.value, scope)
        index = self.eval(e.index, scope)
        if not isinstance(value, list):
            raise self.error("E0603", f"cannot index {type_name(value)}", e.value.span)
        if isinstance(index, bool) or not isinstance(index, int):
            raise self.error("E0603", f"a list index must be an integer, got {type_name(index)}",
                             e.index.span)
        if not -len(value) <= index < len(value):
            raise self.error("E0602", f"index {index} is out of range for a list of {len(value)}",
                             e.index.span, help=f"valid indices are 0 to {len(value) - 1}"
                             if value else "the list is empty")
        return value[index]

    def _Attr(self, e, scope):
        value = self.eval(e.value, scope)
        if isinstance(value, TensorShape):
            return self._shape_attr(value.shape, e)
        raise self.error("E0603", f"{type_name(value)} has no attribute `{e.name}`", e.span)

    def _shape_attr(self, shape, e):
        """`in.shape`, `in.rank`, `in.layout`; and the sizes by what they mean in the layout:
        `c` (a map's channels, a vector's or a grid's features), `h` and `w` (a 2-D or 3-D
        map, a grid), `l` (a 1-D map's, a sequence's or token ids' length), `d` (a sequence's,
        a grid's or a vector's features), `vocab` (token ids)."""
        if e.name == "shape":
            return ListValue(shape)
        if e.name == "rank":
            return len(shape)
        if e.name == "layout":
            return shape.layout
        layout = shape.layout
        meaning = {"c": 0 if layout in MAPS or layout == VECTOR else -1 if layout == GRID
                   else None,
                   "h": -2 if layout in (MAP2D, MAP3D) else 0 if layout == GRID else None,
                   "w": -1 if layout in (MAP2D, MAP3D) else 1 if layout == GRID else None,
                   "l": -1 if layout == MAP1D else 0 if layout in (SEQ, TOKENS) else None,
                   "d": -1 if layout in (SEQ, GRID, VECTOR) else None}
        if e.name == "vocab" and shape.vocab:
            return shape.vocab
        if meaning.get(e.name) is not None:
            return shape[meaning[e.name]]
        has = ", ".join(f"`{n}`" for n, i in meaning.items() if i is not None)
        if e.name in meaning or e.name == "vocab":
            if layout == VECTOR and e.name in ("h", "w"):
                raise self.error("E0603", f"the input here is a vector of {shape[0]} features; "
                                 f"it has no `{e.name}`", e.span)
            raise self.error("E0603", f"the input here is {describe_shape(shape)}; it has no "
                             f"`{e.name}`", e.span, help=f"it has {has}, `shape` and `rank`")
        raise self.error("E0603", f"`in` has no attribute `{e.name}`", e.span,
                         help=f"`in` has {has}, `shape`, `rank` and `layout` here")

    # calls
    def _Apply(self, e, scope):
        func = self.eval(e.func, scope)
        if isinstance(func, Builtin):
            return self._call_builtin(func, e, scope)
        if isinstance(func, FunctionValue):
            return self._call_function(func, e, scope)
        if isinstance(func, (LayerValue, BlockValue)):
            # binding arguments: `act=leakyrelu(0.2)`, `unit=bottleneck(expansion=4)`
            bound = tuple(BoundArg(a.name, self.eval(a.value, scope), a.span) for a in e.args)
            return type(func)(**{**func.__dict__, "bound": func.bound + bound})
        if isinstance(func, NetworkValue):
            raise self.error("E0603", "a network cannot be called in an expression", e.func.span,
                             help="use a block for a reusable piece of network")
        raise self.error("E0603", f"{type_name(func)} is not a function", e.func.span)

    def _call_builtin(self, func: Builtin, e, scope):
        if any(a.name for a in e.args):
            raise self.error("E0605", f"`{func.name}` takes positional arguments only", e.span,
                             help=f"usage: {func.signature}")
        args = [self.eval(a.value, scope) for a in e.args]
        # min, max and sum walk a list's items
        self.charge(e.span, sum(len(a) for a in args if isinstance(a, list)))
        try:
            result = func.function(*args)
        except BuiltinError as error:
            raise self.error("E0603", f"`{func.name}`: {error}", e.span,
                             help=f"usage: {func.signature}") from None
        except TypeError:
            raise self.error("E0605", f"wrong number of arguments to `{func.name}`", e.span,
                             help=f"usage: {func.signature}") from None
        except (OverflowError, ValueError):
            raise self.error("E0604", f"`{func.name}`: number out of range", e.span) from None
        return self._check_int(result, e.span)

    def _call_function(self, func: FunctionValue, e, scope):
        from .binding import bind_arguments  # shared with block calls

        definition = func.definition
        args = [BoundArg(a.name, self.eval(a.value, scope), a.span) for a in e.args]
        local = Scope(func.unit)
        bind_arguments(self, "function", definition.name, definition.params, args, local, e.span)
        tick = getattr(self.context, "tick", None)
        if tick is not None:
            tick(e.span, FUNCTION_CALL_WORK)
        if self.depth >= MAX_CALL_DEPTH:
            raise self.error("E0501", f"function `{definition.name}` recursed more than "
                             f"{MAX_CALL_DEPTH} times", e.span,
                             help="make sure every recursion reaches a case that stops it")
        self.depth += 1
        try:
            return self.eval(definition.body, local)
        finally:
            self.depth -= 1


def _equal(a, b) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


def _source_text(e: ast.Expr) -> str:
    span = e.span
    if span.line != span.end_line:
        return "..."
    return span.source.line(span.line)[span.col - 1:span.end_col - 1]
