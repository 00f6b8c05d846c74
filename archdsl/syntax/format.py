"""`archdsl fmt`: one canonical layout for specs, comments kept.

What is canonical: indentation (4 spaces per level; comment lines take the level of the code
around them), at most one blank line in a row and one before each definition that follows a
body, no trailing whitespace, a final newline, and every gap between tokens that is 0 or 1
space wide: `f(a, b)`, `conv(64, 3, stride=2)`, `a + b`, `-x`, `in.c`, `[1, 2]`, `x: y`, a
comment two spaces after code. What is kept: runs of two or more spaces between tokens —
they align the papers' tables (`conv3-64 conv3-64      maxpool`) and columns of comments —
and the indentation of lines continued inside brackets.

The output is checked before it is returned: it must parse to the same syntax tree as the
input, or formatting stops with an internal error (nothing is written).
"""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass

from ..diagnostics import Source, split_lines
from . import ast
from .parser import parse

_PIECE = r"(?:\d+|\{[^{}\n]*\})"
TOKEN = re.compile(r"""
    (?P<comment>\#.*)
  | (?P<string>"[^"\n]*")
  | (?P<table>(?:conv\d+(?:x\d+)?|FC|fc)-(?:\w+|\{[^{}\n]*\})|soft-max)(?![\w-])
  | (?P<dims>""" + _PIECE + r"""(?:[x×]""" + _PIECE + r""")+)
  | (?P<template>[A-Za-z_]\w*(?:\{[^{}\n]*\}\w*)+)
  | (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<op>\*\*|//|==|!=|<=|>=|[-+*/%<>=.,:()\[\]{}×\\])
""", re.VERBOSE)

KEYWORDS = {"if", "elif", "else", "and", "or", "not", "in", "x", "when", "let", "as", "repeat", "of",
            "with", "use", "def", "block", "network", "input", "output", "branch", "add",
            "concat", "mul", "return", "frozen", "recipe", "from"}
LITERALS = {"true", "false", "none"}
RESERVED = KEYWORDS | LITERALS  # no definition, parameter or label can take these names
BINARY = {"**", "//", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%"}
OPENERS, CLOSERS = "([{", ")]}"


def tokens(line: str) -> list[tuple[str, str, int]]:
    """(kind, text, spaces before it) for each token of a line."""
    out, pos = [], 0
    while pos < len(line):
        start = pos
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos == len(line):
            break
        match = TOKEN.match(line, pos)
        if match is None:  # a character the language has no token for: leave the rest as is
            out.append(("raw", line[pos:], pos - start))
            break
        out.append((match.lastgroup, match.group(), pos - start))
        pos = match.end()
    return out


def _gap(prev, token, depth: int) -> int:
    """Spaces between two tokens of a line. Alignment runs (2 or more) are kept where a
    space belongs at all."""
    pkind, ptext, _ = prev
    kind, text, original = token
    keep = original if original >= 2 else None
    if kind == "comment":
        return max(original, 2)
    if ptext in OPENERS or text in CLOSERS or text in (",", ".") or ptext == ".":
        return 0
    if text == ":":
        return 0
    if ptext in (",", ":"):
        return keep or 1
    if text == "=" or ptext == "=":  # keyword arguments vs `def f(x) = ...`, `let a = ...`
        return 0 if depth > 0 else (keep or 1)
    if pkind == "name" and ptext in KEYWORDS:
        return 1  # `block conv_bn`, `let c = ...`, `relu x (2)`
    if text in OPENERS and original == 0 and (pkind in ("name", "table") or ptext in CLOSERS):
        return 0  # a call or an index: f(x), xs[0]
    return keep or 1


def format_line(body: str, depth: int) -> tuple[str, int]:
    """A line's tokens (indentation excluded) respaced; returns it and the bracket depth
    after it."""
    toks = tokens(body)
    out = []
    before = None
    unary_flags = []  # which `-` and `+` are signs rather than operators
    for tok in toks:
        kind, text, _ = tok
        if kind == "comment":
            text = _comment(text)
        if before is None:
            out.append(text)
        else:
            # a recipe's options are keyword arguments outside brackets: `lr=0.003`
            gap = _gap(before, tok, depth + (toks[0][1] == "recipe"))
            if before[1] in ("-", "+") and unary_flags[-1]:
                gap = 0
            out.append(" " * gap + text)
        prev_text = before[1] if before else None
        prev_kind = before[0] if before else None
        is_unary = text in ("-", "+") and (
            prev_text is None or prev_text in OPENERS or prev_text in (",", "=", ":")
            or prev_text in BINARY or (prev_kind == "name" and prev_text in KEYWORDS))
        unary_flags.append(is_unary)
        if kind == "op" and text in OPENERS:
            depth += 1
        elif kind == "op" and text in CLOSERS:
            depth = max(depth - 1, 0)
        before = tok
    return "".join(out).rstrip(), depth


def format_text(text: str, path: str = "<string>") -> str:
    """The canonical layout of a spec. Raises SpecError if it does not parse."""
    original = parse(text, path)
    lines = split_lines(text.expandtabs(8))
    widths = [0]
    depth = 0
    out: list[str] = []
    pending_comments: list[tuple[int, str]] = []
    in_body = False  # whether the last statement written was indented (the end of a body)
    for raw in lines:
        stripped = raw.strip()
        if depth > 0:  # continued inside brackets: keep its indentation
            body, depth = format_line(stripped, depth)
            indent = len(raw) - len(raw.lstrip())
            out.append(" " * indent + body if body else "")
            continue
        if not stripped:
            _flush(out, pending_comments, widths, len(widths) - 1)
            out.append("")
            continue
        width = len(raw) - len(raw.lstrip())
        if stripped.startswith("#"):
            pending_comments.append((width, stripped))
            continue
        if width > widths[-1]:
            widths.append(width)
        while width < widths[-1]:
            widths.pop()
        level = len(widths) - 1
        _flush(out, pending_comments, widths, level)
        body, depth = format_line(stripped, 0)
        if level == 0 and in_body:
            _blank_before(out)  # what follows a body starts after one blank line
        in_body = level > 0  # lines continued inside brackets (above) leave it as it is
        out.append("    " * level + body)
    _flush(out, pending_comments, widths, 0)
    result = "\n".join(_squeeze_blank(out)).strip("\n") + "\n"
    _check_same(original, parse(result, path))
    return result


def _flush(out: list[str], comments: list, widths: list[int], level: int) -> None:
    """Write comment lines at the level their indentation names, else at `level` (the level
    of the code that follows them)."""
    for width, comment in comments:
        clevel = widths.index(width) if width in widths else level
        out.append("    " * clevel + _comment(comment))
    comments.clear()


def _comment(comment: str) -> str:
    """`#comment` becomes `# comment`; `#!`, `##` and `#:` stay as written."""
    if len(comment) > 1 and comment[1] not in " #!:":
        return "# " + comment[1:]
    return comment


def _blank_before(out: list[str]) -> None:
    # a definition after a body gets one blank line (before the comments that head it)
    i = len(out)
    while i > 0 and out[i - 1].startswith("#"):
        i -= 1
    if i > 0 and out[i - 1].strip():
        out.insert(i, "")


def _squeeze_blank(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if not line.strip() and out and not out[-1].strip():
            continue
        out.append(line)
    return out


class FormatError(Exception):
    """The formatter would change what a spec means: a bug in archdsl."""


def _check_same(a: ast.Module, b: ast.Module) -> None:
    if _shape(a.definitions) != _shape(b.definitions):
        raise FormatError("formatting would change the meaning of the spec; the file was left "
                          "alone (this is a bug in archdsl fmt)")


def _shape(node):
    """A syntax tree without its source positions, for comparison."""
    if isinstance(node, list):
        return [_shape(n) for n in node]
    if isinstance(node, tuple):
        return tuple(_shape(n) for n in node)
    if is_dataclass(node):
        return (type(node).__name__,) + tuple(
            _shape(getattr(node, f.name)) for f in fields(node)
            if f.name != "span" and not f.name.endswith("_span"))
    if isinstance(node, Source):
        return None
    return node
