"""Elaboration: a network's definition, with its arguments, becomes a layer graph.

The elaborator walks the AST like an interpreter. A tensor flows through the body; each step
applies to it: a layer adds a node, a block call elaborates the block's body in place, a
repeat elaborates its step again, a merge elaborates each branch on the same input and joins
them. Shapes are inferred as nodes are added — they must be, since a spec can read them
(`in.c`) — by each layer's own shape rule.

Errors are collected, not thrown to the user: a failed step yields an unknown ("poisoned")
tensor and elaboration goes on, so one run reports every independent mistake. A later step
that needs the unknown shape stops the network silently; its cause is already reported.

Every node is created inside a *frame* (the network, a label, a block call, a merge, a branch,
a side output). Frames give nodes their hierarchical names (naming.py) and diagrams their
clusters.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..diagnostics import Diagnostic, Note, SpecError, Span, did_you_mean, printable
from ..graph import LayerGraph
from ..layers import registry
from ..layers.registry import LayerKind, Params, ShapeError, check_layout, numel, show
from ..shapes import GRID, LAYOUT_WORDS, SEQ, TOKENS, VECTOR, Shape, as_shape, layout_rank
from ..limits import (BLOCK_CALL_WORK, ERROR_WORK, LAYER_WORK, MAX_BLOCK_DEPTH, MAX_ELEMENTS,
                      MAX_NODES, MAX_PARAMS, MAX_VARIANT_DEPTH, MAX_WORK, deep_recursion)
from ..syntax import ast
from .binding import bind_arguments, bind_layer
from .expressions import FAILED, Evaluator, Scope
from .naming import build_graph
from .program import FileUnit
from .values import (BlockValue, BoundArg, Builtin, FunctionValue, LayerValue, NetworkValue,
                     TensorValue,
                     type_name)


@dataclass(eq=False)
class Frame:
    kind: str  # network | label | block | merge | branch | output
    name: str | None  # label, output or branch name; block name; merge op
    span: Span
    parent: "Frame | None"
    children: list = field(default_factory=list)  # Frames and Nodes, in creation order
    node: "Node | None" = None  # a merge's join node, an output's node
    title: str = ""  # how diagrams title the cluster: `bottleneck(128, s=2)`
    absorbed: list = field(default_factory=list)  # frames merged into this one (naming.py)
    block_args: dict = field(default_factory=dict)  # a block call's parameter values


@dataclass(eq=False)
class Node:
    kind: str  # a layer kind's name, or "input" / "output"
    layer: LayerKind | None
    args: dict
    inputs: list["Node"]
    shape: tuple
    span: Span
    frame: Frame
    notation: str | None = None
    output_name: str | None = None  # output nodes: the output's name
    name: str = ""  # assigned by naming.py
    tied: "Node | None" = None  # the layer whose weight this one shares (`tied=wte`)
    frozen: bool = False  # inside `frozen:`: its parameters are not trained


class Poison:
    """The unknown tensor that follows a failed step."""

    shape = None


POISON = Poison()


class Abandon(Exception):
    """Stop elaborating this network; the error that caused it is already reported."""


class UnknownInput(Exception):
    """A step read `in` where the flowing tensor is unknown, after a failed step: the step is
    skipped quietly (the failure is reported already) and the lines after it are still
    checked (`foo conv(in.c, 1)` then `bar`: both unknown names are reported)."""


class LimitExceeded(SpecError):
    """A resource limit: stops the whole network at once."""


@dataclass(frozen=True)
class Traced:
    """One statement or step as elaboration ran it (for the language server's hovers and
    inlay hints): what entered, what came out (a Node, POISON after an error, or the input
    unchanged), and the nodes it made: `nodes[first:end]` of the elaborator."""

    span: Span
    syntax: object  # the ast.Statement or ast.Step
    entered: object
    result: object
    first: int
    end: int


class Elaborator:
    def __init__(self, diagnostics, budget: "WorkBudget | None" = None,
                 trace: list | None = None):
        self.diagnostics = diagnostics
        self.budget = budget if budget is not None else WorkBudget()
        # With a list here, every statement and step run appends a Traced to it, inner ones
        # first; nothing is recorded otherwise (the compiler's own paths pay nothing).
        self.trace = trace
        self.evaluator = Evaluator(self)
        self.chain: list[tuple[str, Span]] = []  # the block calls being elaborated
        self._suggestions: dict[tuple, str | None] = {}
        # A layer applied again at the same place, with the same arguments, to a tensor of the
        # same shape (`x 4`, a block called again) is the same layer: binding its arguments
        # and inferring its shape are done once (see _application_key).
        self._applied: dict[tuple, tuple] = {}
        self._labels: dict[int, tuple] = {}  # id(definition) -> (it, its label names)

    # ---- the context the evaluator sees ----------------------------------------------------

    def in_shape(self, span: Span):
        if self.current is None:
            raise SpecError(Diagnostic("E0603", "`in` is only defined inside a body, where a "
                                       "tensor flows", span, self.notes()))
        if self.current is POISON:
            raise UnknownInput()
        return self.current.shape

    def abandon(self):
        raise Abandon()

    def report(self, error: SpecError, span: Span) -> None:
        """Collect an error and go on; building its message is work, and is metered."""
        self.diagnostics.extend(error.diagnostics)
        self.tick(span, ERROR_WORK * len(error.diagnostics))

    def suggest(self, span: Span, name: str, candidates) -> str | None:
        """`did you mean ...?` for an unknown name, computed once per place in the spec (the
        names visible there are the same each time it is reached): a misspelt layer inside a
        block called a thousand times costs one search of the names, not a thousand."""
        key = (span, name)
        if key not in self._suggestions:
            self._suggestions[key] = did_you_mean(name, candidates())
        return self._suggestions[key]

    def tick(self, span: Span, units: int = 1) -> None:
        """Count elaboration work; a spec that needs too much is refused, so exponential
        recursion or nested loops cannot keep archdsl busy."""
        budget = self.budget
        budget.spent += units
        if budget.spent > budget.limit:
            raise LimitExceeded(Diagnostic(
                "E0507", f"elaborating this needs more than the {budget.limit:,} units of work "
                "allowed (statements, layers, calls, and work on long lists and strings)", span,
                self.notes(), help="look for recursion that branches, loops nested in loops, "
                                   "or long lists built again and again"))

    def notes(self) -> list[Note]:
        """Where we are: the chain of block calls, innermost first."""
        runs: list[list] = []  # [name, innermost span, places, calls]
        for name, span in reversed(self.chain):
            if runs and runs[-1][1] == span:  # direct recursion: shown once
                runs[-1][3] += 1
            else:
                runs.append([name, span, {span}, 1])
        if len(runs) > 3:  # recursion from several places (a tree): one note per block
            merged: list[list] = []
            for run in runs:
                if merged and merged[-1][0] == run[0]:
                    merged[-1][2] |= run[2]
                    merged[-1][3] += run[3]
                else:
                    merged.append(run)
            runs = merged
        notes = []
        for name, span, places, n in runs:
            text = f"in block `{name}`, called at {span}"
            if n > 1:
                text += f" ({n} times)" if len(places) == 1 else \
                    f" ({n} nested calls from {len(places)} places)"
            notes.append(Note(text))
        if len(notes) > 6:
            notes = notes[:5] + [Note(f"... and {len(notes) - 5} more calls")]
        return notes

    def error(self, code, message, span, help=None, notes=()) -> SpecError:
        return SpecError(Diagnostic(code, message, span, list(notes) + self.notes(), help))

    # ---- networks --------------------------------------------------------------------------

    def network(self, unit: FileUnit, name: str, overrides: dict | None = None,
                input_override: list | None = None,
                graph: bool = True) -> "LayerGraph | list[Node] | None":
        """Elaborate one network into its LayerGraph. Returns None when there were errors (see
        diagnostics). `graph=False` stops before naming the nodes and building the graph, and
        returns the list of nodes instead (the language server needs only shapes: a sixth of
        the time saved on every keystroke)."""
        self.build = graph
        self.errors_before = before = len(self.diagnostics)
        self.chain: list[tuple[str, Span]] = []
        self.defaults: dict[str, dict[str, BoundArg]] = {}
        self.freezing = False  # inside `frozen:`
        self.nodes: list[Node] = []
        self.outputs: dict[str, Node] = {}
        # Tensors named by labels, in the network's body or the block call being elaborated:
        # a block sees only its own (its caller's are out of scope), as its variables.
        self.tensors: dict[str, Node | Poison] = {}
        self.chain_definitions: list = []  # the network, then the blocks being called
        self.network_input = None
        self.inputs: dict[str, Node] = {}  # by name, in order; the first flows into the body
        self.after_output = None  # the flowing tensor after the latest `output` statement
        self.steps_run = 0
        self.current = None
        try:
            with deep_recursion():
                graph = self._network(unit, name, overrides or {}, input_override)
        except (Abandon, UnknownInput):
            graph = None
        except SpecError as error:
            self.diagnostics.extend(error.diagnostics)
            graph = None
        except RecursionError:
            self.diagnostics.add(Diagnostic(
                "E0507", f"network `{name}` is nested too deeply to elaborate", None,
                help=f"keep block calls within {MAX_BLOCK_DEPTH} levels"))
            graph = None
        if len(self.diagnostics) > before:
            return None
        return graph

    def resolve_network(self, unit: FileUnit, name: str, span: Span | None = None):
        """Follow variants down to the network definition: (Network, its unit, the argument
        lists of the variants on the way, nearest the network first).

        Each variant is resolved once per loaded file and remembered (FileUnit.resolved), so
        checking a file of n variants, each a variant of the one before, costs n steps, not
        n**2; chains are at most MAX_VARIANT_DEPTH variants deep."""
        definition, where = self._lookup_network(unit, name, span)
        path: list[tuple[ast.Variant, FileUnit]] = []  # variants not yet resolved, outermost first
        seen: set[int] = set()
        result = None  # (network, its unit, argument lists, depth), or a list of diagnostics
        while isinstance(definition, ast.Variant):
            result = where.resolved.get(definition.name)
            if result is not None:
                break
            if id(definition) in seen:
                result = self.error("E0501", f"variant `{definition.name}` is defined in terms "
                                    "of itself", definition.name_span).diagnostics
                break
            seen.add(id(definition))
            path.append((definition, where))
            try:
                definition, where = self._lookup_network(where, definition.base,
                                                         definition.base_span,
                                                         variant=definition.name)
            except SpecError as error:
                result = error.diagnostics
                break
        if result is None:
            result = (definition, where, (), 0)
        for variant, variant_unit in reversed(path):
            if not isinstance(result, list):
                network, network_unit, args, depth = result
                if depth >= MAX_VARIANT_DEPTH:
                    result = self.error(
                        "E0501", f"variant `{variant.name}` is more than {MAX_VARIANT_DEPTH} "
                        "variants deep", variant.name_span,
                        help="define it from the network itself, with all its arguments"
                    ).diagnostics
                else:
                    result = (network, network_unit, args + ((variant.args, variant_unit),),
                              depth + 1)
            variant_unit.resolved[variant.name] = result
        if isinstance(result, list):
            raise SpecError(result)
        network, network_unit, args, _ = result
        return network, network_unit, list(args)

    def _lookup_network(self, unit: FileUnit, name: str, span, variant: str | None = None):
        """`variant`: the variant whose base this is, never suggested as its own base."""
        entry = unit.namespace.get(name)
        if entry is None or not isinstance(entry[0], (ast.Network, ast.Variant)):
            networks = [n for n, (d, _) in unit.namespace.items()
                        if isinstance(d, (ast.Network, ast.Variant)) and n != variant]
            what = "is not a network" if entry else "no network named"
            message = (f"`{name}` {what}" if entry else f"no network named `{name}`")
            raise self.error("E0203", message, span,
                             help=did_you_mean(name, networks) or
                             ("networks here: " + ", ".join(networks) if networks else None))
        return entry

    def _network(self, unit, name, overrides, input_override):
        definition, where, variant_args = self.resolve_network(unit, name)
        scope = Scope(where)
        args: list[BoundArg] = []
        for arg_list, arg_unit in variant_args:
            arg_scope = Scope(arg_unit)
            args += [BoundArg(a.name, self.evaluator.eval(a.value, arg_scope), a.span)
                     for a in arg_list]
        args = self._apply_overrides(definition, args, overrides)
        bind_arguments(self.evaluator, "network", definition.name, definition.params, args, scope,
                       definition.name_span)
        parameters = {p.name: scope.names[p.name] for p in definition.params}

        body = definition.body
        if not body or not isinstance(body[0], ast.Input):
            raise self.error("E0502", f"network `{definition.name}` does not start with `input`",
                             definition.name_span,
                             help="begin the body with the input shape: `input 3x224x224`")
        inputs = list(itertools.takewhile(lambda s: isinstance(s, ast.Input), body))
        shapes = []
        for i, line in enumerate(inputs):
            layout, vocab = self._input_layout(line, scope)
            if i == 0 and input_override is not None:
                shapes.append(self._checked_input(input_override, definition.name_span,
                                                  "the input shape given for it (--input)",
                                                  layout, vocab))
            else:
                shapes.append(self._checked_input(self.evaluator.eval(line.shape, scope),
                                                  line.shape.span, "`input`", layout, vocab))
        names = self._input_names(inputs)
        root = Frame("network", definition.name, definition.span, None, title=definition.name)
        self.frame = root
        self.unit = where
        self.chain_definitions = [definition]
        for line, input_name, shape in zip(inputs, names, shapes):
            node = self._add(None, "input", {}, [], shape, line.span)
            self.inputs[input_name] = node
            self.tensors[input_name] = node  # `from meta` starts from that input
        # the first input flows into the first step; `from input` is it too
        x = self.network_input = self.inputs[names[0]]
        x = self.body(body[len(inputs):], scope, x)
        if x is not POISON and self.outputs and x is self.after_output:
            # Nothing flows on after the last `output`: the network ends with its outputs, and
            # they are all its results (an FPN's P3-P5), computed in every mode.
            main_outputs = list(self.outputs)
        elif x is not POISON:
            main = self._add(None, "output", {}, [x], x.shape, definition.name_span,
                             output_name="output")
            self.outputs = {"output": main, **self.outputs}  # the main output first
            main_outputs = ["output"]
        if x is POISON or len(self.diagnostics) > self.errors_before:
            return None
        if not self.build:
            return self.nodes
        return build_graph(name, definition, where.path, parameters, root, self.nodes,
                           self.inputs, self.outputs, main_outputs)

    def _apply_overrides(self, definition, args, overrides):
        """`--set name=value` replaces whatever a variant bound to that parameter."""
        names = [p.name for p in definition.params]
        for key in overrides:
            if key not in names:
                raise self.error("E0205", f"network `{definition.name}` has no parameter `{key}`",
                                 definition.name_span,
                                 help=did_you_mean(key, names) or
                                 (f"its parameters: {', '.join(names)}" if names else
                                  "it has no parameters"))
        if not overrides:
            return args
        kept, position = [], 0
        for arg in args:
            name = arg.name
            if name is None:
                name = names[position] if position < len(names) else None
                position += 1
            if name not in overrides:
                kept.append(BoundArg(name, arg.value, arg.span))
        return kept + [BoundArg(k, v, definition.name_span) for k, v in overrides.items()]

    def _input_names(self, inputs: list[ast.Input]) -> list[str]:
        """The inputs' names: `input` for a network's only one, unless named; several inputs
        are each named (`input image: 3x224x224`, `input meta: 12`), once each."""
        if len(inputs) == 1:
            return [inputs[0].name or "input"]
        names = []
        for line in inputs:
            if line.name is None:
                raise self.error("E0503", "a network with several inputs names each of them",
                                 line.span, help="write `input NAME: SIZES`, as `input meta: 12`; "
                                                 "`from meta` then starts from it")
            if line.name in names or line.name == "input":
                raise self.error("E0204", f"the input `{line.name}` is defined twice"
                                 if line.name in names else "`input` cannot name an input: "
                                 "`from input` is the first one", line.name_span,
                                 help="give each input its own name")
            names.append(line.name)
        return names

    def _input_layout(self, s: ast.Input, scope) -> tuple[str | None, int | None]:
        """The layout an `input` line states (`seq`, `grid`, `tokens of 50257`), if any."""
        if s.layout is None:
            return None, None
        words = {"seq": SEQ, "sequence": SEQ, "grid": GRID, "tokens": TOKENS, "vector": VECTOR,
                 "map": None}
        if s.layout not in words:
            raise self.error("E0303", f"unknown layout `{s.layout}`", s.layout_span,
                             help=did_you_mean(s.layout, list(words)) or
                             "an input's sizes may be followed by `seq`, `grid` or "
                             "`tokens of VOCAB`")
        layout = words[s.layout]
        if (layout == TOKENS) != (s.vocab is not None):
            raise self.error("E0303", "token ids need their vocabulary: `tokens of 50257`"
                             if layout == TOKENS else "only token ids have a vocabulary",
                             s.layout_span, help="write `input 1024 tokens of 50257`")
        vocab = None
        if s.vocab is not None:
            vocab = self.evaluator.integer(s.vocab, scope, "a vocabulary size")
            if vocab < 1:
                raise self.error("E0304", f"a vocabulary needs at least one token, got {vocab}",
                                 s.vocab.span)
        return layout, vocab

    def _checked_input(self, value, span, what: str, layout: str | None = None,
                       vocab: int | None = None) -> Shape:
        """An input shape, from the spec's `input` line or given from outside (the command
        line, the API, a checkpoint): checked alike. Its sizes say its layout (a vector,
        a map of 1 to 3 spatial axes) unless the input line names one (`seq`, `tokens`)."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if (not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise self.error("E0303", f"{what} needs sizes such as 3x224x224 (a map), 64x1000 "
                             f"(a signal) or a number of features, got {type_name(value)}", span)
        if min(value) < 1:
            raise self.error("E0304", "input sizes must be positive, got " +
                             "x".join(map(str, value)), span)
        if numel(value) > MAX_ELEMENTS:
            raise LimitExceeded(Diagnostic("E0507", "the input has more than 2**40 elements",
                                           span))
        if layout is not None and layout_rank(layout) != len(value):
            raise self.error("E0303", f"{LAYOUT_WORDS[layout]} has {layout_rank(layout)} "
                             f"size{'s' if layout_rank(layout) > 1 else ''}, got "
                             + "x".join(map(str, value)), span,
                             help="a sequence is LxD (`197x768 seq`), token ids a length "
                                  "(`1024 tokens of 50257`)")
        return Shape(value, layout, vocab)

    # ---- statements ------------------------------------------------------------------------

    def body(self, statements, scope: Scope, x):
        for s in statements:
            x = self.statement(s, scope, x)
        return x

    def statement(self, s: ast.Statement, scope: Scope, x):
        self.tick(s.span)
        self.current = x
        first = len(self.nodes)
        try:
            y = getattr(self, "_" + type(s).__name__)(s, scope, x)
        except (Abandon, LimitExceeded):
            raise
        except UnknownInput:
            y = POISON
        except SpecError as error:
            self.report(error, s.span)
            y = POISON
        if self.trace is not None:
            self.trace.append(Traced(s.span, s, x, y, first, len(self.nodes)))
        return y

    def _StepLine(self, s, scope, x):
        if s.source is not None:
            x = self.reference(s.source, scope)
        for step in s.steps:
            x = self.step(step, scope, x)
        return x

    def _Input(self, s, scope, x):
        raise self.error("E0503", "`input` lines can only begin a network", s.span,
                         help="declare every input at the top of the network (`input meta: "
                              "12`) and start from it where it is used (`from meta`); blocks "
                              "receive the tensor they are applied to")

    def _Let(self, s, scope, x):
        try:
            value = self.evaluator.eval(s.value, scope)
        except LimitExceeded:
            raise
        except UnknownInput:  # `let c = in.c` after a failed step: reported already
            value = FAILED
        except SpecError as error:
            self.report(error, s.span)
            value = FAILED  # uses of the name stop quietly instead of repeating the error
        scope.define(s.name, value)
        return x

    def _If(self, s, scope, x):
        for cond, body in s.branches:
            if self.evaluator.condition(cond, scope):
                return self.body(body, scope.child(), x)
        if s.otherwise is not None:
            return self.body(s.otherwise, scope.child(), x)
        return x

    def _Repeat(self, s, scope, x):
        count = self.repeat_count(s.count, scope)
        for i in range(count):
            if x is POISON and not s.var:
                return self._repeat_unknown(lambda: self.body(s.body, scope.child(), x),
                                            count - i)
            inner = scope.child()
            if s.var:
                inner.define(s.var, i)
            x = self.body(s.body, inner, x)
        return x

    def _repeat_unknown(self, run, rounds: int):
        """The rest of a repeat (`x N`, or `repeat N:` without a variable) once its tensor is
        unknown. Every round is then the same: it builds no layer (its input is unknown) and
        reports what the one before it reported, since nothing in it can differ (no loop
        variable). So one round runs, and its diagnostics count for all the rounds left:
        `nosuchlayer x 100000` answers as fast as `nosuchlayer`."""
        with self.diagnostics.recording() as reported:
            y = run()
        if rounds > 1:
            for d, times in reported:
                self.diagnostics.add(d, times=times * (rounds - 1))
        return y

    def _With(self, s, scope, x):
        saved = self.defaults
        self.defaults = {k: dict(v) for k, v in saved.items()}
        for d in s.defaults:
            if isinstance(_safe_lookup(scope, d.layer), BlockValue):
                raise self.error("E0505", f"`with` sets defaults of layer kinds; `{d.layer}` is "
                                 "a block", d.layer_span,
                                 help=f"give the argument in each call (`{d.layer}(...)`), or "
                                      "a default in the block's parameters; inside, `with` "
                                      "can set the defaults of the layers it calls")
            kind = self._layer_kind(d.layer, d.layer_span, scope)
            names = [p.name for p in kind.params] + (["act"] if kind.accepts_act else [])
            for arg in d.args:
                if arg.name is None:
                    raise self.error("E0303", "defaults are given by name", arg.span,
                                     help=f"write {d.layer}(name=value), e.g. conv(pad=same)")
                if arg.name not in names:
                    raise self.error("E0205", f"layer `{kind.name}` has no parameter `{arg.name}`",
                                     arg.span, help=did_you_mean(arg.name, names) or
                                     f"the signature is {kind.signature}")
                value = self.evaluator.eval(arg.value, scope)
                self.defaults.setdefault(kind.name, {})[arg.name] = BoundArg(arg.name, value,
                                                                             arg.span)
        try:
            return self.body(s.body, scope.child(), x)
        finally:
            self.defaults = saved

    def _Frozen(self, s, scope, x):
        if s.condition is not None and not self.evaluator.condition(s.condition, scope):
            return self.body(s.body, scope.child(), x)
        saved, self.freezing = self.freezing, True
        try:
            return self.body(s.body, scope.child(), x)
        finally:
            self.freezing = saved

    def _Label(self, s, scope, x):
        name = self.tensor_name(s.name, scope)
        with self.frame_of("label", name, s.span, name):
            y = self.body(s.body, scope.child(), x)
        self.tensors[name] = y  # a later label of the same name shadows this one
        return y

    # ---- tensor names ----------------------------------------------------------------------

    def tensor_name(self, name: ast.TensorName, scope) -> str:
        """A label's, output's or reference's name, its {...} pieces computed (`p{i + 3}`)."""
        if name.static is not None:
            return name.static
        text = []
        for part in name.parts:
            if isinstance(part, str):
                text.append(part)
                continue
            value = self.evaluator.eval(part, scope)
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise self.error("E0303", "a piece of a name must be an integer or a string, "
                                 f"got {type_name(value)}", part.span)
            text.append(str(value))
        result = "".join(text)
        if not result.isidentifier() or len(result) > 200:
            raise self.error("E0303", f"`{name.text}` gives `{printable(result[:60])}`, which "
                             "is not a name", name.span,
                             help="a name is letters, digits and `_`, not starting with a digit")
        return result

    def reference(self, name: ast.TensorName, scope, argument: str | None = None):
        """The tensor a `from NAME` starts from: the latest one a label of that name produced
        in this network or block call (or its input, `from input`). `argument`: the name is
        that argument's (`tied=wte`: a layer whose weight is shared; `like=input`: a tensor
        whose size is read), said so in messages."""
        tied = argument == "tied"
        text = self.tensor_name(name, scope)
        if text in self.tensors:
            node = self.tensors[text]
            if node is POISON:
                raise Abandon()  # its label failed; that error is already reported
            return node
        if text == "input" and self.network_input is not None:
            return self.network_input
        definition = self.chain_definitions[-1]
        lines = self.label_names(definition).get(text)
        if lines and min(lines) < name.span.line:
            raise self.error("E0208", f"no tensor named `{text}` was computed", name.span,
                             help=f"its label (line {min(lines)}) is in a part of the network "
                                  "that was left out: an `if` not taken, or a repeat "
                                  "of 0 times")
        if lines:
            raise self.error("E0209", f"`{text}` is used before its label defines it",
                             name.span, help="a layer can share the weight of a layer above it "
                             "only; tie the later layer to the earlier one (GPT's output layer "
                             "`tied=wte` to its token embedding `wte`)" if tied else
                             "a step can start only from a tensor computed above it; move this "
                             "line below the label" if argument is None else
                             f"`{argument}=` can name only a tensor computed above it; move "
                             "this line below the label")
        owners = [d.name for d in self.program_definitions() if d is not definition
                  and text in self.label_names(d)]
        if owners:
            where = "block" if isinstance(definition, ast.Block) else "network"
            raise self.error("E0210", f"`{text}` is a tensor of `{owners[0]}`, out of scope in "
                             f"{where} `{definition.name}`", name.span,
                             help="a block sees only its input, the tensors it names itself "
                                  "and those given to it: add a parameter and pass the "
                                  f"tensor's name (`block {definition.name}(..., {text})`, "
                                  f"called as `{definition.name}(..., {text})`)"
                             if isinstance(definition, ast.Block) else
                             "a network sees only its own tensors; name the tensor here")
        raise self.error("E0208", f"no tensor named `{text}`", name.span,
                         help=self.suggest(name.span, text, lambda: list(self.tensors))
                         or ("name a tensor with a label (`c4: stage(...)`), then start "
                             "from it: `from c4`" if argument is None else
                             "label the layer whose weight to share, above this line: "
                             "`wte: embedding(768)`, then `tied=wte`" if tied else
                             "name a tensor with a label above this line (`c4: stage(...)`), "
                             f"or the input: `{argument}=input`"))

    def label_names(self, definition) -> dict[str, list[int]]:
        """The names the labels of a network's or block's body give (not computed ones),
        with the lines they are on."""
        key = id(definition)
        if key not in self._labels:
            names: dict[str, list[int]] = {}
            for name, line in _labels_in(definition.body):
                names.setdefault(name, []).append(line)
            self._labels[key] = (definition, names)
        return self._labels[key][1]

    def program_definitions(self):
        """The blocks and networks visible from the network being elaborated."""
        return [d for d, _ in self.unit.namespace.values()
                if isinstance(d, (ast.Block, ast.Network))]

    def _Merge(self, s, scope, x):
        branches = list(self.branches(s.branches, scope))
        if len(branches) < 2:
            raise self.error("E0505", f"`{s.op}` needs at least two branches" +
                             (f"; with its repeats it has {len(branches)}" if any(
                                 isinstance(b, ast.BranchRepeat) for b in s.branches) else ""),
                             s.span,
                             help="add a `branch: identity` for a skip connection")
        kind = registry.lookup(s.op)
        outs = []
        with self.frame_of("merge", s.op, s.span, s.op) as frame:
            for i, (branch, inner) in enumerate(branches):
                title = branch.name or f"branch {i}"
                with self.frame_of("branch", branch.name or str(i), branch.span, title):
                    outs.append(self.body(branch.body, inner.child(), x))
            if any(o is POISON for o in outs):
                return POISON
            try:
                for o in outs:
                    check_layout(kind.name, kind.accepts, o.shape)
                shape = as_shape(kind.shape({}, [o.shape for o in outs]), outs[0].shape)
            except ShapeError as error:
                notes = [Note(f"branch {b.name or i} gives {show(o.shape)}", b.span)
                         for i, ((b, _), o) in enumerate(zip(branches, outs))]
                raise self.error("E0401" if s.op != "concat" else "E0402", error.message,
                                 s.span, error.help, notes) from None
            node = self._add(kind, s.op, {}, outs, shape, s.span)
            frame.node = node
            return node

    def branches(self, items, scope):
        """A merge's branches, each with its scope: those of a `repeat` n times over, its
        variable defined in each."""
        for item in items:
            if isinstance(item, ast.Branch):
                yield item, scope
                continue
            for i in range(self.repeat_count(item.count, scope)):
                inner = scope.child()
                if item.var:
                    inner.define(item.var, i)
                yield from self.branches(item.branches, inner)

    def _Output(self, s, scope, x):
        name = self.tensor_name(s.name, scope)
        if name in self.outputs or name == "output":
            raise self.error("E0204", f"the output `{name}` is defined twice", s.span,
                             help="give each side output its own name")
        before = self.steps_run
        with self.frame_of("output", name, s.span, name) as frame:
            y = self.body(s.body, scope.child(), x)
            if y is not POISON and self.steps_run > before:
                # an output whose steps are all switched off (`when aux`) is left out
                node = self._add(None, "output", {}, [y], y.shape, s.span, output_name=name)
                frame.node = node
                self.outputs[name] = node
            if y is POISON or self.steps_run > before:
                self.tensors[name] = y  # later lines can start from an output: `from boxes`
        self.after_output = x
        return x  # the main path goes on unchanged

    # ---- steps -----------------------------------------------------------------------------

    def step(self, s: ast.Step, scope: Scope, x):
        self.tick(s.span)
        self.current = x
        first = len(self.nodes)
        try:
            y = getattr(self, "_step_" + type(s).__name__)(s, scope, x)
        except (Abandon, LimitExceeded):
            raise
        except UnknownInput:
            y = POISON
        except SpecError as error:
            self.report(error, s.span)
            y = POISON
        if self.trace is not None:
            self.trace.append(Traced(s.span, s, x, y, first, len(self.nodes)))
        return y

    def _step_Call(self, s: ast.Call, scope, x):
        try:
            value = scope.lookup(s.name)
        except KeyError:
            help_text = self.suggest(s.name_span, s.name, lambda: {
                n for n in scope.visible()
                if isinstance(_safe_lookup(scope, n), (LayerValue, BlockValue))})
            raise self.error("E0201", f"unknown layer or block `{s.name}`", s.name_span,
                             help=help_text or "`archdsl layers` lists the layer kinds; a "
                             "kind of your own comes from a plugin (`--plugin`, "
                             "docs/custom_layers.md)") from None
        names = _tensor_label_params(value)
        block = isinstance(value, BlockValue)
        args = [BoundArg(a.name, self._argument_value(a, scope, names, block), a.span)
                for a in (s.args or [])]
        if isinstance(value, LayerValue):
            return self.apply_layer(value, args, s.span, x, s.notation)
        if isinstance(value, BlockValue):
            return self.call_block(value, args, s.span, x)
        if isinstance(value, NetworkValue):
            raise self.error("E0505", f"`{s.name}` is a network; a network cannot be a step",
                             s.name_span, help="make the shared part a block and use it in both")
        what = type_name(value)
        if isinstance(value, (FunctionValue, Builtin)):
            what = "a function"
        raise self.error("E0505", f"`{s.name}` is {what}, not a layer or block", s.name_span,
                         help="steps are layers (conv, relu) and blocks; values go in arguments")

    def _argument_value(self, a: ast.Arg, scope, tensor_labels: set[str], block=False):
        """An argument's value. A parameter typed TensorLabel (`tied=wte`) names a tensor,
        not a value: a bare name stays a name, checked where the layer is applied. A block's
        argument that is the bare name of a tensor (a label above, or `input`), and of no
        value in scope, gives the block that tensor (`decoder_layer(8, memory=encoder)`)."""
        if a.name in tensor_labels and isinstance(a.value, ast.Name):
            return a.value.id
        if a.name in tensor_labels and isinstance(a.value, ast.TensorName):
            return self.tensor_name(a.value, scope)  # `like=l{i + 2}`
        if block and isinstance(a.value, ast.Name) and not _defined(scope, a.value.id) \
                and (a.value.id in self.tensors or a.value.id == "input"):
            return TensorValue(a.value.id, self.reference(
                ast.TensorName(a.value.span, a.value.id, [a.value.id]), scope))
        return self.evaluator.eval(a.value, scope)

    def _step_Group(self, s, scope, x):
        for step in s.steps:
            x = self.step(step, scope, x)
        return x

    def _step_Times(self, s, scope, x):
        count = self.repeat_count(s.count, scope)
        for i in range(count):
            if x is POISON:
                return self._repeat_unknown(lambda: self.step(s.step, scope, x), count - i)
            x = self.step(s.step, scope, x)
        return x

    def _step_Choose(self, s, scope, x):
        chosen = s.then if self.evaluator.condition(s.cond, scope) else s.otherwise
        return self.step(chosen, scope, x)

    def _step_When(self, s, scope, x):
        return self.step(s.step, scope, x) if self.evaluator.condition(s.cond, scope) else x

    def repeat_count(self, e: ast.Expr, scope) -> int:
        if isinstance(e, ast.Int) and e.value == 0:
            raise self.error("E0506", "a repeat of 0 times does nothing", e.span,
                             help="remove the step, or compute the count from a parameter")
        count = self.evaluator.integer(e, scope, "a repeat count")
        if count < 0:
            raise self.error("E0506", f"a repeat count cannot be negative, got {count}", e.span)
        if count > MAX_NODES:
            raise LimitExceeded(Diagnostic("E0507", f"a repeat of {count:,} times exceeds the "
                                           f"limit of {MAX_NODES:,} layers", e.span,
                                           self.notes()))
        return count

    # ---- layers and blocks -----------------------------------------------------------------

    def _layer_kind(self, name, span, scope) -> LayerKind:
        kind = registry.lookup(name)
        if kind is None:
            raise self.error("E0201", f"unknown layer `{name}`", span,
                             help=did_you_mean(name, registry.all_names()))
        return kind

    def apply_layer(self, layer: LayerValue, args: list[BoundArg], span: Span, x,
                    notation: str | None = None):
        kind = layer.kind
        if kind.is_merge:
            raise self.error("E0505", f"`{kind.name}` joins branches; it cannot be a step", span,
                             help=f"write it as a merge:  {kind.name}:  with `branch:` lines "
                                  "below it")
        defaults = self.defaults.get(kind.name, {})
        # a layer that reads other tensors' shapes (`like=`) is not shared between
        # applications: the names may stand for other tensors each time
        key = None if x is POISON or kind.shape_inputs else \
            _application_key(kind, layer.bound, args, defaults, span, x.shape)
        known = self._applied.get(key) if key is not None else None
        references = []
        if known is None:
            values, given = bind_layer(kind, list(layer.bound) + args, defaults, span,
                                       self.notes)
            act = values.pop("act", None)
            self.steps_run += 1
            if x is POISON:
                return POISON
            references = []
            for p, filled in kind.shape_inputs.items():
                if values[p] is None:
                    continue
                where = given[p].span if p in given else span
                if values.get(filled) is not None:
                    raise self.error("E0303", f"`{kind.name}` takes `{p}` or `{filled}`, not both",
                                     where, help=f"`{p}={values[p]}` gives the {filled}")
                references.append(self.reference(ast.TensorName(where, values[p], [values[p]]),
                                                 None, argument=p))
            try:
                check_layout(kind.name, kind.accepts, x.shape)
                values = kind.with_shapes(values, x.shape, [r.shape for r in references])
                values = kind.resolve(values, x.shape)
                shape = as_shape(kind.shape(values, x.shape), x.shape)
            except ShapeError as error:
                where = given[error.arg].span if error.arg in given else span
                raise self.error(error.code, error.message, where, error.help,
                                 [Note(f"its input is {show(x.shape)}")]) from None
            self._check_size(kind, values, x.shape, shape, span)
            act_span = given["act"].span if "act" in given else span
            if key is not None:
                self._applied[key] = (values, act, act_span, shape)
        else:
            values, act, act_span, shape = known
            self.steps_run += 1
        tied = None
        if values.get("tied") is not None:
            tied_span = next((b.span for b in args if b.name == "tied"), span)
            tied = self._tied_source(kind, values, x.shape, tied_span)
        # the same dict for every application it stands for (nothing changes a node's args),
        # so counting can recognise repeated layers too (passes/cost.py)
        y = self._add(kind, kind.name, values, [x, *references], shape, span, notation)
        y.tied = tied
        if act is not None:
            y = self.apply_layer(act, [], act_span, y)
        return y

    def _tied_source(self, kind, values, x_shape, span):
        """The layer whose weight a `tied=NAME` layer shares: the one that computed the
        tensor NAME, a layer with a weight of the same shape (GPT's output layer and its token
        embedding: both vocab x width)."""
        name = values["tied"]
        source = self.reference(ast.TensorName(span, name, [name]), None, argument="tied")
        theirs = None if source.layer is None else \
            source.layer.weight_shape(source.args, source.inputs[0].shape)
        if theirs is None:
            what = "the network's input" if source.kind == "input" else f"`{source.kind}`"
            raise self.error("E0406", f"`{name}` is computed by {what}, which has no weight "
                             "to share", span,
                             help="put the label on the layer itself: `wte: embedding(768)`, "
                                  "then `linear(50257, bias=false, tied=wte)`",
                             notes=[Note(f"`{name}` is computed here", source.span)])
        if source.tied is not None:
            raise self.error("E0406", f"`{name}` shares its weight already; tie to the layer "
                             "that owns it", span, notes=[Note("it is declared here",
                                                               source.span)])
        mine = kind.weight_shape(values, x_shape)
        if mine != theirs:
            raise self.error("E0406", f"`{kind.name}` needs a weight of {_sizes(mine)}, but "
                             f"`{name}`'s {source.kind} weight is {_sizes(theirs)}", span,
                             help="tied layers must have weights of the same shape: a linear "
                                  "layer of `out` features from D tied to an embedding of "
                                  "`out` tokens and width D",
                             notes=[Note(f"`{name}` is computed here", source.span)])
        return source

    def _check_size(self, kind, values, x_shape, shape, span):
        if numel(shape) > MAX_ELEMENTS:
            raise LimitExceeded(Diagnostic(
                "E0507", f"`{kind.name}` output {show(shape)} has more than 2**40 elements",
                span, self.notes()))
        params = Params.of(kind.params_count(values, x_shape)).total
        if params > MAX_PARAMS:
            raise LimitExceeded(Diagnostic(
                "E0507", f"`{kind.name}` would have {params:,} parameters, more "
                "than 2**40", span, self.notes()))

    def call_block(self, block: BlockValue, args: list[BoundArg], span: Span, x):
        if len(self.chain) >= MAX_BLOCK_DEPTH:
            names = [n for n, _ in self.chain]
            recursive = block.name in names
            # stops the whole network: the callers would only recurse again
            raise LimitExceeded(Diagnostic(
                "E0501", f"block `{block.name}` " + ("calls itself without end" if recursive
                                                    else f"is nested more than "
                                                         f"{MAX_BLOCK_DEPTH} calls deep"),
                span, self.notes(), help="make sure every recursion reaches a case that stops it"))
        self.steps_run += 1
        self.tick(span, BLOCK_CALL_WORK)
        scope = Scope(block.unit)
        bind_arguments(self.evaluator, "block", block.name, block.definition.params,
                       list(block.bound) + args, scope, span)
        self.chain.append((block.name, span))
        self.chain_definitions.append(block.definition)
        # the block sees its own labels, its input (`from input`) and the tensors given to
        # it as arguments (under their parameters' names), not its caller's other tensors
        given = {p.name: scope.names[p.name].node for p in block.definition.params
                 if isinstance(scope.names.get(p.name), TensorValue)}
        saved_tensors, self.tensors = self.tensors, {"input": x, **given}
        try:
            title = _call_title(block, scope, list(block.bound) + args)
            with self.frame_of("block", block.name, span, title) as frame:
                frame.block_args = {p.name: scope.names[p.name] for p in block.definition.params}
                return self.body(block.definition.body, scope, x)
        finally:
            self.chain.pop()
            self.chain_definitions.pop()
            self.tensors = saved_tensors

    # ---- frames and nodes ------------------------------------------------------------------

    def frame_of(self, kind, name, span, title):
        return _FrameContext(self, kind, name, span, title)

    def _add(self, layer, kind, args, inputs, shape, span, notation=None, output_name=None):
        if layer is not None and len(self.nodes) - 1 >= MAX_NODES:  # the input is no layer
            raise LimitExceeded(Diagnostic("E0507", f"the network has more than {MAX_NODES:,} "
                                           "layers", span, self.notes()))
        if layer is not None:
            self.tick(span, LAYER_WORK)
        node = Node(kind, layer, args, list(inputs), shape, span, self.frame, notation,
                    output_name, frozen=self.freezing and layer is not None)
        self.nodes.append(node)
        # a merge's join node and an output node are named after their frame (naming.py)
        if kind != "output" and not (layer is not None and layer.is_merge):
            self.frame.children.append(node)
        return node


class WorkBudget:
    """The elaboration work one request may spend (see MAX_WORK); shared by the elaborations
    of a request, so a file of many networks cannot multiply it."""

    def __init__(self, limit: int = MAX_WORK):
        self.limit = limit
        self.spent = 0


class _FrameContext:
    def __init__(self, elaborator, kind, name, span, title):
        self.elaborator = elaborator
        self.frame = Frame(kind, name, span, elaborator.frame, title=title)

    def __enter__(self):
        self.elaborator.frame.children.append(self.frame)
        self.elaborator.frame = self.frame
        return self.frame

    def __exit__(self, *exc):
        self.elaborator.frame = self.frame.parent
        return False


def _application_key(kind, bound, args, defaults, span, shape) -> tuple | None:
    """What a layer's application depends on — the kind, the call's place, its arguments and
    `with` defaults, the input's shape — as a dictionary key; None when an argument is not a
    plain value (the application is then worked out afresh). Values are tagged with their
    type: 1, 1.0 and true are equal in Python, not in a spec."""
    try:
        return (kind, span, shape,
                tuple((a.name, _plain(a.value)) for a in bound),
                tuple((a.name, _plain(a.value)) for a in args),
                tuple((name, _plain(a.value)) for name, a in defaults.items()))
    except _NotPlain:
        return None


class _NotPlain(Exception):
    pass


_PLAIN = (int, float, str, bool, type(None))


def _plain(value):
    if type(value) in _PLAIN:
        return (type(value), value)
    if isinstance(value, list) and len(value) <= 8:
        return (list, tuple(_plain(v) for v in value))
    if isinstance(value, LayerValue):
        return (LayerValue, value.kind, tuple((a.name, _plain(a.value)) for a in value.bound))
    raise _NotPlain


def _tensor_label_params(value) -> set[str]:
    """The parameters of a layer that take the name of a labelled tensor (TensorLabel)."""
    return value.kind.tensor_params() if isinstance(value, LayerValue) else set()


def _sizes(shape) -> str:
    return "x".join(map(str, shape))


def _labels_in(statements):
    """The static names of the labels in a body, however deeply nested."""
    for s in statements:
        if isinstance(s, (ast.Label, ast.Output)) and s.name.static:
            yield s.name.static, s.span.line
        for body in _bodies(s):
            yield from _labels_in(body)


def _bodies(s):
    if isinstance(s, (ast.Label, ast.Output, ast.Repeat, ast.With, ast.Frozen)):
        yield s.body
    elif isinstance(s, ast.If):
        yield from (body for _, body in s.branches)
        if s.otherwise:
            yield s.otherwise
    elif isinstance(s, (ast.Merge, ast.BranchRepeat)):
        for b in s.branches:
            yield from _bodies(b) if isinstance(b, ast.BranchRepeat) else [b.body]


def _defined(scope, name) -> bool:
    try:
        scope.lookup(name)
    except KeyError:
        return False
    return True


def _safe_lookup(scope, name):
    try:
        return scope.lookup(name)
    except KeyError:
        return None


def _call_title(block: BlockValue, scope: Scope, args: list[BoundArg]) -> str:
    """The call with the values of the arguments it was given (`bottleneck(c=128, s=2)`;
    defaults left out), for cluster titles."""
    from ..layers.types import value_text

    params = [p.name for p in block.definition.params]
    given = set(params[:sum(1 for a in args if a.name is None)])
    given |= {a.name for a in args if a.name is not None}
    shown = ", ".join(f"{name}={value_text(scope.names[name], 60)}" for name in params
                      if name in given)
    title = f"{block.name}({shown})" if shown else block.name
    return title if len(title) <= 60 else title[:57] + "..."
