"""What the text around the cursor asks for, read from the text itself.

Completion and signature help are asked for while a line is being typed, when the file does
not parse (`conv(64, ` has no closing bracket yet). So they read the characters before the
cursor — the innermost open call, the argument being written, a `from` waiting for a label —
and take the names that can go there from the last version of the file that did parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..diagnostics import split_lines
from ..syntax.parser import without_comment

MAX_LINES_BACK = 30  # a call continued over more lines than this is not looked for
_WORD = re.compile(r"[A-Za-z_]\w*$")
_NAMED = re.compile(r"^\s*([A-Za-z_]\w*)\s*=(?!=)")


@dataclass
class CallContext:
    """The call the cursor is inside: `conv(64, 3, str|`."""

    name: str  # the layer, block or function called
    argument: int  # which argument the cursor is in, from 0 (positional arguments counted)
    named: str | None  # the argument's name, when it is written `name=...`
    typing_name: bool  # the cursor is still in the argument's first word (no `=` yet)
    given: set[str] = field(default_factory=set)  # names given by earlier arguments


@dataclass
class Context:
    """What may be typed at the cursor."""

    prefix: str  # the word being typed
    call: CallContext | None
    after_from: bool  # `from |`: a label
    use_path: str | None  # `use "blo|`: a file name being typed
    line_start: bool  # nothing but the word before it on the line (a step, or a keyword)


def context(text: str, line: int, col: int) -> Context:
    """The context at 1-based (line, col) of `text`."""
    lines = split_lines(text)
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    before = current[:col - 1]
    use = re.match(r'^\s*use\s+"([^"]*)$', before)
    word = _WORD.search(before)
    prefix = word.group(0) if word else ""
    head = before[:len(before) - len(prefix)]
    return Context(
        prefix=prefix,
        call=call_at(lines, line, col),
        after_from=bool(re.search(r"(^|[\s:])from\s+$", without_comment(head))),
        use_path=use.group(1) if use else None,
        line_start=head.strip() == "" or head.rstrip().endswith(":"))


def call_at(lines: list[str], line: int, col: int) -> CallContext | None:
    """The innermost call whose `(` is open before the cursor, if any."""
    depth = 0
    commas = 0
    argument_text: list[str] = []  # the text of the current argument, backwards
    first = True
    for number in range(line, max(0, line - MAX_LINES_BACK), -1):
        text = without_comment(lines[number - 1] if number <= len(lines) else "")
        if first:
            text = text[:col - 1]
        first = False
        for i in range(len(text) - 1, -1, -1):
            ch = text[i]
            if ch in ")]}":
                depth += 1
            elif ch in "([{":
                if depth == 0:
                    if ch != "(":
                        return None  # inside a list: no call's argument
                    name = _WORD.search(text[:i])
                    if name is None:
                        return None
                    current = "".join(reversed(argument_text))
                    named = _NAMED.match(current)
                    given = _given(lines, number, i + 1, line, col)
                    return CallContext(name.group(0), commas, named.group(1) if named else None,
                                       named is None and re.fullmatch(r"\s*\w*", current)
                                       is not None, given)
                depth -= 1
            elif ch == "," and depth == 0:
                commas += 1  # the current argument began after the first comma met
            if commas == 0 and depth == 0:
                argument_text.append(ch)
    return None


def _given(lines, open_line: int, open_col: int, line: int, col: int) -> set[str]:
    """The names of the named arguments between the call's `(` and the cursor."""
    parts = []
    for number in range(open_line, line + 1):
        text = without_comment(lines[number - 1] if number <= len(lines) else "")
        start = open_col if number == open_line else 0
        end = col - 1 if number == line else len(text)
        parts.append(text[start:end])
    return set(re.findall(r"(?:^|,)\s*([A-Za-z_]\w*)\s*=(?!=)", " ".join(parts)))


_HEADER = re.compile(r"(network|block)\b")
_LABEL = re.compile(r"^\s+(?:output\s+)?([A-Za-z_]\w*)\s*:(?!\S)")
_NOT_LABELS = {"add", "concat", "mul", "branch", "with", "frozen", "repeat", "if", "elif",
               "else", "input"}


def labels_above(text: str, line: int) -> list[str]:
    """The labels written in the definition around `line`, above it, read from the text
    (what `from` can name while the file does not parse)."""
    lines = split_lines(text)[:line - 1]
    found = []
    for current in reversed(lines):
        match = _LABEL.match(without_comment(current))
        if match and match.group(1) not in _NOT_LABELS:
            found.append(match.group(1))
        if _HEADER.match(current):
            break
    return list(reversed(found))
