"""Loading specs: a root file, the files it `use`s, and the names each file can see.

A file's namespace holds its own definitions and those of the files it uses (and what they
use, transitively). `use` paths are relative to the using file and must name `.arch` files:
a spec can read nothing else.
"""

from __future__ import annotations

from pathlib import Path

from ..diagnostics import Diagnostic, Diagnostics, Note, SpecError
from ..limits import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES
from ..syntax import ast
from ..syntax.parser import parse
from .values import BlockValue, FunctionValue, NetworkValue



class FileUnit:
    """One loaded file and the names visible in it."""

    def __init__(self, path: str, module: ast.Module):
        self.path = path
        self.module = module
        # name -> (definition, the unit that defines it)
        self.namespace: dict[str, tuple[ast.Definition, FileUnit]] = {}

    def value(self, name: str):
        definition, unit = self.namespace[name]
        if isinstance(definition, ast.Block):
            return BlockValue(definition, unit)
        if isinstance(definition, ast.Def):
            return FunctionValue(definition, unit)
        return NetworkValue(definition, unit)

    def networks(self) -> list[ast.Network | ast.Variant]:
        """The networks defined in this file itself, in order."""
        return [d for d in self.module.definitions if isinstance(d, (ast.Network, ast.Variant))]


class Program:
    """Every file loaded so far, by resolved path, and the diagnostics found loading them."""

    def __init__(self) -> None:
        self.units: dict[Path, FileUnit] = {}
        self.diagnostics = Diagnostics()
        self._loading: list[Path] = []
        self.total_bytes = 0

    def load_file(self, path: str | Path, shown_as: str | None = None) -> FileUnit | None:
        path = Path(path)
        key = path.resolve()
        if key in self.units:
            return self.units[key]
        text = read_spec_text(path)
        return self._load(key, text, shown_as or str(path))

    def load_text(self, text: str, path: str = "<string>") -> FileUnit | None:
        key = Path(path).resolve() if path != "<string>" else Path("<string>")
        return self._load(key, text, path)

    def _load(self, key: Path, text: str, shown_as: str) -> FileUnit | None:
        size = len(text.encode())
        self.total_bytes += size
        if size > MAX_FILE_BYTES:
            self.diagnostics.add(_too_large(shown_as))
            return None
        if self.total_bytes > MAX_TOTAL_BYTES or len(self.units) >= MAX_FILES:
            self.diagnostics.add(Diagnostic(
                "E0507", f"{shown_as}: a spec and the files it uses may hold at most "
                f"{MAX_TOTAL_BYTES // 1024} KiB in {MAX_FILES} files",
                help="split the work into separate specs"))
            return None
        try:
            module = parse(text, shown_as)
        except SpecError as error:
            self.diagnostics.extend(error.diagnostics)
            return None
        unit = FileUnit(shown_as, module)
        self.units[key] = unit
        self._loading.append(key)
        try:
            self._define(unit, key)
        finally:
            self._loading.pop()
        return unit

    def _define(self, unit: FileUnit, key: Path) -> None:
        own: dict[str, ast.Definition] = {}
        for d in unit.module.definitions:
            if isinstance(d, ast.Use):
                continue
            if d.name in own:
                first = own[d.name]
                self.diagnostics.add(Diagnostic(
                    "E0204", f"`{d.name}` is defined twice", d.name_span,
                    [Note("first defined here", first.name_span)],
                    help="rename one of them"))
                continue
            own[d.name] = d
            unit.namespace[d.name] = (d, unit)
        for d in unit.module.definitions:
            if isinstance(d, ast.Use):
                self._use(unit, key, d)

    def _use(self, unit: FileUnit, key: Path, use: ast.Use) -> None:
        target = (key.parent / use.name) if key.name != "<string>" else Path(use.name)
        if target.suffix != ".arch":
            self.diagnostics.add(Diagnostic(
                "E0206", f"`use` can only bring in .arch files, not `{use.name}`", use.name_span))
            return
        resolved = target.resolve()
        if resolved in self._loading:
            cycle = " → ".join(p.name for p in self._loading[self._loading.index(resolved):])
            self.diagnostics.add(Diagnostic(
                "E0207", f"`use` cycle: {cycle} → {resolved.name}", use.span,
                help="move the shared definitions into a file that both can use"))
            return
        if not target.is_file():
            self.diagnostics.add(Diagnostic(
                "E0206", f"cannot find `{use.name}`", use.name_span,
                help=f"looked for {_display_path(target)}; `use` paths are relative to the file "
                     "that uses them"))
            return
        try:
            used = self.load_file(target, shown_as=_display_path(target))
        except SpecError as error:
            self.diagnostics.extend(error.diagnostics)
            return
        if used is None:
            return
        for name, entry in used.namespace.items():
            present = unit.namespace.get(name)
            if present is None:
                unit.namespace[name] = entry
            elif present[0] is not entry[0]:
                self.diagnostics.add(Diagnostic(
                    "E0204", f"`{name}` is defined here and in `{use.name}`",
                    present[0].name_span if present[1] is unit else use.span,
                    [Note(f"the definition in {used.path}", entry[0].name_span)],
                    help="rename one of them"))


def read_spec_text(path: Path) -> str:
    """Read a spec file, refusing what is not a readable text file of sensible size."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # refused before reading: it could be any size
            raise SpecError(_too_large(path))
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(Diagnostic("E0206", f"cannot find `{path}`")) from None
    except IsADirectoryError:
        raise SpecError(Diagnostic("E0206", f"`{path}` is a folder, not a spec file")) from None
    except UnicodeDecodeError:
        raise SpecError(Diagnostic("E0206", f"`{path}` is not UTF-8 text")) from None
    except OSError as error:
        raise SpecError(Diagnostic("E0206", f"cannot read `{path}`: {error.strerror}")) from None


def _too_large(path) -> Diagnostic:
    return Diagnostic("E0507", f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB, the limit "
                      "for a spec file", help="move definitions into files brought in with `use`")


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
