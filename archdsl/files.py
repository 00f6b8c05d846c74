"""Where spec text comes from, and what archdsl agrees to read.

A spec is untrusted input (docs/security.md), and so is a checkpoint that carries one. Spec
text comes from one of two places:

- **the disk** (`DiskFiles`): the file a command or `archdsl.load` names, and the `.arch`
  files it `use`s. Every path is resolved (symbolic links followed) before anything is read;
  the real file must be named `*.arch`, be a regular file (not a FIFO, a device or a folder)
  and hold UTF-8 text within the size limit. A `use` must stay inside the folder of the spec
  that was loaded, or inside a folder the user allows (`--allow-use DIR`,
  `archdsl.load(..., allow_use=[...])`). A link named `x.arch` that leads to /etc/shadow or
  /proc/self/environ is refused without being read, and no message ever quotes a refused file.
- **a checkpoint or saved model** (`MemoryFiles`): the texts it carries, by name. They are
  never written anywhere. Names are validated (relative paths of `.arch` files, no `..`, no
  absolute paths, no backslashes), and `use` between them is resolved by name alone, inside
  the checkpoint.

Both give `SpecFile`s: what identifies a file (to load it once and find `use` cycles), how
messages show it, and its text.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .diagnostics import Diagnostic, SpecError, Span
from .limits import MAX_FILE_BYTES, MAX_FILES

SUFFIX = ".arch"


@dataclass(frozen=True)
class SpecFile:
    key: object  # a resolved Path on disk, a name inside a checkpoint, or "<string>"
    shown: str  # how messages and summaries show it


def refuse(message: str, span: Span | None = None, help: str | None = None) -> SpecError:
    return SpecError(Diagnostic("E0206", message, span, help=help))


def too_large(shown, span: Span | None = None) -> Diagnostic:
    """A spec file over the size limit; `span`: the `use` that brings it in."""
    return Diagnostic("E0507", f"{shown} is larger than {MAX_FILE_BYTES // 1024} KiB, the limit "
                      "for a spec file", span,
                      help="move definitions into files brought in with `use`")


# ---- the disk ------------------------------------------------------------------------------

class DiskFiles:
    """Spec files on disk. `allow_use`: folders besides the root spec's own that `use` may
    read from."""

    def __init__(self, allow_use=()):
        self.allowed = [Path(folder).resolve() for folder in allow_use]
        self.folders: list[Path] = []  # the root specs' folders: `use` stays inside them

    def root(self, path, shown: str | None = None) -> SpecFile:
        """The spec a command or the API names. Refused unless it is, after links, a .arch
        file."""
        path = Path(path)
        shown = shown or str(path)
        real = resolve(path, shown)
        self.folders.append(real.parent)
        return SpecFile(real, shown)

    def text_root(self) -> SpecFile:
        """Spec text given directly (`archdsl.load(text)`): its `use`s are relative to, and
        confined to, the current folder."""
        self.folders.append(Path.cwd().resolve())
        return SpecFile("<string>", "<string>")

    def use(self, using: SpecFile, name: str, span: Span) -> SpecFile:
        base = Path.cwd() if using.key == "<string>" else using.key.parent
        target = base / name
        if target.suffix != SUFFIX:
            raise refuse(f"`use` can only bring in .arch files, not `{name}`", span)
        real = resolve(target, f"`{name}`", span,
                       missing_help=f"looked for {display_path(target)}; `use` paths are "
                                    "relative to the file that uses them")
        folders = self.folders + self.allowed
        if not any(real.is_relative_to(folder) for folder in folders):
            raise refuse(f"`use \"{name}\"` reaches outside the spec's folder", span,
                         help=f"a spec may use the .arch files in {_folder_text(folders[0])}"
                              " and below; to allow another folder, pass --allow-use FOLDER "
                              "(or allow_use=[...] to archdsl.load)")
        return SpecFile(real, display_path(target))

    def read(self, file: SpecFile, span: Span | None = None) -> str:
        return read_regular_file(file.key, file.shown, span)


def resolve(path: Path, shown: str, span: Span | None = None,
            missing_help: str | None = None) -> Path:
    """The real path of a spec file, links followed; refused unless it names a .arch file."""
    if "\x00" in str(path):
        printed = _quoted(shown.replace("\x00", "\\0"))
        raise refuse(f"cannot read {printed}: a path cannot hold a NUL character", span)
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise refuse(f"cannot find {_quoted(shown)}", span, help=missing_help) from None
    except (OSError, RuntimeError, ValueError):  # a loop of links, a name too long
        raise refuse(f"cannot read {_quoted(shown)}: its path cannot be resolved", span) from None
    if real.suffix != SUFFIX:
        what = "a link to a file that is not" if path.is_symlink() or real.name != path.name \
            else "not"
        raise refuse(f"{_quoted(shown)} is {what} a .arch file", span,
                     help="archdsl reads only spec files named *.arch")
    return real


def _quoted(shown: str) -> str:
    return shown if shown.startswith("`") else f"`{shown}`"


def read_regular_file(path: Path, shown: str, span: Span | None = None) -> str:
    """The UTF-8 text of a regular file of at most MAX_FILE_BYTES. Opened without blocking
    and without following a link, then checked on the open descriptor, so a FIFO, a device or
    a link swapped in after `resolve` is refused rather than read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise refuse(f"cannot find {_quoted(shown)}", span) from None
    except IsADirectoryError:
        raise refuse(f"{_quoted(shown)} is a folder, not a spec file", span) from None
    except OSError as error:
        raise refuse(f"cannot read {_quoted(shown)}: {error.strerror}", span) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise refuse(f"{_quoted(shown)} is a folder, not a spec file", span)
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"{_quoted(shown)} is not a regular file", span,
                         help="archdsl reads specs only from regular files (not FIFOs, "
                              "devices or sockets)")
        if info.st_size > MAX_FILE_BYTES:  # refused before reading: it could be any size
            raise SpecError(too_large(shown, span))
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except BlockingIOError:
        raise refuse(f"{_quoted(shown)} is not a regular file", span) from None
    except OSError as error:
        raise refuse(f"cannot read {_quoted(shown)}: {error.strerror}", span) from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:  # the file grew, or lied about its size
        raise SpecError(too_large(shown, span))
    return decode(b"".join(chunks), shown, span)


def decode(data: bytes, shown: str, span: Span | None = None) -> str:
    """Spec text from bytes: UTF-8, with newlines normalised as Python's text files do."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(f"{_quoted(shown)} is not UTF-8 text", span) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def spec_files_under(folder: Path) -> list[Path]:
    """The *.arch files in a folder and its subfolders, sorted. Linked folders are not
    entered (no loops, no escaping the folder); linked files are listed and resolved when
    read."""
    found = []
    for parent, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        found += [Path(parent, n) for n in names if n.endswith(SUFFIX)]
    return sorted(found)


def _folder_text(folder: Path) -> str:
    shown = display_path(folder)
    return "the current folder" if shown == "." else f"its folder ({shown})"


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):
        return str(path)


# ---- texts carried by a checkpoint ---------------------------------------------------------

# One part of a name: letters, digits and `_ - . +` (as the zoo and users name files), not `.`
# or `..`; parts are joined by `/`.
_PART = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_+.\- ]{0,127}")
MAX_NAME = 1024


def check_name(name) -> str | None:
    """Why `name` cannot name a spec file inside a checkpoint, or None when it can."""
    if not isinstance(name, str) or not name:
        return "a name must be a non-empty string"
    if len(name) > MAX_NAME:
        return "the name is too long"
    if name.startswith("/") or "\\" in name or ":" in name:
        return "absolute paths, backslashes and drive letters are not allowed"
    parts = name.split("/")
    if any(p in ("", ".", "..") or not _PART.fullmatch(p) for p in parts):
        return "each part of the name must be a plain file or folder name (no `..`)"
    if not name.endswith(SUFFIX):
        return "only .arch files can be carried"
    return None


class MemoryFiles:
    """The spec texts a checkpoint or saved model carries, by name: read from memory only."""

    def __init__(self, files, where: str = "the checkpoint"):
        self.where = where
        if not isinstance(files, dict) or not files:
            raise refuse(f"{where} carries no spec files")
        if len(files) > MAX_FILES:
            raise refuse(f"{where} carries more than {MAX_FILES} spec files")
        for name, text in files.items():
            problem = check_name(name)
            if problem is not None:
                raise refuse(f"{where} carries a spec file with an unsafe name "
                             f"{_shown_name(name)}: {problem}",
                             help="the checkpoint was not written by archdsl, or was altered")
            if not isinstance(text, str):
                raise refuse(f"{where}'s spec file `{name}` is not text")
        self.files = dict(files)

    def root(self, name, shown: str | None = None) -> SpecFile:
        name = str(name)
        if name not in self.files:
            raise refuse(f"{self.where} does not carry its spec file {_shown_name(name)}")
        return SpecFile(name, name)

    def use(self, using: SpecFile, name: str, span: Span) -> SpecFile:
        if not name.endswith(SUFFIX):
            raise refuse(f"`use` can only bring in .arch files, not `{name}`", span)
        target = posixpath.normpath(posixpath.join(posixpath.dirname(using.key), name))
        if target not in self.files:
            raise refuse(f"cannot find `{name}` among the spec files {self.where} carries",
                         span)
        return SpecFile(target, target)

    def read(self, file: SpecFile, span: Span | None = None) -> str:
        text = self.files[file.key]
        if len(text.encode()) > MAX_FILE_BYTES:
            raise SpecError(too_large(file.shown, span))
        return text


def _shown_name(name) -> str:
    """A name from an untrusted file, shown briefly (control characters are escaped when
    messages are printed)."""
    text = name if isinstance(name, str) else repr(name)
    return f"`{text[:80]}{'...' if len(text) > 80 else ''}`"


# ---- what archdsl writes ----------------------------------------------------------------------

class OutputError(Exception):
    """An output a command cannot write; the message reads `cannot write PATH: reason`."""


def check_output_folder(path: Path) -> None:
    """OutputError unless the folder an output goes into exists."""
    if not path.parent.is_dir():
        reason = "is not a folder" if path.parent.exists() else "does not exist"
        raise OutputError(f"cannot write {path}: the folder {path.parent} {reason}")


def write_output(path, data) -> Path:
    """Write one output file (a diagram, exported source, a model, a plot, a formatted spec),
    the one way every command writes: into a temporary file beside it (same extension, for
    writers that choose a format from it), flushed, then renamed over it — so a failure never
    leaves half a file, and an earlier file of that name survives one. The folder must exist:
    a mistyped folder is an error, not silently created. `data` is bytes, or a function that
    writes the temporary path it is given (matplotlib, torch.save). Raises OutputError."""
    path = Path(path)
    parent = path.parent
    check_output_folder(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    tmp = parent / f".{path.stem}.{os.getpid()}.tmp{path.suffix}"
    try:
        if callable(data):
            data(tmp)
        else:
            with open(tmp, "wb") as f:
                f.write(data)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        kept = "; the earlier file is kept" if path.is_file() else ""
        raise OutputError(f"cannot write {path}: {error.strerror or error}{kept}") from None
    return path
