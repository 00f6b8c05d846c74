"""Semantic tokens: highlighting from the server, for editors without the TextMate grammar
(Neovim and Helix highlight with tree-sitter, and archdsl has no tree-sitter grammar).

Each line is cut by archdsl's own tokenizer (syntax/format.py: comments, strings, table
notation, sizes, numbers, names, operators); each name then takes the class the index gives
it (a layer kind, a block, a network, a parameter, a label...), when the index is of this
very text, or else is a keyword or a layer kind by its spelling alone.
"""

from __future__ import annotations

from ..diagnostics import split_lines
from ..layers import registry
from ..syntax.format import RESERVED, tokens
from .index import Index

TYPES = ["keyword", "comment", "string", "number", "function", "class", "parameter",
         "variable", "property", "operator"]
MODIFIERS = ["declaration", "defaultLibrary"]

# what each kind of occurrence (index.py) is drawn as: (type, modifiers)
BY_KIND = {"layer": ("function", {"defaultLibrary"}), "builtin": ("function", {"defaultLibrary"}),
           "block": ("function", set()), "def": ("function", set()),
           "network": ("class", set()), "param": ("parameter", set()),
           "block_param": ("parameter", set()), "layer_param": ("parameter", set()),
           "let": ("variable", set()), "var": ("variable", set()), "label": ("property", set())}
PUNCTUATION = {"(", ")", "[", "]", "{", "}", ",", ":", "."}  # left to the editor's default
LEXICAL = {"comment": "comment", "string": "string", "number": "number", "dims": "number",
           "table": "function", "op": "operator"}


def semantic_tokens(text: str, index: Index | None) -> list[tuple[int, int, int, str, set]]:
    """(line, column, length, type, modifiers) for each token, 0-based, in characters."""
    names = {}
    if index is not None:
        for o in index.occurrences:
            if o.range[0] == o.range[2]:
                kind = BY_KIND.get(o.kind)
                if kind is not None:
                    modifiers = set(kind[1]) | ({"declaration"} if o.is_definition else set())
                    names[(o.range[0], o.range[1])] = (kind[0], modifiers)
    out = []
    for number, line in enumerate(split_lines(text), 1):
        column = 0
        for kind, word, spaces in tokens(line):
            column += spaces
            if kind == "raw":
                break
            found = None
            if kind == "name":
                found = names.get((number, column + 1))
                if found is None and word in RESERVED:
                    found = ("keyword", set())
                elif found is None and index is None and registry.lookup(word) is not None:
                    found = ("function", {"defaultLibrary"})
            elif kind == "op" and word in PUNCTUATION:
                pass
            elif kind in LEXICAL:
                found = (LEXICAL[kind], {"defaultLibrary"} if kind == "table" else set())
            if found is not None:
                out.append((number - 1, column, len(word), *found))
            column += len(word)
    return out


def encode(text: str, found) -> list[int]:
    """The LSP's relative encoding (delta line, delta start, length, type, modifier bits),
    positions and lengths in UTF-16 code units."""
    lines = split_lines(text)
    data, last_line, last_start = [], 0, 0
    for line, column, length, kind, modifiers in sorted(found, key=lambda t: (t[0], t[1])):
        current = lines[line] if line < len(lines) else ""
        start = utf16_length(current[:column])
        size = utf16_length(current[column:column + length])
        delta = line - last_line
        data += [delta, start - last_start if delta == 0 else start, size, TYPES.index(kind),
                 sum(1 << MODIFIERS.index(m) for m in modifiers)]
        last_line, last_start = line, start
    return data


def utf16_length(text: str) -> int:
    """The length of `text` as LSP positions count it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2
