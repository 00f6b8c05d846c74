"""Writes editors/vscode/syntaxes/archdsl.tmLanguage.json, the TextMate grammar editors
highlight .arch files with (VS Code, and any editor that reads TextMate grammars).

    .venv/bin/python scripts/make_grammar.py

The patterns follow the language's own tokens (archdsl/syntax/format.py's TOKEN and the
grammar's keywords); the layer kinds come from the registry, so a new kind is highlighted
once this is run again (tests/test_grammar.py fails until it is). Scopes are the usual
TextMate names, so every colour theme colours them.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "editors" / "vscode" / "syntaxes" / "archdsl.tmLanguage.json"

NAME = r"[A-Za-z_]\w*"
PIECE = r"(?:\d+|\{[^{}\n]*\})"  # a size: a number or a computed {expression}
# the keywords that begin a statement (never a label), and those with a rule of their own
STATEMENT_WORDS = ["if", "elif", "else", "with", "frozen", "repeat", "input", "output",
                   "branch", "add", "concat", "mul", "network", "block", "def", "recipe", "use",
                   "let", "from", "return"]
OWN_RULES = {"network", "block", "def", "recipe", "use", "input", "output", "add", "concat",
             "mul", "branch", "x", "in"}


def grammar() -> dict:
    from archdsl.elaborate.expressions import BUILTINS, CONSTANTS
    from archdsl.layers import LAYERS
    from archdsl.syntax.format import KEYWORDS, LITERALS

    keywords = sorted(KEYWORDS - OWN_RULES, key=lambda k: (-len(k), k))

    layers = sorted({n for k in LAYERS.values() for n in (k.name, *k.aliases)},
                    key=lambda n: (-len(n), n))
    not_a_label = "|".join(STATEMENT_WORDS)
    patterns = {
        "comment": {"name": "comment.line.number-sign.archdsl", "match": r"(#).*$",
                    "captures": {"1": {"name": "punctuation.definition.comment.archdsl"}}},
        "string": {"name": "string.quoted.double.archdsl", "begin": '"', "end": '"|$',
                   "beginCaptures": {"0": {"name": "punctuation.definition.string.begin.archdsl"}},
                   "endCaptures": {"0": {"name": "punctuation.definition.string.end.archdsl"}}},
        "definition": {
            "match": rf"^(network|block|def)\s+({NAME})",
            "captures": {"1": {"name": "storage.type.$1.archdsl"},
                         "2": {"name": "entity.name.function.$1.archdsl"}}},
        "recipe": {"match": rf"^(recipe)\s+({NAME})",
                   "captures": {"1": {"name": "storage.type.recipe.archdsl"},
                                "2": {"name": "entity.name.function.network.archdsl"}}},
        "use": {"match": r"^(use)\b", "captures": {"1": {"name": "keyword.control.import.archdsl"}}},
        "merge": {"match": r"^\s*(add|concat|mul)\s*(?=:)",
                  "captures": {"1": {"name": "keyword.control.merge.archdsl"}}},
        "branch": {"match": rf"\b(branch)\b(?:\s+({NAME}))?\s*(?=:)",
                   "captures": {"1": {"name": "keyword.control.branch.archdsl"},
                                "2": {"name": "entity.name.tag.branch.archdsl"}}},
        "input": {"match": rf"\b(input|output)\b(?:\s+({NAME}(?:\{{[^{{}}\n]*\}}\w*)*)\s*(?=:))?",
                  "captures": {"1": {"name": "keyword.other.$1.archdsl"},
                               "2": {"name": "entity.name.tag.label.archdsl"}}},
        "label": {"match": rf"^\s*(?!(?:{not_a_label})\b)({NAME}(?:\{{[^{{}}\n]*\}}\w*)*)\s*(:)(?=\s|$)",
                  "captures": {"1": {"name": "entity.name.tag.label.archdsl"},
                               "2": {"name": "punctuation.separator.label.archdsl"}}},
        "table": {"name": "support.function.table.archdsl",
                  "match": r"(?<![\w-])(?:(?:conv\d+(?:x\d+)?|FC|fc)-(?:\w+|\{[^{}\n]*\})|soft-max)(?![\w-])"},
        "dims": {"name": "constant.numeric.dims.archdsl",
                 "match": rf"(?<![\w.]){PIECE}(?:[x×]{PIECE})+(?![\w.])"},
        "number": {"name": "constant.numeric.archdsl",
                   "match": r"(?<![\w.])(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?"
                            r"|\d+[eE][-+]?\d+|\d+)(?![\w.])"},
        "in": {"match": r"\b(in)(\.)(\w+)",
               "captures": {"1": {"name": "variable.language.in.archdsl"},
                            "3": {"name": "variable.other.member.archdsl"}}},
        "keyword": {"name": "keyword.control.archdsl",
                    "match": r"\b(?:" + "|".join(keywords) + r")\b"},
        "repeat": {"match": r"(?<=[\w)\]}])\s+(x)(?=\s)",
                   "captures": {"1": {"name": "keyword.operator.repeat.archdsl"}}},
        "constant": {"name": "constant.language.archdsl",
                     "match": r"\b(?:" + "|".join(sorted(LITERALS | set(CONSTANTS))) + r")\b"},
        "builtin": {"name": "support.function.builtin.archdsl",
                    "match": r"\b(?:" + "|".join(sorted(BUILTINS)) + r")(?=\s*\()"},
        "named-argument": {"match": rf"\b({NAME})\s*(=)(?!=)",
                           "captures": {"1": {"name": "variable.parameter.archdsl"},
                                        "2": {"name": "keyword.operator.assignment.archdsl"}}},
        "layer": {"name": "support.function.layer.archdsl",
                  "match": r"(?<![\w.])(?:" + "|".join(layers) + r")(?![\w-])"},
        "call": {"match": rf"\b({NAME})(?=\()",
                 "captures": {"1": {"name": "entity.name.function.call.archdsl"}}},
        "operator": {"name": "keyword.operator.archdsl",
                     "match": r"\*\*|//|==|!=|<=|>=|[-+*/%<>]"},
    }
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "archdsl",
        "scopeName": "source.archdsl",
        "fileTypes": ["arch"],
        "comment": "Generated by scripts/make_grammar.py from archdsl's tokens and layer "
                   "registry; do not edit.",
        "patterns": [{"include": f"#{name}"} for name in patterns],
        "repository": patterns,
    }


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
