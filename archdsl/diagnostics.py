"""Diagnostics as data: what went wrong, where, and how to fix it.

Every mistake in a spec becomes a `Diagnostic` (a stable code, a message, the span it points at,
notes and a help line). Diagnostics are collected, never printed where they are found, and
rendered at the edge of the program, as text in the style of rustc and Elm:

    error[E0201]: unknown layer or block `rleu`
      --> specs/net.arch:12:17
       |
    12 |     conv(64, 3) rleu
       |                 ^^^^
       = note: in block `basic`, called at specs/net.arch:30:5
    help: did you mean `relu`?

or as JSON objects for editors. Messages are lowercase, without a trailing period, with names
in backticks; only `help:` proposes a fix.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field


def split_lines(text: str) -> list[str]:
    """The lines of a spec as the lexer counts them: ended by \\n (or \\r\\n) only. Python's
    splitlines also ends a line at \\x0b, \\x0c, \\x1c-\\x1e, \\x85, \\u2028 and \\u2029, which
    would put every excerpt after one of them on the wrong line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@dataclass(frozen=True, eq=False, repr=False)
class Source:
    """A spec's text and the path it is shown under."""

    path: str
    text: str

    def __repr__(self) -> str:
        return f"Source({self.path!r})"

    @functools.cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)  # once: spans of a large file ask for lines often

    def line(self, number: int) -> str:
        lines = self.lines
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Span:
    """A region of a source: 1-based line and column, `end_col` exclusive."""

    source: Source
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.source.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Note:
    message: str
    span: Span | None = None


@dataclass
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    notes: list[Note] = field(default_factory=list)
    help: str | None = None
    severity: str = "error"

    def key(self) -> tuple:
        """Identity of the root cause: the same mistake reached twice is reported once."""
        where = (self.span.source.path, self.span.line, self.span.col) if self.span else None
        return (self.code, self.message, where)

    def render(self) -> str:
        return render_text(self)

    def to_json(self) -> dict:
        return render_json(self)


class SpecError(Exception):
    """Raised to abandon the current piece of work; the diagnostics explain why."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.message for d in diagnostics))


class Diagnostics:
    """An ordered, de-duplicated collection of diagnostics.

    The same root cause reached many times (an error inside a block called 16 times) is kept
    once, with a note counting the repeats.
    """

    def __init__(self) -> None:
        self._items: dict[tuple, Diagnostic] = {}
        self._repeats: dict[tuple, int] = {}
        self._recorders: list[list[tuple[Diagnostic, int]]] = []

    def add(self, diagnostic: Diagnostic, times: int = 1) -> None:
        """Report `diagnostic` (`times` times: once, and then as repeats)."""
        key = diagnostic.key()
        if key in self._items:
            self._repeats[key] += times
        else:
            self._items[key] = diagnostic
            self._repeats[key] = times - 1
        for recorder in self._recorders:
            recorder.append((diagnostic, times))

    def recording(self) -> "_Recording":
        """`with diagnostics.recording() as added:` — `added` lists what is reported inside,
        as (diagnostic, times) pairs."""
        return _Recording(self)

    def extend(self, diagnostics) -> None:
        for d in diagnostics:
            self.add(d)

    def counted(self) -> list[tuple[Diagnostic, int]]:
        """Each diagnostic with the number of times it was reported, to be added to another
        collection later (`add(d, times)`) as if it had been reported there."""
        return [(d, self._repeats[key] + 1) for key, d in self._items.items()]

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self):
        for key, d in self._items.items():
            repeats = self._repeats[key]
            if repeats:
                times = "time" if repeats == 1 else "times"
                d = Diagnostic(d.code, d.message, d.span,
                               d.notes + [Note(f"the same error occurs {repeats} more {times} "
                                               "(in other calls or repeats)")],
                               d.help, d.severity)
            yield d


class _Recording:
    def __init__(self, diagnostics: Diagnostics):
        self.diagnostics = diagnostics
        self.added: list[tuple[Diagnostic, int]] = []

    def __enter__(self) -> list[tuple[Diagnostic, int]]:
        self.diagnostics._recorders.append(self.added)
        return self.added

    def __exit__(self, *exc):
        popped = self.diagnostics._recorders.pop()  # recordings nest: the innermost ends first
        assert popped is self.added
        return False


# ---- suggestions ---------------------------------------------------------------------------

def did_you_mean(name: str, candidates) -> str | None:
    """Elm-style suggestion: the closest known name, if one is close enough."""
    candidates = sorted(set(candidates))
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f"did you mean `{lowered[name.lower()]}`?"
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.7)
    if not close:
        close = [c for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.7)]
        close = [lowered[c] for c in close]
    if not close:
        return None
    if len(close) == 1:
        return f"did you mean `{close[0]}`?"
    return "did you mean " + ", ".join(f"`{c}`" for c in close[:-1]) + f" or `{close[-1]}`?"


# ---- rendering -----------------------------------------------------------------------------

def _excerpt(span: Span) -> list[str]:
    line_text = span.source.line(span.line).replace("\t", " ")
    number = str(span.line)
    gutter = " " * len(number)
    start = max(span.col, 1)
    if span.end_line == span.line and span.end_col > span.col:
        width = span.end_col - span.col
    else:
        width = max(len(line_text.rstrip()) - start + 1, 1)
    caret = " " * (start - 1) + "^" * width
    return [f"{gutter} |", f"{number} | {line_text}", f"{gutter} | {caret.rstrip()}"]


# Control characters from a spec (ESC sequences, carriage returns) are shown escaped, so a
# hostile spec cannot rewrite the user's terminal through an error message.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0)]}


_CONTROL_CHARACTER = re.compile("[" + "".join(map(chr, _CONTROL)) + "]")


def printable(text: str) -> str:
    """Text from a spec or a file made safe to print: control characters shown escaped
    (newlines and tabs kept). Fast when there are none (a summary of 100,000 layers)."""
    if _CONTROL_CHARACTER.search(text) is None:
        return text
    return text.translate(_CONTROL)


def render_text(d: Diagnostic) -> str:
    return printable(_render_text(d))


def _render_text(d: Diagnostic) -> str:
    out = [f"{d.severity}[{d.code}]: {d.message}"]
    if d.span is not None:
        gutter = " " * len(str(d.span.line))
        out.append(f"{gutter}--> {d.span}")
        out.extend(_excerpt(d.span))
        pad = gutter
    else:
        pad = ""
    for note in d.notes:
        where = f" ({note.span})" if note.span is not None else ""
        out.append(f"{pad} = note: {note.message}{where}")
    if d.help:
        out.append(f"help: {d.help}")
    return "\n".join(out)


def _span_json(span: Span | None) -> dict | None:
    if span is None:
        return None
    return {"file": span.source.path, "line": span.line, "column": span.col,
            "end_line": span.end_line, "end_column": span.end_col}


def render_json(d: Diagnostic) -> dict:
    where = _span_json(d.span) or {}
    return {
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "file": where.get("file"),
        "line": where.get("line"),
        "column": where.get("column"),
        "end": {"line": where.get("end_line"), "column": where.get("end_column")} if where else None,
        "notes": [{"message": n.message, "span": _span_json(n.span)} for n in d.notes],
        "help": d.help,
    }
