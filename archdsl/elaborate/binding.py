"""Matching the arguments of a call to the parameters of what is called.

Two kinds of callee: definitions in a spec (blocks, functions, networks), whose parameters are
untyped and whose defaults are expressions; and layer kinds from the registry, whose
parameters carry a type that checks and normalises each value.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, Note, SpecError, did_you_mean
from ..layers.registry import LayerKind, Param
from ..layers.types import Activation, ArgumentError, Int
from ..syntax import ast
from .values import BoundArg


def _match(params: list[str], args: list[BoundArg], call_span, what: str, signature,
           notes) -> dict[str, BoundArg]:
    """Assign positional and named arguments to parameter names, or raise a SpecError.
    `signature` is a function giving the callee's signature for messages (computed only for
    an error: this runs for every layer of a network)."""
    given: dict[str, BoundArg] = {}
    positional = [a for a in args if a.name is None]
    if len(positional) > len(params):
        extra = positional[len(params)]
        raise SpecError(Diagnostic(
            "E0302", f"too many arguments: {what} takes {len(params)}, got {len(positional)}",
            extra.span, notes(), help=f"the signature is {signature()}"))
    for name, arg in zip(params, positional):
        given[name] = arg
    for arg in args:
        if arg.name is None:
            continue
        if arg.name not in params:
            suggestion = did_you_mean(arg.name, params)
            raise SpecError(Diagnostic(
                "E0205", f"{what} has no parameter `{arg.name}`", arg.span, notes(),
                help=suggestion or f"the signature is {signature()}"))
        if arg.name in given:
            raise SpecError(Diagnostic(
                "E0305", f"`{arg.name}` is given twice", arg.span,
                notes() + [Note("first given here", given[arg.name].span)]))
        given[arg.name] = arg
    return given


def definition_signature(name: str, params: list[ast.Param]) -> str:
    return f"{name}(" + ", ".join(p.name if p.default is None else f"{p.name}=..."
                                  for p in params) + ")"


def bind_arguments(evaluator, definition: str, name: str, params: list[ast.Param],
                   args: list[BoundArg], scope, call_span) -> None:
    """Bind a block's, function's or network's parameters into `scope`.

    Defaults are evaluated in the definition's scope, where earlier parameters are already
    bound: `block b(c, mid=c // 4)`.
    """
    notes = evaluator.context.notes  # the block-call chain, computed only for an error
    names = [p.name for p in params]
    what = f"{definition} `{name}`"
    signature = lambda: definition_signature(name, params)  # noqa: E731 (for errors only)
    given = _match(names, args, call_span, what, signature, notes)
    for p in params:
        if p.name in given:
            scope.define(p.name, given[p.name].value)
        elif p.default is not None:
            scope.define(p.name, evaluator.eval(p.default, scope))
        else:
            raise SpecError(Diagnostic(
                "E0301", f"missing argument `{p.name}` of {what}", call_span, notes(),
                help=f"the signature is {signature()}"))


class _LayerPlan:
    """What binding needs of a layer kind, worked out once per kind: its parameters (with
    `act` where it takes one), their names, and its defaults already normalised by their
    types. Binding runs for every layer of every network; this keeps it to the arguments."""

    def __init__(self, kind: LayerKind):
        self.params: list[Param] = list(kind.params)
        if kind.accepts_act:
            self.params.append(Param("act", Activation(), None,
                                     "activation applied after the layer"))
        self.names = [p.name for p in self.params]
        self.defaults = {p.name: p.type.accept(p.default) if p.default is not None else None
                         for p in self.params if not p.required}


_plans: dict[int, tuple[LayerKind, _LayerPlan]] = {}


def _plan(kind: LayerKind) -> _LayerPlan:
    entry = _plans.get(id(kind))
    if entry is None or entry[0] is not kind:  # (a kind unregistered and declared again)
        entry = _plans[id(kind)] = (kind, _LayerPlan(kind))
    return entry[1]


def bind_layer(kind: LayerKind, args: list[BoundArg], defaults: dict[str, BoundArg], call_span,
               notes) -> tuple[dict, dict[str, BoundArg]]:
    """Check a layer's arguments against its declaration.

    Returns (all arguments normalised, with defaults filled in; the arguments as given, by
    name, for messages). `defaults` come from enclosing `with` scopes and apply only where
    the call itself does not give a value.
    """
    plan = _plan(kind)
    sizes, named = {}, []
    if kind.named_sizes:  # `rearrange("(h w) c -> c h w", h=14)`
        rest = []
        for arg in args:
            if arg.name is None or arg.name in plan.names:
                rest.append(arg)
                continue
            if arg.name in sizes:
                raise SpecError(Diagnostic("E0305", f"`{arg.name}` is given twice", arg.span,
                                           notes()))
            named.append(arg)
            try:
                sizes[arg.name] = Int(1).accept(arg.value)
            except ArgumentError as error:
                raise SpecError(Diagnostic(error.code, f"the size of axis `{arg.name}`: "
                                           f"{error.message}", arg.span, notes())) from None
        args = rest
    given = _match(plan.names, args, call_span, f"layer `{kind.name}`", lambda: kind.signature,
                   notes)
    for name, arg in defaults.items():
        given.setdefault(name, arg)
    values = {}
    for p in plan.params:
        arg = given.get(p.name)
        if arg is None:
            if p.required:
                raise SpecError(Diagnostic(
                    "E0301", f"missing argument `{p.name}` of layer `{kind.name}`", call_span,
                    notes(), help=f"the signature is {kind.signature}" +
                    (f"; `{p.name}`: {p.doc}" if p.doc else "")))
            values[p.name] = plan.defaults[p.name]
            continue
        try:
            values[p.name] = p.type.accept(arg.value)
        except ArgumentError as error:
            help_text = error.help or (f"`{p.name}`: {p.doc}" if p.doc else None)
            if help_text and "{expr}" in help_text:
                help_text = help_text.replace("{expr}", _text(arg.span))
            raise SpecError(Diagnostic(
                error.code,
                f"argument `{p.name}` of `{kind.name}`: {error.message}", arg.span, notes(),
                help=help_text)) from None
    if kind.named_sizes:
        values["sizes"] = sizes
        given.update({a.name: a for a in named})  # so that messages can point at them
    return values, given


def _text(span) -> str:
    """The source text of a one-line span (an argument as written)."""
    if span.line != span.end_line:
        return "..."
    text = span.source.line(span.line)[span.col - 1:span.end_col - 1]
    return text.split("=", 1)[1].strip() if "=" in text and "==" not in text else text
