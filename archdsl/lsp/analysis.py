"""One version of one file, checked as `archdsl check` does, with what an editor shows.

`Workspace.analyze(path, text)` loads the text (its `use`s from the editor's open files
first, then the disk), elaborates every network the file defines that can be built, and keeps
for each a *trace*: every statement and step that ran, with the tensor that entered and the
one that came out (Elaborator's `trace`). Hovers and inlay hints read the traces: the shape
after `conv3_x` in `resnet50` is what elaboration made there, in every network that runs that
line.

Incremental work: a network is elaborated again only when a definition it depends on changed
(index.Index.dependencies: its own, its variants' bases, the blocks and defs they reach), or
moved, or a name of the file's namespace came or went. A keystroke in one variant's line
re-elaborates that variant; one in a block that every network calls re-elaborates them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..diagnostics import Diagnostic, Diagnostics, SpecError
from ..elaborate.elaborator import POISON, Elaborator, WorkBudget
from ..elaborate.program import Program
from ..files import DiskFiles, SpecFile
from ..layers.registry import Params
from ..shapes import show
from ..syntax import ast
from ..syntax.parser import without_comment
from .index import Index, Range, span_range

MAX_TABLE_ROWS = 12  # hover tables: the networks and calls shown before "and N more"


class EditorFiles(DiskFiles):
    """Spec files as the editor sees them: an open file's text is its buffer's, saved or not;
    the others come from the disk, read and confined exactly as `archdsl check` reads them."""

    def __init__(self, open_texts: dict[Path, str]):
        super().__init__()
        self.open_texts = open_texts

    def read(self, file: SpecFile, span=None) -> str:
        text = self.open_texts.get(file.key) if isinstance(file.key, Path) else None
        return text if text is not None else super().read(file, span)


@dataclass
class NetworkRun:
    """One network elaborated for the editor: every node made (also when there were errors:
    the steps before them keep their shapes), its trace and its diagnostics."""

    name: str
    nodes: list
    trace: list
    diagnostics: list[tuple[Diagnostic, int]]  # each with the times it was reported
    # block -> the values of its parameters in each call, in order (a parameter's hover)
    calls: dict = field(default_factory=dict)


@dataclass
class Analysis:
    """The analysis of one version of one file."""

    path: str
    text: str
    diagnostics: list[Diagnostic]
    unit: object = None  # FileUnit; None when the text does not parse
    index: Index | None = None
    runs: dict[str, NetworkRun] = field(default_factory=dict)
    program: Program | None = None
    reused: int = 0  # networks whose elaboration was reused from an earlier version

    # ---- what the traces say ---------------------------------------------------------------

    def traced_at(self, site: Range, kinds: tuple) -> list[tuple[str, object]]:
        """(network, Traced) for each time a statement or step of one of `kinds`, written at
        `site` in this file, ran."""
        found = []
        for name, run in self.runs.items():
            for t in run.trace:
                if isinstance(t.syntax, kinds) and t.span.source.path == self.path \
                        and span_range(t.span) == site:
                    found.append((name, t))
        return found

    def step_lines(self) -> dict[Range, list[tuple[str, object]]]:
        """Every step line of this file that ran: its range -> (network, Traced)."""
        lines: dict[Range, list] = {}
        for name, run in self.runs.items():
            for t in run.trace:
                if isinstance(t.syntax, ast.StepLine) and t.span.source.path == self.path:
                    lines.setdefault(span_range(t.span), []).append((name, t))
        return lines

    def figures(self, network: str, t) -> tuple[int, int]:
        """The parameters and MACs of the layers one traced step or statement made."""
        run = self.runs[network]
        params = macs = 0
        for node in run.nodes[t.first:t.end]:
            layer = node.layer
            if layer is None or node.shape is None:
                continue
            x = [i.shape for i in node.inputs] if layer.is_merge else node.inputs[0].shape
            params += Params.of(layer.params_count(node.args, x)).total
            macs += layer.macs(node.args, x, node.shape)
        return params, macs


def parameter_values(analysis: "Analysis", block: str, parameter: str, limit: int = 8) -> str:
    """The values a block's parameter takes, network by network (`resnet18: 64, 128, 256,
    512`), as Markdown lines; empty when no network of the file calls the block."""
    from ..layers.types import value_text

    lines = []
    for network, run in analysis.runs.items():
        seen = dict.fromkeys(value_text(args[parameter], 30) for args in run.calls.get(block, [])
                             if parameter in args)
        if seen:
            shown = list(seen)[:limit]
            lines.append(f"- {network}: " + ", ".join(f"`{v}`" for v in shown)
                         + (" …" if len(seen) > limit else ""))
    if len(lines) > MAX_TABLE_ROWS:
        lines = lines[:MAX_TABLE_ROWS] + [f"- … and {len(lines) - MAX_TABLE_ROWS} more networks"]
    return "\n".join(lines)


def result_shape(t):
    """The tensor a traced statement or step gave (an output statement: its output's), or
    None after an error."""
    if isinstance(t.syntax, ast.Output):
        return None  # resolved by the caller from the nodes it made
    result = t.result
    return None if result is POISON or result is None else result.shape


class Workspace:
    """The open files, and the networks elaborated for them so far."""

    def __init__(self) -> None:
        self.open: dict[Path, str] = {}  # resolved path -> the editor's text
        self._runs: dict[tuple, NetworkRun] = {}  # (path, network, fingerprint) -> run

    def set_text(self, path: Path | None, text: str | None) -> None:
        if path is None:
            return
        path = _resolved(path)
        if text is None:
            self.open.pop(path, None)
        else:
            self.open[path] = text

    def forget(self, shown: str) -> None:
        """Drop the networks elaborated for a file (closed in the editor)."""
        for key in [k for k in self._runs if k[0] == shown]:
            del self._runs[key]

    def analyze(self, path: str | Path | None, text: str) -> Analysis:
        """Check one file's text. `path`: where the file is (its `use`s are relative to it),
        or None for a buffer never saved (its `use`s are relative to the current folder)."""
        program = Program(EditorFiles(self.open))
        unit = None
        try:
            unit = program.load_edited(path, text)
        except SpecError as error:
            program.diagnostics.extend(error.diagnostics)
        shown = program.edited or _shown(path)
        diagnostics = Diagnostics()
        diagnostics.extend(program.diagnostics)
        if unit is None:
            return Analysis(shown, text, list(diagnostics), program=program)
        index = Index(unit.module, unit.path, unit.namespace, str(unit.file.key))
        analysis = Analysis(shown, text, [], unit, index, {}, program)
        from ..api import Spec

        spec = Spec(program, unit)
        live = set()
        for name in spec.concrete_networks():
            key = (unit.path, name, _fingerprint(index, name, program))
            live.add(key)
            run = self._runs.get(key)
            if run is None:
                run = self._runs[key] = _elaborate(unit, name)
            else:
                analysis.reused += 1
            analysis.runs[name] = run
            for d, times in run.diagnostics:
                diagnostics.add(d, times)
        spec.check_recipes(diagnostics)
        # forget the runs of this file that its current text no longer has
        for key in [k for k in self._runs if k[0] == unit.path and k not in live]:
            del self._runs[key]
        analysis.diagnostics = list(diagnostics)
        return analysis


def _elaborate(unit, name: str) -> NetworkRun:
    diagnostics = Diagnostics()
    trace: list = []
    elaborator = Elaborator(diagnostics, WorkBudget(), trace)
    elaborator.network(unit, name, graph=False)
    nodes = getattr(elaborator, "nodes", [])
    calls: dict[str, list[dict]] = {}
    for frame in _untie(elaborator, nodes):
        if frame.kind == "block":
            calls.setdefault(frame.name, []).append(frame.block_args)
    return NetworkRun(name, nodes, trace, diagnostics.counted(), calls)


def _untie(elaborator, nodes) -> list:
    """Break the reference cycles elaboration leaves (nodes and their frames, the elaborator
    and its evaluator), so that a run's objects are freed when it is dropped, by reference
    counting, without waiting for the cyclic collector (see server.serve). Returns the
    frames that hold nodes (each before the frames around it)."""
    frames = {}
    for node in nodes:
        frame = node.frame
        while frame is not None and id(frame) not in frames:
            frames[id(frame)] = frame
            frame = frame.parent
        node.frame = None
    made = list(frames.values())
    for frame in frames.values():
        frame.parent = None
        frame.children = []
        frame.absorbed = []
        frame.node = None
    elaborator.evaluator.context = None
    elaborator.frame = None
    return made


def _fingerprint(index: Index, name: str, program: Program) -> tuple:
    """What network `name`'s elaboration depends on: the text and place of every definition
    it can reach, and the names each file defines (a new definition can shadow a layer)."""
    parts = []
    for definition, unit in index.dependencies(name):
        span = definition.span
        parts.append((unit.path, definition.name, span_range(span), source_text(span)))
    parts.sort()
    names = tuple(sorted((u.path, tuple(sorted(u.namespace))) for u in program.units.values()))
    return tuple(parts), names


def source_text(span) -> str:
    """The text a span covers."""
    lines = span.source.lines[span.line - 1:span.end_line]
    if not lines:
        return ""
    lines[-1] = lines[-1][:span.end_col - 1]
    lines[0] = lines[0][span.col - 1:]
    return "\n".join(lines)


def _resolved(path) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(path)


def _shown(path) -> str:
    return str(path) if path is not None else "<string>"


# ---- hover text ----------------------------------------------------------------------------

def shape_text(shape) -> str:
    return "?" if shape is None else show(shape)


def count_text(n: int) -> str:
    for unit, size in (("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def layer_doc(kind) -> str:
    """A layer kind's signature, doc and parameters, in Markdown (as docs/layers.md)."""
    lines = [f"```archdsl\n{kind.signature}\n```", kind.doc]
    if kind.params:
        lines.append("\n".join(f"- `{p.name}`" + (f" = `{_default(p)}`" if not p.required
                                                   else "") + (f": {p.doc}" if p.doc else "")
                               for p in kind.params))
    return "\n\n".join(line for line in lines if line)


def _default(p) -> str:
    from ..layers.registry import _show_default

    return _show_default(p.default)


def definition_doc(definition: ast.Definition) -> str:
    """The comment written for a definition: the comment lines right above it and the one at
    the end of its first line."""
    source = definition.span.source
    lines = []
    number = definition.span.line - 1
    while number >= 1 and source.line(number).lstrip().startswith("#"):
        lines.insert(0, source.line(number).strip().lstrip("#").strip())
        number -= 1
    first = source.line(definition.span.line)
    comment = first[len(without_comment(first)) + 1:].strip()
    if comment:
        lines.append(comment)
    return " ".join(line for line in lines if line)


def signature_of(definition: ast.Definition) -> str:
    """`block basic(c, s=1)` as written."""
    what = {ast.Block: "block", ast.Def: "def", ast.Network: "network",
            ast.Variant: "network"}.get(type(definition), "")
    if isinstance(definition, ast.Variant):
        return f"network {definition.name} = {definition.base}(...)"
    params = ", ".join(p.name + (f"={source_text(p.default.span)}" if p.default is not None
                                 else "") for p in getattr(definition, "params", []))
    return f"{what} {definition.name}({params})"


def shapes_table(analysis: Analysis, traced: list) -> str:
    """A Markdown table of what a step or statement made, network by network; repeated
    applications with the same shapes are one row (× n)."""
    rows: dict[tuple, list] = {}  # the same network, shapes and figures: one row, counted
    for network, t in traced:
        entered = None if t.entered is POISON or t.entered is None else t.entered.shape
        out = result_shape(t)
        if isinstance(t.syntax, ast.Output):
            made = analysis.runs[network].nodes[t.first:t.end]
            out = made[-1].shape if made and made[-1].kind == "output" else None
        params, macs = analysis.figures(network, t)
        key = (network, shape_text(entered), shape_text(out), params, macs)
        rows.setdefault(key, [*key, 0])[5] += 1
    if not rows:
        return ""
    rows = list(rows.values())
    lines = ["| network | in | out | params | MACs |", "|---|---|---|---:|---:|"]
    for network, entered, out, params, macs, times in rows[:MAX_TABLE_ROWS]:
        repeat = f" (×{times})" if times > 1 else ""
        lines.append(f"| {network}{repeat} | {entered} | **{out}** | {params:,} | "
                     f"{count_text(macs)} |")
    if len(rows) > MAX_TABLE_ROWS:
        lines.append(f"\n… and {len(rows) - MAX_TABLE_ROWS} more")
    return "\n".join(lines)

