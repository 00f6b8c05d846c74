"""`archdsl lsp`: the Language Server Protocol over stdio, on pygls.

Everything runs on the server's one event loop, in the order requests arrive, so no two
analyses race. A change is analysed after DEBOUNCE seconds without another change to the
same file (typing coalesces), and at once when a request (a hover) needs the newest text.
Every handler is guarded: an internal error is logged to the client and answered with
nothing; a failed analysis publishes one diagnostic saying so. The server never stops
answering because of what a file holds.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import re
import sys
import traceback
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..diagnostics import Diagnostic, split_lines
from ..layers import registry
from ..limits import MAX_FILE_BYTES
from ..syntax.format import RESERVED
from ..syntax import ast
from . import editing
from .highlight import MODIFIERS, TYPES, encode, semantic_tokens, utf16_length
from .analysis import (Analysis, Workspace, definition_doc, layer_doc, parameter_values,
                       result_shape, shape_text, shapes_table, signature_of, source_text)
from .index import Index, Occurrence

DEBOUNCE = 0.03  # seconds without a change before a file is checked again
COLLECT_AFTER = 0.5  # seconds without a check before garbage is collected
MAX_UNCOLLECTED = 1_500_000  # objects allocated since the last collection: collect at once
MAX_WORKSPACE_FILES = 2000  # .arch files searched for workspace symbols
NAME = re.compile(r"[A-Za-z_]\w*\Z")


class ArchServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("archdsl", __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.model = Workspace()
        self.analyses: dict[str, Analysis] = {}  # uri -> the analysis of its newest text
        self.parsed: dict[str, Analysis] = {}  # uri -> the newest analysis that parsed
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.symbol_cache: dict[Path, tuple[float, list]] = {}
        # closed workspace files read for references and renames: (the modification times of
        # the file and the files it uses, its index)
        self.index_cache: dict[Path, tuple[tuple, Index]] = {}
        self.collecting: asyncio.TimerHandle | None = None

    # ---- documents -------------------------------------------------------------------------

    def text(self, uri: str) -> str:
        return self.workspace.get_text_document(uri).source

    def current(self, uri: str) -> Analysis:
        """The analysis of the document's newest text (made now if a change is pending)."""
        analysis = self.analyses.get(uri)
        text = self.text(uri)
        if analysis is None or analysis.text != text:
            self.refresh(uri)
            analysis = self.analyses[uri]
        return analysis

    def schedule(self, uri: str, delay: float = DEBOUNCE) -> None:
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        self.pending[uri] = asyncio.get_running_loop().call_later(delay, self.refresh, uri)

    def refresh(self, uri: str, dependents: bool = True) -> None:
        """Check the document now and publish its diagnostics; then the open files that use
        it, whose diagnostics may change with it."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        document = self.workspace.get_text_document(uri)
        text = document.source
        path = _path(uri)
        self.model.set_text(path, text)
        try:
            analysis = self.model.analyze(path, text)
        except Exception as error:  # archdsl's bug; the editor still gets an answer
            self.log(f"internal error checking {uri}:\n{traceback.format_exc()}")
            analysis = Analysis(str(path or uri), text, [Diagnostic(
                "internal", f"archdsl could not check this file (an internal error: "
                f"{type(error).__name__}); please report it with the file")])
        self.analyses[uri] = analysis
        if analysis.unit is not None:
            self.parsed[uri] = analysis
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri, [self.diagnostic(d, analysis, uri) for d in analysis.diagnostics],
            document.version))
        self.collect_later()
        if dependents and path is not None:
            mine = _resolved(path)
            for other, their in list(self.analyses.items()):
                if other != uri and their.program is not None and mine in their.program.units:
                    self.schedule(other, 0)

    def watch_files(self) -> None:
        """Ask the client to report changes to .arch files on disk (a `git checkout`, a save
        from another program), where it can: the files that use them are checked again."""
        workspace = self.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace else None
        if watched is None or not watched.dynamic_registration:
            return
        self.client_register_capability(lsp.RegistrationParams([lsp.Registration(
            "archdsl-watch", lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            lsp.DidChangeWatchedFilesRegistrationOptions(
                [lsp.FileSystemWatcher(glob_pattern="**/*.arch")]))]))

    def files_changed(self, uris: list[str]) -> None:
        """Files changed on disk: the open files that use one are checked again (an open file
        itself is the editor's text, which the editor reports)."""
        changed = {_resolved(path) for uri in uris if (path := _path(uri)) is not None}
        for uri, analysis in list(self.analyses.items()):
            if analysis.program is not None and changed & set(analysis.program.units):
                self.schedule(uri, 0)

    def forget(self, uri: str) -> None:
        """A file closed: its diagnostics are cleared, and the disk's text counts again."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        analysis = self.analyses.pop(uri, None)
        if analysis is not None:
            self.model.forget(analysis.path)
        self.parsed.pop(uri, None)
        self.model.set_text(_path(uri), None)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))

    def collect_later(self) -> None:
        """Collect garbage once no file has been checked for COLLECT_AFTER seconds, or now if
        much has piled up (see serve: the collector runs only when the server calls it)."""
        if self.collecting is not None:
            self.collecting.cancel()
            self.collecting = None
        if gc.get_count()[0] > MAX_UNCOLLECTED:
            gc.collect()
        else:
            self.collecting = asyncio.get_running_loop().call_later(COLLECT_AFTER, gc.collect)

    def log(self, message: str) -> None:
        try:
            self.window_log_message(lsp.LogMessageParams(lsp.MessageType.Error, message))
        except Exception:
            print(message, file=sys.stderr)

    # ---- diagnostics -----------------------------------------------------------------------

    def diagnostic(self, d: Diagnostic, analysis: Analysis, uri: str) -> lsp.Diagnostic:
        message = d.message
        related = []
        for note in d.notes:
            if note.span is not None:
                related.append(lsp.DiagnosticRelatedInformation(
                    self.location(note.span, analysis, uri), note.message))
            else:
                message += f"\nnote: {note.message}"
        if d.help:
            message += f"\nhelp: {d.help}"
        span = d.span
        if span is not None and span.source.path == analysis.path:
            where = _range(span)
        else:
            if span is not None:  # found in a file this one uses: shown on its `use` line
                message = f"{span}: {message}"
                related.insert(0, lsp.DiagnosticRelatedInformation(
                    self.location(span, analysis, uri), "the error is here"))
            where = self.use_line(analysis, span)
        return lsp.Diagnostic(where, message, lsp.DiagnosticSeverity.Error
                              if d.severity == "error" else lsp.DiagnosticSeverity.Warning,
                              code=d.code, source="archdsl", related_information=related or None)

    def use_line(self, analysis: Analysis, span) -> lsp.Range:
        """Where a problem of another file is shown: the `use` that brings that file in."""
        if analysis.unit is not None:
            uses = [d for d in analysis.unit.module.definitions if isinstance(d, ast.Use)]
            for use in uses:
                if span is not None and span.source.path.endswith(use.name.lstrip("./")):
                    return _range(use.span)
            if uses:
                return _range(uses[0].span)
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))

    def location(self, span, analysis: Analysis, uri: str) -> lsp.Location:
        return lsp.Location(self.uri_of(span.source.path, analysis, uri), _range(span))

    def uri_of(self, shown: str, analysis: Analysis, uri: str) -> str:
        if shown == analysis.path or shown == "<string>":
            return uri
        return from_fs_path(str(_resolved(Path(shown))))

    # ---- what is under the cursor ----------------------------------------------------------

    def occurrence(self, uri: str, position: lsp.Position) -> tuple[Analysis, Occurrence | None]:
        analysis = self.current(uri)
        if analysis.index is None:
            return analysis, None
        line, col = _from_position(analysis.text, position)
        return analysis, analysis.index.at(line, col)

    def hover(self, uri: str, position: lsp.Position) -> lsp.Hover | None:
        analysis, o = self.occurrence(uri, position)
        if o is None:
            return None
        text = hover_text(analysis, o)
        if not text:
            return None
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text), _range_of(o.range))

    def definition_of(self, uri: str, position: lsp.Position) -> list[lsp.Location]:
        analysis, o = self.occurrence(uri, position)
        if o is None:
            return []
        if o.kind == "use":
            target = _resolved(Path(analysis.path).parent / o.name)
            return [lsp.Location(from_fs_path(str(target)), _range_of((1, 1, 1, 1)))]
        if o.key is None:
            return []
        if o.key[0] == "global" and o.name in analysis.unit.namespace:
            definition, unit = analysis.unit.namespace[o.name]
            return [lsp.Location(self.uri_of(unit.path, analysis, uri),
                                 _range(definition.name_span))]
        found = []
        for where, index, occurrence in self.occurrences_of(o.key, analysis, uri):
            if occurrence.is_definition:
                found.append(lsp.Location(where, _range_of(occurrence.range)))
        return found[:1]

    def occurrences_of(self, key, analysis: Analysis, uri: str):
        """(uri, index, occurrence) for every occurrence of a symbol in this file, the files it
        uses, the other open files and, for a block, def or network, the closed files of the
        workspace that use it."""
        seen = set()
        indexes = [(uri, analysis.index)]
        if analysis.program is not None:
            for unit in analysis.program.units.values():
                if unit is not analysis.unit:
                    indexes.append((self.uri_of(unit.path, analysis, uri),
                                    Index(unit.module, unit.path, unit.namespace, _file_id(unit))))
        for other, their in self.analyses.items():
            if other != uri and their.index is not None:
                indexes.append((other, their.index))
        if key[0] == "global":
            shown = {where for where, _ in indexes}
            indexes += [(where, index) for where, index in self.closed_indexes(key[2])
                        if where not in shown]
        for where, index in indexes:
            for occurrence in index.with_key(key):
                if (where, occurrence.range) not in seen:
                    seen.add((where, occurrence.range))
                    yield where, index, occurrence

    def references(self, uri, position, declaration: bool) -> list[lsp.Location]:
        analysis, o = self.occurrence(uri, position)
        if o is None or o.key is None:
            return []
        return [lsp.Location(where, _range_of(occurrence.range))
                for where, _, occurrence in self.occurrences_of(o.key, analysis, uri)
                if declaration or not occurrence.is_definition]

    def prepare_rename(self, uri, position) -> lsp.Range | None:
        analysis, o = self.occurrence(uri, position)
        if o is None or not _renamable(o):
            return None
        return _range_of(o.range)

    def rename(self, uri, position, new_name: str) -> lsp.WorkspaceEdit | None:
        analysis, o = self.occurrence(uri, position)
        if o is None or not _renamable(o):
            what = f"`{o.name}`" if o is not None else "this"
            raise ValueError(f"{what} cannot be renamed: only blocks, defs, networks, "
                             "parameters, `let`s, repeat variables and labels can")
        if not NAME.match(new_name) or new_name in RESERVED:
            raise ValueError(f"`{new_name}` is not a name a spec can use")
        from ..layers import registry

        if o.key[0] == "global":
            taken = set(analysis.unit.namespace)
        else:  # the definition the parameter, `let` or label belongs to (keys name it)
            owner = o.key[2]
            taken = set(analysis.index.locals.get(owner, {})) | set(
                analysis.index.labels.get(owner, {}))
        if new_name in taken and new_name != o.name:
            raise ValueError(f"`{new_name}` is already defined here")
        if registry.lookup(new_name) is not None:
            raise ValueError(f"`{new_name}` is a layer kind: a name of that spelling would "
                             "hide it")
        changes: dict[str, list] = {}
        for where, _, occurrence in self.occurrences_of(o.key, analysis, uri):
            changes.setdefault(where, []).append(
                lsp.TextEdit(_range_of(occurrence.range), new_name))
        return lsp.WorkspaceEdit(changes=changes)

    # ---- symbols ---------------------------------------------------------------------------

    def document_symbols(self, uri: str) -> list[lsp.DocumentSymbol]:
        analysis = self.current(uri)
        if analysis.index is None:
            analysis = self.parsed.get(uri, analysis)
        if analysis.index is None:
            return []
        return [_document_symbol(s) for s in analysis.index.symbols if s.kind != "use"]

    def workspace_symbols(self, query: str) -> list[lsp.WorkspaceSymbol]:
        found = []
        seen = set()
        for uri, analysis in self.analyses.items():
            if analysis.index is not None:
                seen.add(_path(uri) and _resolved(_path(uri)))
                found += [(uri, s) for s in analysis.index.symbols]
        for path in self.workspace_files():
            if path not in seen:
                found += [(from_fs_path(str(path)), s) for s in self.symbols_of(path)]
        query = query.lower()
        return [lsp.WorkspaceSymbol(name=s.name, kind=_SYMBOL_KINDS[s.kind],
                                    location=lsp.Location(uri, _range_of(s.name_range)),
                                    container_name=s.detail or None)
                for uri, s in found if s.kind in ("network", "block", "def")
                and _fuzzy(query, s.name.lower())][:500]

    def workspace_files(self) -> list[Path]:
        files = []
        for folder in self.workspace.folders.values():
            root = _path(folder.uri)
            if root is None or not root.is_dir():
                continue
            for parent, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                                 and d not in ("node_modules", "__pycache__"))
                files += [_resolved(Path(parent, n)) for n in sorted(names) if n.endswith(".arch")]
                if len(files) > MAX_WORKSPACE_FILES:
                    return files[:MAX_WORKSPACE_FILES]
        return files

    def closed_indexes(self, name: str):
        """(uri, index) of each workspace file not open in the editor whose text mentions
        `name`, read with the files it uses (the editor's text of those that are open)."""
        for path in self.workspace_files():
            uri = from_fs_path(str(path))
            if uri in self.analyses:
                continue
            index = self.closed_index(path, name)
            if index is not None:
                yield uri, index

    def closed_index(self, path: Path, name: str) -> Index | None:
        """A closed file's index, made once per change of its and its used files' times."""
        from ..diagnostics import SpecError
        from ..elaborate.program import Program, read_spec_text
        from .analysis import EditorFiles

        cached = self.index_cache.get(path)
        if cached is not None and all(_mtime(p) == t for p, t in cached[0]):
            return cached[1]
        try:
            # read as every spec is: a regular .arch file within the size limit
            if name not in read_spec_text(path):
                return None
            program = Program(EditorFiles(self.model.open))
            unit = program.load_file(path)
        except (OSError, SpecError, RecursionError):
            return None
        if unit is None:
            return None
        index = Index(unit.module, unit.path, unit.namespace, _file_id(unit))
        times = tuple((Path(u.file.key), _mtime(Path(u.file.key)))
                      for u in program.units.values() if isinstance(u.file.key, Path))
        self.index_cache[path] = (times, index)
        return index

    def symbols_of(self, path: Path) -> list:
        """A file's definitions, parsed once per change of its modification time."""
        from ..diagnostics import SpecError
        from ..elaborate.program import read_spec_text
        from ..syntax.parser import parse

        try:
            mtime = path.stat().st_mtime
        except OSError:
            return []
        cached = self.symbol_cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            module = parse(read_spec_text(path), str(path))
            symbols = Index(module, str(path), {}).symbols
        except (SpecError, RecursionError):
            symbols = []
        self.symbol_cache[path] = (mtime, symbols)
        return symbols

    # ---- completion and signature help -----------------------------------------------------

    def completions(self, uri: str, position: lsp.Position) -> list[lsp.CompletionItem]:
        text = self.text(uri)
        line, col = _from_position(text, position)
        ctx = editing.context(text, line, col)
        analysis = self.parsed.get(uri)
        if self.analyses.get(uri) is not None and self.analyses[uri].index is not None:
            analysis = self.analyses[uri]
        owner = None
        if analysis is not None:
            definition = analysis.index.definition_at(line)
            owner = definition.name if definition is not None else None
        if ctx.use_path is not None:
            return _file_items(_path(uri), ctx.use_path)
        kind = registry.lookup(ctx.call.name) if ctx.call is not None else None
        names_tensor = kind is not None and ctx.call.named in kind.tensor_params()
        if ctx.after_from or names_tensor:  # `from c4`, `like=c4`, `tied=wte`
            labels = dict.fromkeys(["input"])  # the network's or the block's
            labels.update(dict.fromkeys(editing.labels_above(text, line)))
            if analysis is not None:
                labels.update(dict.fromkeys(analysis.index.labels.get(owner, {})))
            return [lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Field,
                                       detail="label") for name in labels]
        choices = _choices(kind, ctx.call.named) if kind is not None else []
        if choices:  # `mode=`, `approximate=`: the values it takes, quoted
            return [lsp.CompletionItem(f'"{value}"', kind=lsp.CompletionItemKind.EnumMember,
                                       detail=f"{ctx.call.name}'s {ctx.call.named}")
                    for value in choices]
        items = []
        if ctx.call is not None and ctx.call.typing_name:
            items += _parameter_items(ctx.call, analysis)
        items += _name_items(analysis, owner, steps=ctx.call is None)
        if ctx.call is None and ctx.line_start:
            items += [lsp.CompletionItem(k, kind=lsp.CompletionItemKind.Keyword)
                      for k in sorted(RESERVED - {"x"})]  # `x` repeats: not a line's start
        return items

    def signature_help(self, uri: str, position: lsp.Position) -> lsp.SignatureHelp | None:
        text = self.text(uri)
        line, col = _from_position(text, position)
        call = editing.call_at(split_lines(text), line, col)
        if call is None:
            return None
        analysis = self.parsed.get(uri)
        signature = _signature(call.name, analysis)
        if signature is None:
            return None
        label, params, doc = signature
        active = call.argument
        if call.named in params:
            active = params.index(call.named)
        elif call.given:  # positional after named: none matches
            active = min(active, len(params) - 1) if params else 0
        return lsp.SignatureHelp(
            [lsp.SignatureInformation(
                label, lsp.MarkupContent(lsp.MarkupKind.Markdown, doc) if doc else None,
                [lsp.ParameterInformation(p) for p in params])],
            active_signature=0, active_parameter=min(active, max(len(params) - 1, 0)))

    # ---- inlay hints and formatting --------------------------------------------------------

    def inlay_hints(self, uri: str, area: lsp.Range) -> list[lsp.InlayHint]:
        analysis = self.current(uri)
        if analysis.index is None:
            return []
        first, last = area.start.line + 1, area.end.line + 1
        hints = []
        ends = set()
        for where, traced in sorted(analysis.step_lines().items()):
            if not first <= where[2] <= last or (where[2], where[3]) in ends:
                continue
            ends.add((where[2], where[3]))
            shapes = {}
            for network, t in traced:
                shapes.setdefault(shape_text(result_shape(t)), []).append(network)
            shown = [s for s in shapes if s != "?"]
            if not shown:
                continue
            label = "→ " + shown[0] + (" …" if len(shown) > 1 else "")
            tooltip = "\n".join(f"{s}: {_networks_text(n)}" for s, n in list(shapes.items())[:8])
            if len(shapes) > 8:
                tooltip += f"\n… and {len(shapes) - 8} more shapes"
            hints.append(lsp.InlayHint(_position(analysis.text, where[2], where[3]), label,
                                       kind=lsp.InlayHintKind.Type, padding_left=True,
                                       tooltip=tooltip))
        return hints

    def semantic_tokens(self, uri: str) -> lsp.SemanticTokens:
        analysis = self.current(uri)
        if _too_large(analysis.text):  # its diagnostic (E0507) says so
            return lsp.SemanticTokens(data=[])
        return lsp.SemanticTokens(data=encode(analysis.text, semantic_tokens(
            analysis.text, analysis.index)))

    def formatting(self, uri: str) -> list[lsp.TextEdit] | None:
        from ..diagnostics import SpecError
        from ..syntax.format import FormatError, format_text

        text = self.text(uri)
        if _too_large(text):
            return None
        try:
            formatted = format_text(text, str(_path(uri) or "<string>"))
        except (SpecError, FormatError, RecursionError):
            return None  # the diagnostics say why
        if formatted == text:
            return []
        lines = split_lines(text)
        end = lsp.Position(len(lines), 0)
        return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), formatted)]


# ---- hover text ----------------------------------------------------------------------------

def hover_text(analysis: Analysis, o: Occurrence) -> str:
    from ..elaborate.expressions import BUILTINS
    from ..layers import registry

    parts = []
    namespace = analysis.unit.namespace
    if o.kind == "layer":
        kind = registry.lookup(o.name)
        parts.append(layer_doc(kind))
    elif o.kind in ("block", "def", "network") and o.name in namespace:
        definition, unit = namespace[o.name]
        parts.append(f"```archdsl\n{signature_of(definition)}\n```")
        doc = definition_doc(definition)
        if doc:
            parts.append(doc)
        if unit is not analysis.unit:
            parts.append(f"defined in `{unit.path}`")
        if o.kind == "network" and o.site is None:
            parts.append(network_table(analysis, definition))
    elif o.kind == "label":
        site = o.site or _label_site(analysis, o)
        parts.append(f"label `{o.name}`")
        if site is not None:
            parts.append(shapes_table(analysis, analysis.traced_at(
                site, (ast.Label, ast.Output))))
        return "\n\n".join(p for p in parts if p)
    elif o.kind in ("param", "let", "var"):
        what = {"param": "parameter", "let": "`let`", "var": "repeat variable"}[o.kind]
        text = f"{what} `{o.name}` of `{o.owner}`"
        definition = namespace.get(o.owner, (None,))[0]
        for p in getattr(definition, "params", []):
            if p.name == o.name and p.default is not None:
                text += f" (default `{source_text(p.default.span)}`)"
        parts.append(text)
        if o.kind == "param" and isinstance(definition, ast.Block):
            values = parameter_values(analysis, o.owner, o.name)
            if values:
                parts.append("its values in the calls:\n\n" + values)
    elif o.kind == "layer_param":
        kind, arg = o.syntax
        for p in kind.params:
            if p.name == arg.name:
                default = "" if p.required else f" = `{_show(p)}`"
                parts.append(f"`{p.name}`{default} — {p.type.description}"
                             + (f": {p.doc}" if p.doc else "") + f" (of `{kind.name}`)")
        if arg.name == "act":
            parts.append("`act`: an activation applied after the layer")
    elif o.kind == "block_param":
        target, arg = o.syntax
        for p in target.params:
            if p.name == arg.name:
                default = f" (default `{source_text(p.default.span)}`)" if p.default else ""
                parts.append(f"parameter `{p.name}` of `{target.name}`{default}")
    elif o.kind == "use":
        parts.append(f"`use \"{o.name}\"`: brings in the definitions of "
                     f"`{Path(analysis.path).parent / o.name}`")
    elif o.kind == "builtin" and o.name in BUILTINS:
        b = BUILTINS[o.name]
        parts.append(f"```archdsl\n{b.signature}\n```\n\n{b.doc}")
    if o.site is not None and o.kind in ("layer", "block"):
        table = shapes_table(analysis, analysis.traced_at(o.site, (ast.Call,)))
        if table:
            parts.insert(1, table)
    return "\n\n".join(p for p in parts if p)


def network_table(analysis: Analysis, definition) -> str:
    """Each network of the file built on `definition`: input, outputs, parameters, MACs."""
    from ..api import Spec

    spec = Spec(analysis.program, analysis.unit)
    rows = []
    for name, run in analysis.runs.items():
        if not any(d is definition for d, _ in analysis.index.dependencies(name)):
            continue
        totals = getattr(run, "totals", None)
        if totals is None:
            net = spec.elaborate(name)
            totals = run.totals = None if net is None else (
                shape_text(net.input_shape),
                ", ".join(shape_text(s) for s in net.output_shapes.values()),
                net.params_total, net.macs)
        if totals is not None:
            rows.append(f"| {name} | {totals[0]} | {totals[1]} | {totals[2]:,} | {totals[3]:,} |")
    if not rows:
        return ""
    return "\n".join(["| network | input | output | params | MACs |",
                      "|---|---|---|---:|---:|", *rows[:12]] +
                     ([f"\n… and {len(rows) - 12} more"] if len(rows) > 12 else []))


def _networks_text(names: list[str]) -> str:
    names = list(dict.fromkeys(names))
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _label_site(analysis: Analysis, o: Occurrence):
    for other in analysis.index.with_key(o.key):
        if other.is_definition:
            return other.site
    return None


def _show(p) -> str:
    from ..layers.registry import _show_default

    return _show_default(p.default)


# ---- completion helpers ------------------------------------------------------------------

def _choices(kind, name: str | None) -> list[str]:
    """The values a layer's argument named `name` takes, where it is one of a few words
    (upsample's `mode`, gelu's `approximate`); [] otherwise."""
    from ..layers.types import Choice, Optional

    param = next((p for p in kind.params if p.name == name), None)
    if param is None:
        return []
    arg_type = param.type.inner if isinstance(param.type, Optional) else param.type
    return list(arg_type.choices) if isinstance(arg_type, Choice) else []


def _parameter_items(call: editing.CallContext, analysis) -> list[lsp.CompletionItem]:
    """`name=` for each parameter of the callee not given yet."""
    from ..layers import registry

    items = []
    kind = registry.lookup(call.name)
    namespace = analysis.unit.namespace if analysis is not None else {}
    if call.name in namespace:
        definition = namespace[call.name][0]
        for p in getattr(definition, "params", []):
            if p.name not in call.given:
                default = source_text(p.default.span) if p.default is not None else None
                items.append(lsp.CompletionItem(
                    f"{p.name}=", kind=lsp.CompletionItemKind.Property,
                    detail=f"default {default}" if default else "required",
                    sort_text=f"0{p.name}"))
    elif kind is not None:
        for p in kind.params:
            if p.name not in call.given:
                items.append(lsp.CompletionItem(
                    f"{p.name}=", kind=lsp.CompletionItemKind.Property,
                    detail=("required" if p.required else f"default {_show(p)}")
                    + f" · {p.type.description}",
                    documentation=p.doc or None, sort_text=f"0{p.name}"))
        if kind.accepts_act and "act" not in call.given:
            items.append(lsp.CompletionItem("act=", kind=lsp.CompletionItemKind.Property,
                                            detail="an activation after the layer",
                                            sort_text="0act"))
    return items


def _name_items(analysis, owner, steps: bool) -> list[lsp.CompletionItem]:
    """Layer kinds, the file's definitions, and the locals of the definition at the cursor."""
    from ..elaborate.expressions import BUILTINS, CONSTANTS
    from ..layers import LAYERS

    items = []
    if analysis is not None:
        for name, where in analysis.index.locals.get(owner, {}).items():
            items.append(lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Variable,
                                            detail=f"in {owner}", sort_text=f"1{name}"))
        for name, (definition, unit) in analysis.unit.namespace.items():
            kind = lsp.CompletionItemKind.Class if isinstance(
                definition, (ast.Network, ast.Variant)) else lsp.CompletionItemKind.Function
            items.append(lsp.CompletionItem(
                name, kind=kind, detail=signature_of(definition),
                documentation=definition_doc(definition) or None, sort_text=f"2{name}"))
    if steps:
        for kind in LAYERS.values():
            for name in (kind.name, *kind.aliases):
                items.append(lsp.CompletionItem(
                    name, kind=lsp.CompletionItemKind.Class, detail=kind.signature,
                    documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, layer_doc(kind)),
                    sort_text=f"3{name}"))
    else:
        items += [lsp.CompletionItem(b.name, kind=lsp.CompletionItemKind.Function,
                                     detail=b.signature, documentation=b.doc,
                                     sort_text=f"3{b.name}") for b in BUILTINS.values()]
        items += [lsp.CompletionItem(c, kind=lsp.CompletionItemKind.Constant,
                                     sort_text=f"4{c}")
                  for c in [*CONSTANTS, "true", "false", "none"]]
    return items


def _file_items(path: Path | None, typed: str) -> list[lsp.CompletionItem]:
    folder = (path.parent if path is not None else Path.cwd()) / Path(typed).parent
    try:
        names = sorted(p.name for p in folder.iterdir()
                       if p.suffix == ".arch" and (path is None or p.name != path.name))
    except OSError:
        return []
    return [lsp.CompletionItem(name, kind=lsp.CompletionItemKind.File) for name in names]


def _signature(name: str, analysis) -> tuple[str, list[str], str] | None:
    from ..elaborate.expressions import BUILTINS
    from ..layers import registry

    namespace = analysis.unit.namespace if analysis is not None else {}
    if name in namespace:
        definition = namespace[name][0]
        if hasattr(definition, "params"):
            label = signature_of(definition).split(" ", 1)[1]
            return label, [p.name for p in definition.params], definition_doc(definition)
    kind = registry.lookup(name)
    if kind is not None:
        params = [p.name for p in kind.params] + (["act"] if kind.accepts_act else [])
        return kind.signature, params, kind.doc
    if name in BUILTINS:
        b = BUILTINS[name]
        params = re.findall(r"([A-Za-z_]\w*)(?:=[^,)]*)?(?=[,)])", b.signature.split("(", 1)[1])
        return b.signature, params, b.doc
    return None


# ---- positions -----------------------------------------------------------------------------

def _position(text: str, line: int, col: int) -> lsp.Position:
    """archdsl's 1-based (line, column in characters) as LSP's 0-based UTF-16 position."""
    lines = split_lines(text)
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    beyond = max(0, col - 1 - len(current))  # an error at the end of a line points past it
    return lsp.Position(line - 1, utf16_length(current[:col - 1]) + beyond)


def _from_position(text: str, position: lsp.Position) -> tuple[int, int]:
    lines = split_lines(text)
    current = lines[position.line] if position.line < len(lines) else ""
    units = 0
    for i, ch in enumerate(current):
        if units >= position.character:
            return position.line + 1, i + 1
        units += 2 if ord(ch) > 0xFFFF else 1
    return position.line + 1, len(current) + 1


def _range(span) -> lsp.Range:
    text = span.source.text
    return lsp.Range(_position(text, span.line, span.col),
                     _position(text, span.end_line, span.end_col))


def _range_of(r) -> lsp.Range:
    """A Range of the index (columns in characters; ASCII names: the same in UTF-16)."""
    return lsp.Range(lsp.Position(r[0] - 1, r[1] - 1), lsp.Position(r[2] - 1, r[3] - 1))


def _too_large(text: str) -> bool:
    """A buffer over the size limit of a spec file: checked with E0507, like a file on disk,
    and given no work beyond that (no highlighting, no formatting)."""
    return len(text) > MAX_FILE_BYTES or len(text.encode()) > MAX_FILE_BYTES


def _path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path


# ---- symbols and renames -------------------------------------------------------------------

_SYMBOL_KINDS = {"network": lsp.SymbolKind.Class, "block": lsp.SymbolKind.Function,
                 "def": lsp.SymbolKind.Function, "label": lsp.SymbolKind.Field,
                 "use": lsp.SymbolKind.Module, "recipe": lsp.SymbolKind.Property}


def _document_symbol(s) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(s.name, _SYMBOL_KINDS[s.kind], _range_of(s.range),
                              _range_of(s.name_range), detail=s.detail or None,
                              children=[_document_symbol(c) for c in s.children] or None)


def _fuzzy(query: str, name: str) -> bool:
    """Whether the query's letters appear in the name in order (`r50` finds `resnet50`)."""
    it = iter(name)
    return all(ch in it for ch in query)


def _file_id(unit) -> str:
    return str(unit.file.key)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _renamable(o: Occurrence) -> bool:
    return o.key is not None and o.key[0] in ("global", "local", "label")


# ---- wiring --------------------------------------------------------------------------------

def guarded(method, name: str | None = None):
    """A handler that answers nothing, and logs, rather than fail on archdsl's bug."""
    name = name or method.__name__

    @functools.wraps(method)
    def run(ls: ArchServer, params):
        try:
            return method(ls, params)
        except ValueError as error:  # a request that cannot be done (an invalid rename name)
            from pygls.exceptions import JsonRpcInvalidParams

            raise JsonRpcInvalidParams(str(error)) from None
        except Exception:
            ls.log(f"internal error in {name}:\n{traceback.format_exc()}")
            return None

    return run


def make_server() -> ArchServer:
    server = ArchServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(ls: ArchServer, params: lsp.DidOpenTextDocumentParams):
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(ls: ArchServer, params: lsp.DidChangeTextDocumentParams):
        uri = params.text_document.uri
        ls.model.set_text(_path(uri), ls.text(uri))
        ls.schedule(uri)

    @server.feature(lsp.INITIALIZED)
    @guarded
    def initialized(ls: ArchServer, params: lsp.InitializedParams):
        ls.watch_files()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @guarded
    def watched_files_changed(ls: ArchServer, params: lsp.DidChangeWatchedFilesParams):
        ls.files_changed([change.uri for change in params.changes])

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(ls: ArchServer, params: lsp.DidCloseTextDocumentParams):
        ls.forget(params.text_document.uri)

    # requests: (method, options, the answer from the server and the request's params)
    requests = [
        (lsp.TEXT_DOCUMENT_HOVER, None,
         lambda ls, p: ls.hover(p.text_document.uri, p.position)),
        (lsp.TEXT_DOCUMENT_DEFINITION, None,
         lambda ls, p: ls.definition_of(p.text_document.uri, p.position)),
        (lsp.TEXT_DOCUMENT_REFERENCES, None,
         lambda ls, p: ls.references(p.text_document.uri, p.position,
                                     p.context.include_declaration)),
        (lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL, None,
         lambda ls, p: ls.document_symbols(p.text_document.uri)),
        (lsp.WORKSPACE_SYMBOL, None, lambda ls, p: ls.workspace_symbols(p.query)),
        (lsp.TEXT_DOCUMENT_COMPLETION,
         lsp.CompletionOptions(trigger_characters=["(", ",", " "]),
         lambda ls, p: lsp.CompletionList(is_incomplete=False, items=ls.completions(
             p.text_document.uri, p.position))),
        (lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
         lsp.SignatureHelpOptions(trigger_characters=["(", ","]),
         lambda ls, p: ls.signature_help(p.text_document.uri, p.position)),
        (lsp.TEXT_DOCUMENT_INLAY_HINT, None,
         lambda ls, p: ls.inlay_hints(p.text_document.uri, p.range)),
        (lsp.TEXT_DOCUMENT_FORMATTING, None, lambda ls, p: ls.formatting(p.text_document.uri)),
        (lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
         lsp.SemanticTokensLegend(token_types=TYPES, token_modifiers=MODIFIERS),
         lambda ls, p: ls.semantic_tokens(p.text_document.uri)),
        (lsp.TEXT_DOCUMENT_PREPARE_RENAME, None,
         lambda ls, p: ls.prepare_rename(p.text_document.uri, p.position)),
        (lsp.TEXT_DOCUMENT_RENAME, None,
         lambda ls, p: ls.rename(p.text_document.uri, p.position, p.new_name)),
    ]
    for method, options, answer in requests:
        server.feature(method, options)(guarded(answer, method))
    return server


def serve() -> None:
    """Serve over stdin and stdout until the client exits.

    Elaborating a file makes hundreds of thousands of small objects, many in reference cycles
    (frames and the nodes in them). Python's cyclic collector, left to itself, would stop a
    check again and again to scan the server's whole heap — a fifth of a keystroke's time, and
    now and then a pause longer than the check. So it runs only when the server calls it: when
    the editor has been quiet for COLLECT_AFTER seconds (collect_later), or at once after a
    check once MAX_UNCOLLECTED objects have piled up (memory stays bounded while typing goes
    on)."""
    gc.disable()
    # pygls logs a traceback for every request answered with an error, a refused rename
    # included; archdsl's own errors are caught by `guarded` and logged to the client
    logging.getLogger("pygls.protocol").setLevel(logging.CRITICAL)
    make_server().start_io()
