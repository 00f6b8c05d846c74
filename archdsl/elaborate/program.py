"""Loading specs: a root file, the files it `use`s, and the names each file can see.

A file's namespace holds its own definitions and those of the files it uses (and what they
use, transitively). `use` paths are relative to the using file and must name `.arch` files
inside the spec's folder: a spec can read nothing else (files.py decides what is read).
"""

from __future__ import annotations

from pathlib import Path

from ..diagnostics import Diagnostic, Diagnostics, Note, SpecError
from ..files import DiskFiles, MemoryFiles, SpecFile, display_path, too_large
from ..limits import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES
from ..syntax import ast
from ..syntax.parser import parse
from .values import BlockValue, FunctionValue, NetworkValue



class FileUnit:
    """One loaded file and the names visible in it."""

    def __init__(self, path: str, module: ast.Module, file: SpecFile | None = None):
        self.path = path
        self.module = module
        self.file = file if file is not None else SpecFile(path, path)
        # name -> (definition, the unit that defines it)
        self.namespace: dict[str, tuple[ast.Definition, FileUnit]] = {}
        # variant name -> how it resolves (elaborator.resolve_network remembers it here)
        self.resolved: dict[str, object] = {}
        # network name -> its `recipe` line (not a name of the namespace: it shares the
        # network's)
        self.recipes: dict[str, ast.Recipe] = {}

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
    """Every file loaded so far, by identity, and the diagnostics found loading them. `files`
    says where texts come from and what may be read (files.py): the disk by default, or the
    texts a checkpoint carries."""

    def __init__(self, files: DiskFiles | MemoryFiles | None = None) -> None:
        self.files = files if files is not None else DiskFiles()
        self.units: dict[object, FileUnit] = {}
        self.diagnostics = Diagnostics()
        self._loading: list[object] = []
        self.total_bytes = 0
        self.edited: str | None = None  # load_edited: how the edited file is shown

    def load_file(self, path, shown_as: str | None = None) -> FileUnit | None:
        """The root spec (a path on disk, or a name inside a checkpoint). Raises SpecError
        when it cannot be read."""
        file = self.files.root(path, shown_as)
        if file.key in self.units:
            return self.units[file.key]
        return self._load(file, self.files.read(file))

    def load_text(self, text: str) -> FileUnit | None:
        """Spec text given directly (not from a file): shown as `<string>`."""
        return self._load(self.files.text_root(), text)

    def load_edited(self, path, text: str) -> FileUnit | None:
        """A file open in an editor (the language server): `text` is the editor's, saved or
        not; its `use`s are read as the file's own would be. A path that is not a .arch file
        on disk (a new buffer) is loaded as spec text, its `use`s confined to the current
        folder."""
        file = None
        if path is not None:
            try:
                file = self.files.root(path, display_path(Path(path)))
            except SpecError:
                pass
        file = file or self.files.text_root()
        self.edited = file.shown  # how its diagnostics name it, also when it does not parse
        return self._load(file, text)

    def _load(self, file: SpecFile, text: str, used_at=None) -> FileUnit | None:
        """Parse and define one file; `used_at`: the `use` that brings it in, where its
        problems are reported when they have no place of their own in it."""
        size = len(text.encode())
        self.total_bytes += size
        if size > MAX_FILE_BYTES:
            self.diagnostics.add(too_large(file.shown, used_at))
            return None
        if self.total_bytes > MAX_TOTAL_BYTES or len(self.units) >= MAX_FILES:
            self.diagnostics.add(Diagnostic(
                "E0507", f"{file.shown}: a spec and the files it uses may hold at most "
                f"{MAX_TOTAL_BYTES // 1024} KiB in {MAX_FILES} files", used_at,
                help="split the work into separate specs"))
            return None
        try:
            module = parse(text, file.shown)
        except SpecError as error:
            self.diagnostics.extend(error.diagnostics)
            return None
        unit = FileUnit(file.shown, module, file)
        self.units[file.key] = unit
        self._loading.append(file.key)
        try:
            self._define(unit)
        finally:
            self._loading.pop()
        return unit

    def _define(self, unit: FileUnit) -> None:
        own: dict[str, ast.Definition] = {}
        for d in unit.module.definitions:
            if isinstance(d, ast.Use):
                continue
            if isinstance(d, ast.Recipe):
                if d.name in unit.recipes:
                    self.diagnostics.add(Diagnostic(
                        "E0204", f"network `{d.name}` has two recipes", d.name_span,
                        [Note("the first is here", unit.recipes[d.name].name_span)],
                        help="join them into one line"))
                unit.recipes.setdefault(d.name, d)
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
                self._use(unit, d)

    def _use(self, unit: FileUnit, use: ast.Use) -> None:
        try:
            file = self.files.use(unit.file, use.name, use.name_span)
            if file.key in self._loading:
                cycle = " → ".join(self.units[k].path.rsplit("/", 1)[-1]
                                   for k in self._loading[self._loading.index(file.key):])
                raise SpecError(Diagnostic(
                    "E0207", f"`use` cycle: {cycle} → {file.shown.rsplit('/', 1)[-1]}",
                    use.span, help="move the shared definitions into a file that both can use"))
            used = self.units.get(file.key)
            if used is None:
                used = self._load(file, self.files.read(file, use.name_span), use.name_span)
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
    """The text of one spec file named on the command line (for `archdsl fmt`), read as
    every spec is: links resolved, a regular .arch file, UTF-8, within the size limit."""
    files = DiskFiles()
    return files.read(files.root(path))
