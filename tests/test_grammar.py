"""The editor grammar (editors/vscode/syntaxes/archdsl.tmLanguage.json, issue 20), run by the
engine VS Code runs — vscode-textmate with vscode-oniguruma, through node — on every spec of
the zoo and every golden error case. Each token that archdsl's own tokenizer (the formatter's,
archdsl/syntax/format.py) finds must get the scope of its class: comments, strings, table
notation, sizes, numbers, keywords, definitions, labels and layer kinds.

node and the two packages come with the set-up (scripts/setup.sh runs `npm ci` in
editors/vscode when node is there); without node this module is skipped, saying so.
"""

import json
import re
import shutil
import subprocess
import sys

import pytest

from archdsl.layers import LAYERS
from archdsl.syntax.format import tokens
from conftest import ROOT, SPECS

VSCODE = ROOT / "editors" / "vscode"
FILES = sorted(SPECS.glob("*.arch")) + sorted((ROOT / "tests" / "ui").rglob("*.arch"))
LAYER_NAMES = {n for k in LAYERS.values() for n in (k.name, *k.aliases)}
KEYWORDS = {"let": "keyword", "repeat": "keyword", "as": "keyword", "if": "keyword",
            "elif": "keyword", "else": "keyword", "with": "keyword", "frozen": "keyword",
            "from": "keyword", "when": "keyword", "of": "keyword", "and": "keyword",
            "or": "keyword", "not": "keyword", "input": "keyword.other.input",
            "output": "keyword.other.output", "branch": "keyword.control.branch",
            "network": "storage.type.network", "block": "storage.type.block",
            "def": "storage.type.def", "recipe": "storage.type.recipe",
            "use": "keyword.control.import", "true": "constant.language",
            "false": "constant.language", "none": "constant.language"}
STATEMENT_WORDS = {"if", "elif", "else", "with", "frozen", "repeat", "input", "output", "branch",
                   "add", "concat", "mul", "network", "block", "def", "recipe", "use", "let",
                   "from", "return"}


def test_the_grammar_is_generated_from_the_registry():
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_grammar import OUT, grammar

    assert json.loads(OUT.read_text()) == grammar(), \
        "run .venv/bin/python scripts/make_grammar.py"


@pytest.fixture(scope="module")
def tokenized():
    node = shutil.which("node")
    if node is None or not (VSCODE / "node_modules" / "vscode-textmate").is_dir():
        pytest.skip("node and editors/vscode/node_modules are needed (scripts/setup.sh installs "
                    "them where node is)")
    done = subprocess.run([node, "test/tokenize.js", *map(str, FILES)], cwd=VSCODE,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def expected_classes(line: str):
    """(column, token text, the scope it must have) for the tokens of one line whose class
    is certain from archdsl's tokenizer alone."""
    out = []
    pos = 0
    found = tokens(line)
    code_words = [t for t in found if t[0] not in ("comment",)]
    label = re.match(r"^\s*([A-Za-z_]\w*)\s*:(\s|$)", line)
    for i, (kind, text, spaces) in enumerate(found):
        pos += spaces
        before = line[:pos]
        after = line[pos + len(text):]
        scope = None
        if kind == "comment":
            scope = "comment.line.number-sign"
        elif kind == "string":
            scope = "string.quoted.double"
        elif kind == "table":
            scope = "support.function.table"
        elif kind == "dims":
            scope = "constant.numeric.dims"
        elif kind == "number" and not before.endswith("."):
            scope = "constant.numeric"
        elif kind == "name":
            if label and i == 0 and text == label.group(1) and text not in STATEMENT_WORDS:
                scope = "entity.name.tag.label"
            elif i == 1 and code_words and code_words[0][1] in ("network", "block", "def") \
                    and not before.startswith(" "):
                scope = "entity.name.function"
            elif text in KEYWORDS and not re.match(r"\s*=(?!=)", after) \
                    and not before.endswith("."):
                scope = KEYWORDS[text]
                if text in ("input", "output", "network", "block", "def", "recipe", "use") \
                        and not (before.strip() == "" or text == "output"):
                    scope = None  # the word inside a line, not the statement
            elif text in LAYER_NAMES and not re.match(r"\s*[=:(]?\s*=(?!=)", after) \
                    and not re.match(r"\s*:", after) and not before.endswith(".") \
                    and not before.rstrip().endswith(("network", "block", "def", "as", "let")):
                scope = "support.function.layer"
        if scope is not None:
            out.append((pos, text, scope))
        pos += len(text)
        if kind == "raw":
            break
    return out


def scopes_at(line_tokens, column: int) -> list[str]:
    for start, end, scopes in line_tokens:
        if start <= column < end:
            return scopes
    return []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_token_class_is_highlighted(tokenized, path):
    lines = path.read_text().split("\n")
    per_line = tokenized[str(path)]
    checked = 0
    for number, (line, line_tokens) in enumerate(zip(lines, per_line), 1):
        for column, text, scope in expected_classes(line):
            got = scopes_at(line_tokens, column)
            assert any(s.startswith(scope) for s in got), \
                f"{path.name}:{number}:{column + 1}: `{text}` should be {scope}, is {got}"
            checked += 1
    assert checked > 0 or not path.read_text().strip()


def test_the_classes_all_appear(tokenized):
    """Over the zoo, every class of the grammar is used somewhere (none is dead)."""
    seen = set()
    for lines in tokenized.values():
        for line in lines:
            for _, _, scopes in line:
                seen |= {s.rsplit(".", 1)[0] for s in scopes}
    for scope in ("comment.line.number-sign", "string.quoted.double", "support.function.table",
                  "constant.numeric.dims", "constant.numeric", "keyword.control",
                  "keyword.control.merge", "keyword.operator.repeat", "entity.name.tag.label",
                  "support.function.layer", "support.function.builtin",
                  "entity.name.function.call", "variable.parameter", "variable.language.in",
                  "storage.type.network", "storage.type.block", "storage.type.def"):
        assert scope in seen, scope
