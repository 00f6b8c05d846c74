"""What each name in a file is, from its syntax tree alone.

Every name written in a spec is an *occurrence* of a *symbol*:

    global     a definition of the file's namespace: block, def, network (and its variants,
               recipes), keyed by the file that defines it and its name
    local      a parameter, a `let` or a repeat variable of one definition
    label      a tensor named by a label or an output in one definition (`from NAME`,
               `tied=NAME` refer to it)
    layer      a layer kind of the registry (`conv`), and its parameters (`stride=`)
    use        the file a `use` line names (its references: the `use`s of it)

Scoping follows the language: inside a definition a name is first one of its locals, then
one of the file's definitions (its own and those it `use`s), then a layer kind or a
built-in. Shadowing inside one body (a `let` that reuses a parameter's name) is rare and the
language reports it; the index takes the first reading.

The index also says what each network depends on: the definitions its body, its variants'
arguments and the blocks they call reach by name (analysis.py re-elaborates a network only
when one of them changed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..diagnostics import Span
from ..layers import registry
from ..syntax import ast
from ..syntax.ast import walk

Range = tuple[int, int, int, int]  # line, col, end_line, end_col: 1-based, end exclusive


def span_range(span: Span) -> Range:
    return (span.line, span.col, span.end_line, span.end_col)


def contains(r: Range, line: int, col: int) -> bool:
    """Whether (line, col) is in the range or right after it (the cursor at a name's end)."""
    return (r[0], r[1]) <= (line, col) <= (r[2], r[3])


@dataclass(frozen=True)
class Occurrence:
    range: Range
    name: str
    kind: str  # block | def | network | param | let | var | label | layer | layer_param
    #            | block_param | use | builtin | unknown
    key: tuple | None  # the symbol: equal keys are the same symbol (None: not renamable)
    is_definition: bool = False
    owner: str | None = None  # the definition it is written in
    site: Range | None = None  # for a step's name: the whole step (what elaboration traced)
    syntax: object = None  # the definition, step or statement it belongs to


@dataclass(frozen=True)
class Symbol:
    """A definition or a label, for outlines and workspace search."""

    name: str
    kind: str  # network | block | def | label | use | recipe
    range: Range  # the whole definition or statement
    name_range: Range
    children: tuple = ()
    detail: str = ""


def name_range(span: Span, name: str, after: str = "") -> Range | None:
    """Where `name` is written inside `span`'s first line (after the keyword `after`): for
    nodes that keep no span of their own name (`let NAME`, `repeat n as NAME`)."""
    line = span.source.line(span.line)
    pattern = (rf"\b{after}\s+" if after else "") + rf"\b({re.escape(name)})\b"
    match = re.compile(pattern).search(line, span.col - 1)
    if match is None:
        return None
    return (span.line, match.start(1) + 1, span.line, match.end(1) + 1)


def param_range(p: ast.Param) -> Range:
    return (p.span.line, p.span.col, p.span.line, p.span.col + len(p.name))


def arg_name_range(a: ast.Arg) -> Range:
    return (a.span.line, a.span.col, a.span.line, a.span.col + len(a.name))


class Index:
    """The occurrences and symbols of one parsed file; `namespace`: the names it can see
    (FileUnit.namespace: name -> (definition, the unit that defines it)). Symbols are keyed by
    `file_id`, the identity of the file that defines them (the resolved path of a file on
    disk), so the indexes of several files agree on them."""

    def __init__(self, module: ast.Module, path: str, namespace: dict,
                 file_id: str | None = None):
        self.module = module
        self.path = file_id if file_id is not None else path
        self.namespace = namespace
        self.occurrences: list[Occurrence] = []
        self.symbols: list[Symbol] = []
        self.locals: dict[str, dict[str, Range]] = {}  # definition -> local name -> where
        self.labels: dict[str, dict[str, Range]] = {}  # definition -> label -> where
        for d in module.definitions:
            self._definition(d)
        self.occurrences.sort(key=lambda o: o.range)

    # ---- queries ---------------------------------------------------------------------------

    def at(self, line: int, col: int) -> Occurrence | None:
        """The occurrence under the cursor (the innermost, if ranges nest)."""
        found = [o for o in self.occurrences if contains(o.range, line, col)]
        return min(found, key=lambda o: (o.range[2] - o.range[0], o.range[3] - o.range[1]),
                   default=None)

    def with_key(self, key) -> list[Occurrence]:
        return [o for o in self.occurrences if o.key == key]

    def definition_at(self, line: int) -> ast.Definition | None:
        """The definition whose text holds `line`."""
        for d in self.module.definitions:
            if d.span.line <= line <= d.span.end_line:
                return d
        return None

    def global_key(self, name: str) -> tuple | None:
        entry = self.namespace.get(name)
        if entry is None:
            return None
        return ("global", str(entry[1].file.key), name)

    def _used_file(self, name: str) -> str:
        """The file a `use` names, as the key of the files that use it (its real path)."""
        base = Path(self.path).parent if self.path not in ("<string>", "") else Path.cwd()
        try:
            return str((base / name).resolve())
        except (OSError, RuntimeError, ValueError):
            return str(base / name)

    # ---- building --------------------------------------------------------------------------

    def _add(self, *args, **kwargs) -> None:
        self.occurrences.append(Occurrence(*args, **kwargs))

    def _definition(self, d: ast.Definition) -> None:
        name = d.name
        kind = {ast.Block: "block", ast.Def: "def", ast.Network: "network",
                ast.Variant: "network", ast.Recipe: "recipe", ast.Use: "use"}[type(d)]
        if isinstance(d, ast.Use):
            self._add(span_range(d.name_span), name, "use", ("use", self._used_file(name)),
                      syntax=d)
            self.symbols.append(Symbol(name, "use", span_range(d.span), span_range(d.name_span)))
            return
        if isinstance(d, ast.Recipe):  # names the network it is for
            self._add(span_range(d.name_span), name, "network", self.global_key(name),
                      owner=name, syntax=d)
            self._args(d.args, None, name, values=True)
            return
        self._add(span_range(d.name_span), name, kind, ("global", self.path, name),
                  is_definition=True, owner=name, syntax=d)
        local = self.locals.setdefault(name, {})
        for p in getattr(d, "params", ()):
            local[p.name] = param_range(p)
        for node in walk(d):
            if isinstance(node, ast.Let):
                where = name_range(node.span, node.name, "let")
                if where:
                    local.setdefault(node.name, where)
            elif isinstance(node, (ast.Repeat, ast.BranchRepeat)) and node.var:
                where = name_range(node.span, node.var, "as")
                if where:
                    local.setdefault(node.var, where)
        labels = self.labels.setdefault(name, {})
        for node in walk(d):
            if isinstance(node, (ast.Label, ast.Output)) and node.name.static:
                labels.setdefault(node.name.static, span_range(node.name.span))
        for p in getattr(d, "params", ()):
            self._add(param_range(p), p.name, "param", ("local", self.path, name, p.name),
                      is_definition=True, owner=name, syntax=p)
            if p.default is not None:
                self._expressions(p.default, name)
        children_symbols = tuple(
            Symbol(label, "label", where, where) for label, where in labels.items())
        detail = ""
        if isinstance(d, ast.Variant):
            self._add(span_range(d.base_span), d.base, "network", self.global_key(d.base),
                      owner=name, syntax=d)
            self._args(d.args, d.base, name, values=True)
            detail = f"= {d.base}(...)"
        elif isinstance(d, ast.Def):
            self._expressions(d.body, name)
        else:
            self._statements(d.body, name)
        if hasattr(d, "params"):
            detail = "(" + ", ".join(p.name for p in d.params) + ")"
        self.symbols.append(Symbol(name, kind, span_range(d.span), span_range(d.name_span),
                                   children_symbols, detail))

    def _statements(self, statements, owner: str) -> None:
        for node in statements:
            for item in walk(node):
                if isinstance(item, ast.Call):
                    self._call(item, owner)
                elif isinstance(item, ast.Let):
                    where = name_range(item.span, item.name, "let")
                    if where:
                        self._add(where, item.name, "let", ("local", self.path, owner, item.name),
                                  is_definition=True, owner=owner, syntax=item)
                elif isinstance(item, (ast.Repeat, ast.BranchRepeat)) and item.var:
                    where = name_range(item.span, item.var, "as")
                    if where:
                        self._add(where, item.var, "var", ("local", self.path, owner, item.var),
                                  is_definition=True, owner=owner, syntax=item)
                elif isinstance(item, (ast.Label, ast.Output)) and item.name.static:
                    self._add(span_range(item.name.span), item.name.static, "label",
                              ("label", self.path, owner, item.name.static),
                              is_definition=True, owner=owner, site=span_range(item.span),
                              syntax=item)
                elif isinstance(item, ast.StepLine) and item.source is not None \
                        and item.source.static:
                    self._label_ref(item.source.span, item.source.static, owner)
                elif isinstance(item, ast.LayerDefaults):
                    kind = registry.lookup(item.layer)
                    self._add(span_range(item.layer_span), item.layer, "layer",
                              ("layer", kind.name) if kind else None, owner=owner, syntax=item)
                    self._args(item.args, item.layer, owner,
                               layer=item.layer not in self.namespace)
                elif isinstance(item, ast.Name):
                    self._name(item, owner)

    def _expressions(self, expr, owner: str) -> None:
        for item in walk(expr):
            if isinstance(item, ast.Name):
                self._name(item, owner)

    def _call(self, call: ast.Call, owner: str) -> None:
        if call.notation is None:  # `conv3-64` is table notation, not a name
            self._name_occurrence(call.name_span, call.name, owner, site=span_range(call.span),
                                  syntax=call)
        if call.args:
            self._args(call.args, call.name, owner,
                       layer=call.name not in self.locals.get(owner, {})
                       and call.name not in self.namespace)

    def _args(self, args, callee: str | None, owner: str, layer: bool = False,
              values: bool = False) -> None:
        """Named arguments refer to the callee's parameters. `values`: walk the arguments'
        values too (a variant's and a recipe's; a step's are reached by walking its body)."""
        for a in args:
            if a.name is not None and callee is not None:
                self._param_ref(a, callee, owner, layer)
            if values:
                self._expressions(a.value, owner)

    def _param_ref(self, a: ast.Arg, callee: str, owner: str, layer: bool) -> None:
        where = arg_name_range(a)
        entry = self.namespace.get(callee)
        if entry is not None and not layer:
            definition, unit = entry
            target = _network_of(definition, self.namespace) if isinstance(
                definition, ast.Variant) else definition
            if target is not None and hasattr(target, "params"):
                owner_unit = self.namespace.get(target.name, (None, unit))[1]
                key = ("local", str(owner_unit.file.key), target.name, a.name) \
                    if any(p.name == a.name for p in target.params) else None
                self._add(where, a.name, "block_param", key, owner=owner, syntax=(target, a))
                return
        kind = registry.lookup(callee)
        if kind is not None:
            self._add(where, a.name, "layer_param", None, owner=owner, syntax=(kind, a))

    def _name(self, node: ast.Name, owner: str) -> None:
        self._name_occurrence(node.span, node.id, owner, syntax=node)

    def _name_occurrence(self, span: Span, name: str, owner: str, site=None, syntax=None):
        where = span_range(span)
        if name in self.locals.get(owner, {}):
            kind = "param" if any(
                p.name == name for p in _params_of(self.namespace, owner)) else "let"
            self._add(where, name, kind, ("local", self.path, owner, name), owner=owner,
                      site=site, syntax=syntax)
        elif name in self.namespace:
            definition = self.namespace[name][0]
            kind = {ast.Block: "block", ast.Def: "def"}.get(type(definition), "network")
            self._add(where, name, kind, self.global_key(name), owner=owner, site=site,
                      syntax=syntax)
        elif registry.lookup(name) is not None:
            self._add(where, name, "layer", ("layer", registry.lookup(name).name), owner=owner,
                      site=site, syntax=syntax)
        elif name in self.labels.get(owner, {}):
            self._label_ref(span, name, owner)
        else:
            self._add(where, name, "builtin" if name in _builtins() else "unknown", None,
                      owner=owner, site=site, syntax=syntax)

    def _label_ref(self, span: Span, name: str, owner: str) -> None:
        self._add(span_range(span), name, "label", ("label", self.path, owner, name),
                  owner=owner)

    # ---- what networks depend on -----------------------------------------------------------

    def dependencies(self, name: str) -> list[tuple[ast.Definition, object]]:
        """The definitions network `name` can reach by name (itself, the networks its variants
        build on, the blocks and defs they call, transitively), each with its unit."""
        found: dict[int, tuple] = {}
        stack = [self.namespace[name]] if name in self.namespace else []
        while stack:
            definition, unit = stack.pop()
            if id(definition) in found:
                continue
            found[id(definition)] = (definition, unit)
            for node in walk(definition):
                for used in _names_used(node):
                    entry = unit.namespace.get(used)
                    if entry is not None and id(entry[0]) not in found:
                        stack.append(entry)
        return list(found.values())


def _names_used(node) -> tuple[str, ...]:
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Call):
        return (node.name,)
    if isinstance(node, ast.Variant):
        return (node.base,)
    if isinstance(node, ast.LayerDefaults):
        return (node.layer,)
    return ()


def _network_of(definition, namespace, limit: int = 64):
    """The network a variant is built on (following variants), or None."""
    for _ in range(limit):
        if not isinstance(definition, ast.Variant):
            return definition
        entry = namespace.get(definition.base)
        if entry is None:
            return None
        definition = entry[0]
    return None


def _params_of(namespace: dict, name: str):
    entry = namespace.get(name)
    return getattr(entry[0], "params", ()) if entry else ()


def _builtins() -> set[str]:
    from ..elaborate.expressions import BUILTINS, CONSTANTS

    return set(BUILTINS) | set(CONSTANTS)
