"""Text → AST: the Lark parser for grammar.lark, and its errors as diagnostics.

Lark does the lexing and LALR parsing; an Indenter post-lexer turns indentation into
_INDENT/_DEDENT tokens as in Python. Before Lark runs, a small scan checks that brackets are
balanced, so an unclosed `(` is reported where it was opened rather than where the parser
finally gave up. The papers' table notation (`conv3-64`, `FC-{classes}`) is desugared here into
ordinary calls, so later stages never see it.
"""

from __future__ import annotations

import os
import re
import sys
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter

from ..diagnostics import Diagnostic, Source, Span, SpecError
from ..limits import MAX_BRACKET_DEPTH, MAX_NESTING, deep_recursion
from . import ast

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

# Bodies nested deeper than this are refused (a guard against pathological input, and
# against Python's recursion limit in the later, recursive stages).


class _IndentError(Exception):
    def __init__(self, token: Token, message: str):
        self.token = token
        self.message = message


class _GluedKeyword(Exception):
    """A keyword run into the name after it (`networknet:`): where the grammar expects the
    keyword, the lexer reads it as a prefix, and `networknet:` would pass as `network net:`."""

    def __init__(self, keyword: Token, rest: Token):
        self.keyword = keyword
        self.rest = rest


class _ArchIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def process(self, stream):
        return super().process(_keywords_apart(stream))

    def handle_NL(self, token):
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            if len(self.indent_level) - 1 > MAX_NESTING:  # [0] is the top level
                raise _IndentError(token, f"bodies are nested more than {MAX_NESTING} levels deep")
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
        else:
            while indent < self.indent_level[-1]:
                self.indent_level.pop()
                yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
            if indent != self.indent_level[-1]:
                raise _IndentError(token, "unindent does not match any outer indentation level")


def _keywords_apart(stream):
    """The tokens, refusing a keyword glued to a following name (`networknet`, `blockconv`).
    A keyword's token type is its own word in capitals (Lark's naming of anonymous
    terminals)."""
    previous = None
    for token in stream:
        if (previous is not None and previous.type == str(previous).upper()
                and str(previous).isalpha() and token.start_pos == previous.end_pos
                and (str(token)[:1].isalpha() or str(token)[:1] == "_")):
            raise _GluedKeyword(previous, token)
        previous = token
        yield token


def _cache_file() -> str | bool:
    """Where the built parser is cached: the user's own cache folder (Lark checks the
    grammar's hash when it loads it), or nowhere if that folder cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "archdsl")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    return os.path.join(folder, f"grammar-{sys.version_info[0]}{sys.version_info[1]}.lark-cache")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    options = dict(parser="lalr", postlex=_ArchIndenter(), propagate_positions=True,
                   maybe_placeholders=True, start=["start", "expr"])
    try:
        return Lark(GRAMMAR_PATH.read_text(), cache=_cache_file(), **options)
    except Exception:  # an unreadable or stale cache must never stop a parse
        return Lark(GRAMMAR_PATH.read_text(), **options)


# ---- public entry points -------------------------------------------------------------------

# Syntax trees of the files parsed last, by (path, text): a file that several specs `use`
# (resnet.arch, for the FPN and segmentation specs) is parsed once per process. Trees are
# never changed after parsing, so they can be shared.
_PARSED: dict[tuple[str, str], ast.Module] = {}
_PARSED_KEPT = 64


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse one file. Raises SpecError with located diagnostics."""
    if not text.endswith("\n"):
        text += "\n"  # the indenter needs a final newline to close the last body
    module = _PARSED.get((path, text))
    if module is None:
        module = _parse(text, path)
        if len(_PARSED) >= _PARSED_KEPT:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[(path, text)] = module
    return module


def _parse(text: str, path: str) -> ast.Module:
    source = Source(path, text)
    _check_brackets(source)
    try:
        with deep_recursion():
            tree = _lark().parse(text, start="start")
            return ast.Module(source, _transform(_ToAst(source), tree))
    except (UnexpectedInput, _IndentError, _GluedKeyword) as error:
        raise SpecError(_syntax_diagnostic(source, error)) from None
    except VisitError as error:  # Lark wraps what the transformer raises
        if not isinstance(error.orig_exc, RecursionError):
            raise
        raise _too_deep(source) from None
    except RecursionError:
        raise _too_deep(source) from None


def _too_deep(source: Source) -> SpecError:
    return SpecError(Diagnostic(
        "E0507", "an expression is nested too deeply to read (a chain of thousands of "
        "operators)", Span(source, 1, 1, 1, 1), help="split long expressions with `let` or `def`"))


def parse_expr(text: str, source: Source, line: int, col: int) -> ast.Expr:
    """Parse an expression found inside a token (`{res}` in `3x{res}x{res}`) at line:col, or
    given on its own (`--set classes=10`: then `source` holds just that text). Bounded like a
    file: brackets nested at most MAX_BRACKET_DEPTH deep, operator chains too deep to read
    are an error, not a RecursionError."""
    if source.text == text:
        _check_brackets(source)
    try:
        with deep_recursion():
            tree = _lark().parse(text, start="expr")
            return _transform(_ToAst(source, line - 1, col - 1), tree)
    except UnexpectedInput as error:
        column = col + max(getattr(error, "column", 1) - 1, 0)
        raise SpecError(Diagnostic("E0102", f"bad expression `{text}`",
                                   Span(source, line, column, line, column + 1))) from None
    except VisitError as error:
        if not isinstance(error.orig_exc, RecursionError):
            raise
        raise _too_deep(source) from None
    except RecursionError:
        raise _too_deep(source) from None


def _transform(transformer, tree):
    try:
        return transformer.transform(tree)
    except VisitError as error:  # Lark wraps what the transformer raises
        if isinstance(error.orig_exc, SpecError):
            raise error.orig_exc from None
        raise


# ---- bracket balance -----------------------------------------------------------------------

_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _check_brackets(source: Source) -> None:
    stack: list[tuple[str, int, int]] = []
    for number, line in enumerate(source.lines, start=1):
        in_string = False
        for col, ch in enumerate(line, start=1):
            if in_string:
                in_string = ch != '"'
            elif ch == '"':
                in_string = True
            elif ch == "#":
                break
            elif ch in _PAIRS:
                stack.append((ch, number, col))
                if len(stack) > MAX_BRACKET_DEPTH:
                    raise SpecError(Diagnostic(
                        "E0507", f"brackets nested more than {MAX_BRACKET_DEPTH} deep",
                        Span(source, number, col, number, col + 1),
                        help="name intermediate values with `let` or `def`"))
            elif ch in ")]}":
                if not stack:
                    raise SpecError(Diagnostic(
                        "E0104", f"unmatched `{ch}`", Span(source, number, col, number, col + 1),
                        help="remove it, or add the opening bracket it belongs to"))
                opener, oline, ocol = stack.pop()
                if _PAIRS[opener] != ch:
                    raise SpecError(Diagnostic(
                        "E0104", f"`{ch}` does not match the `{opener}` opened at {oline}:{ocol}",
                        Span(source, number, col, number, col + 1),
                        help=f"close the `{opener}` with `{_PAIRS[opener]}`"))
    if stack:
        opener, line, col = stack[-1]
        raise SpecError(Diagnostic(
            "E0104", f"unclosed `{opener}`", Span(source, line, col, line, col + 1),
            help=f"add the matching `{_PAIRS[opener]}`"))


# ---- syntax errors -------------------------------------------------------------------------

_TOKEN_WORDS = {
    "_NL": "end of line", "_INDENT": "indentation", "_DEDENT": "end of the indented body",
    "$END": "end of file", "NAME": "a name", "INT": "a number", "FLOAT": "a number",
    "STRING": "a string", "DIMS": "sizes such as 3x224x224", "DASHED": "table notation",
    "TEMPLATE": "a name",  # a computed one: `p{i + 3}`
    "COMP_OP": "a comparison", "ADD_OP": "`+` or `-`", "MUL_OP": "`*`, `/`, `//` or `%`",
}
_EXPRESSION_START = {"NAME", "TEMPLATE", "INT", "FLOAT", "STRING", "DIMS", "LPAR", "LSQB",
                     "TRUE", "FALSE", "NONE", "IN", "ADD_OP", "NOT"}


def _describe_terminal(name: str) -> str:
    if name in _TOKEN_WORDS:
        return _TOKEN_WORDS[name]
    for terminal in _lark().terminals:
        if terminal.name == name and terminal.pattern.type == "str":
            return f"`{terminal.pattern.value}`"
    return name.lower()


def _describe_expected(expected: set[str]) -> str:
    expected = set(expected)
    words = []
    if len(expected & _EXPRESSION_START) >= 4:
        expected -= _EXPRESSION_START
        words.append("an expression")
    words += sorted({_describe_terminal(t) for t in expected if not t.startswith("__")})
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _token_text(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    if token.type in ("_NL", "_INDENT", "_DEDENT"):
        return _TOKEN_WORDS[token.type]
    return f"`{token}`"


def _syntax_diagnostic(source: Source, error) -> Diagnostic:
    if isinstance(error, _GluedKeyword):
        keyword, rest = error.keyword, error.rest
        return Diagnostic(
            "E0102", f"`{keyword}{rest}` runs the keyword `{keyword}` into a name",
            Span(source, keyword.line, keyword.column, rest.end_line, rest.end_column),
            help=f"write `{keyword} {rest}`, or choose a name that does not start with a "
                 f"keyword where the keyword can go")
    if isinstance(error, _IndentError):
        line = error.token.end_line
        text = source.line(line)
        indent = len(text) - len(text.lstrip())
        return Diagnostic("E0105", error.message, Span(source, line, 1, line, indent + 1),
                          help="indent this line like the lines of the body it belongs to")
    if isinstance(error, UnexpectedCharacters):
        ch = source.line(error.line)[error.column - 1:error.column] or "?"
        hint = None
        if ch == "\t":
            hint = "use spaces for indentation and alignment"
        elif ch in "!&|" :
            hint = "boolean operators are written `and`, `or`, `not`"
        elif ch == "'":
            hint = 'strings are written in double quotes: "name"'
        if ch != "\t" and (not ch.isprintable() or ch.isspace()):  # invisible: say which
            import unicodedata

            name = unicodedata.name(ch, "") or "a control character"
            return Diagnostic("E0101", f"unexpected character U+{ord(ch):04X} ({name})",
                              Span(source, error.line, error.column, error.line,
                                   error.column + 1),
                              help=hint or "only spaces, tabs at the start of a line, and "
                                           "newlines separate tokens")
        return Diagnostic("E0101", f"unexpected character `{ch}`",
                          Span(source, error.line, error.column, error.line, error.column + 1),
                          help=hint)
    token = error.token if isinstance(error, UnexpectedToken) else None
    expected = set(getattr(error, "expected", None) or getattr(error, "accepts", None) or ())
    if token is None or token.type == "$END":
        lines = source.lines or [""]
        line = len(lines)
        col = len(lines[-1]) + 1
        return Diagnostic("E0103", "unexpected end of file",
                          Span(source, line, col, line, col + 1),
                          help=f"expected {_describe_expected(expected)}" if expected else None)
    line, col = token.line, token.column
    line_text = source.line(line)
    first_on_line = not line_text[:col - 1].strip()
    header = _open_header(source, line)
    if header is not None and token.type != "_INDENT" and first_on_line:
        text = source.line(header)
        colon = len(text.split("#")[0].rstrip())
        return Diagnostic("E0102", f"`{text.strip()}` has no body", Span(source, header, colon,
                          header, colon + 1), help="indent the lines of the body under it, or "
                          "write one step after the colon")
    if token.type == "_NL":
        # the newline token starts at the end of the line that is unfinished
        end_col = col + 1
        message = "unexpected end of line"
    elif token.type in ("_INDENT", "_DEDENT"):
        line = token.end_line
        text = source.line(line)
        col = 1
        end_col = len(text) - len(text.lstrip()) + 1
        message = "unexpected indentation" if token.type == "_INDENT" else "unexpected unindent"
    else:
        end_col = token.end_column if token.end_line == line else col + len(str(token))
        message = f"unexpected {_token_text(token)}"
        misplaced = _misplaced(token, line_text[:col - 1])
        if misplaced is not None:
            message, help_text = misplaced
            return Diagnostic("E0102", message, Span(source, line, col, line,
                                                     max(end_col, col + 1)), help=help_text)
    help_text = _syntax_help(token, expected, source.line(line))
    if help_text is None and expected:
        help_text = f"expected {_describe_expected(expected)}"
    return Diagnostic("E0102", message, Span(source, line, col, line, max(end_col, col + 1)),
                      help=help_text)


# keywords that begin a statement: each starts a line of its own
_STATEMENT_WORDS = {"output", "let", "repeat", "with", "if", "frozen", "input", "branch",
                    "elif", "else", "block", "network", "def", "use"}


def _misplaced(token: Token, before: str) -> tuple[str, str] | None:
    """(message, help) for a token that is valid elsewhere on a line of its own, or in
    another form: `fc:` after other steps, `output` after `branch:`, `x 2.0`."""
    text = str(token)
    if not before.strip():
        return None
    if token.type == "COLON" and re.search(r"\boutput\s+[A-Za-z_][\w{}+ ]*$", before):
        return ("`output` starts a line of its own",
                "put the output on its own line, indented under the line that ends with `:`")
    if token.type == "COLON" and re.search(r"\S\s+[A-Za-z_]\w*\s*$", before):
        label = re.search(r"([A-Za-z_]\w*)\s*$", before).group(1)
        return (f"a label starts its line: `{label}:` follows other steps",
                f"put `{label}: ...` on a line of its own")
    if text in _STATEMENT_WORDS and token.type == text.upper():
        return (f"`{text}` starts a line of its own",
                "put it on its own line, indented under the line that ends with `:`")
    if re.fullmatch(r"\.\d+", text) and re.search(r"[x×]\s*\d+$", before):
        count = re.search(r"(\d+)$", before).group(1)
        return (f"a repeat count is a whole number, got `{count}{text}`",
                f"write `x {count}`")
    return None


def _open_header(source: Source, line: int) -> int | None:
    """The line before `line` (blank lines and comments skipped) when it ends with a colon,
    so that what comes next should have been its indented body."""
    for number in range(line - 1, 0, -1):
        code = source.line(number).split("#")[0].rstrip()
        if code:
            return number if code.endswith(":") else None
    return None


def _syntax_help(token: Token, expected: set[str], line_text: str) -> str | None:
    """Targeted advice for the mistakes people make most."""
    if token.type == "_INDENT":
        return "indent a line only after one that ends with `:`"
    if token.type == "_NL" and expected == {"COLON"}:
        return "a header line ends with `:`"
    if token.type == "_NL" and "COLON" in expected and "LPAR" in expected:
        return "a header line ends with `:`"
    if token.type == "EQUAL" and "COLON" in expected:
        return "compare with `==`; named arguments are written inside a call: f(name=value)"
    if token.type == "NAME" and str(token) in ("True", "False", "None"):
        return f"write `{str(token).lower()}`"
    if token.type == "_NL" and "_INDENT" in expected:
        return "the body of this definition must be indented on the next line"
    if token.type == "_NL" and line_text.rstrip().endswith(":"):
        return "put the body on the next line, indented"
    if token.type in ("MUL_OP", "ADD_OP", "POW", "COMP_OP") and re.search(
            r"[\s\]][x×]\s+[\w.\[\]]+\s*$", line_text[:token.column - 1]):
        return "a repeat count that is computed goes in parentheses: x (n - 1)"
    if token.type in ("MUL_OP", "ADD_OP", "POW") and "_NL" in expected:
        return "steps are layers and blocks; arithmetic belongs inside arguments: conv(2 * c)"
    return None


# ---- tree → AST ----------------------------------------------------------------------------

_TABLE_FORMS = "`convK-C` (conv3-64), `FC-N` (FC-4096), `soft-max`"


@v_args(meta=True)
class _ToAst(Transformer):
    def __init__(self, source: Source, line_offset: int = 0, col_offset: int = 0):
        super().__init__(visit_tokens=False)
        self.source = source
        self.line_offset = line_offset
        self.col_offset = col_offset

    # spans
    def _span(self, meta) -> Span:
        if isinstance(meta, Token):
            return Span(self.source, meta.line + self.line_offset, meta.column + self.col_offset,
                        meta.end_line + self.line_offset, meta.end_column + self.col_offset)
        if meta.empty:
            return Span(self.source, 1, 1, 1, 1)
        line, col = meta.line + self.line_offset, meta.column + self.col_offset
        end_line, end_col = meta.end_line + self.line_offset, meta.end_column + self.col_offset
        if end_line > line:
            end_line, end_col = _last_code_position(self.source, line, end_line, end_col)
        return Span(self.source, line, col, end_line, end_col)

    # definitions
    def start(self, meta, children):
        return [c for c in children if c is not None]

    def use(self, meta, children):
        (path,) = children
        return ast.Use(self._span(meta), path[1:-1], self._span(path))

    def def_(self, meta, children):
        name, params, body = children
        return ast.Def(self._span(meta), str(name), self._span(name), params or [], body)

    def block(self, meta, children):
        name, params, body = children
        return ast.Block(self._span(meta), str(name), self._span(name), params or [], body)

    def network(self, meta, children):
        name, params, body = children
        return ast.Network(self._span(meta), str(name), self._span(name), params or [], body)

    def variant(self, meta, children):
        name, base, args = children
        return ast.Variant(self._span(meta), str(name), self._span(name), str(base),
                           self._span(base), args or [])

    def recipe(self, meta, children):
        name, args = children
        return ast.Recipe(self._span(meta), str(name), self._span(name), args or [])

    def params(self, meta, children):
        return [c for c in children if c is not None]

    def param(self, meta, children):
        name, default = children
        return ast.Param(self._span(meta), str(name), default)

    def suite(self, meta, children):
        return list(children)

    # statements
    def input_(self, meta, children):
        name, shape, layout, vocab = children
        return ast.Input(self._span(meta), shape, str(layout) if layout else None,
                         self._span(layout) if layout else None, vocab,
                         str(name) if name else None, self._span(name) if name else None)

    def input_name(self, meta, children):
        return children[0]

    def let(self, meta, children):
        name, value = children
        return ast.Let(self._span(meta), str(name), value)

    def if_(self, meta, children):
        cond, body, *rest = children
        otherwise = rest.pop() if rest and (rest[-1] is None or rest[-1][0] == "else") else None
        branches = [(cond, body)] + [(c, b) for _, c, b in rest]
        return ast.If(self._span(meta), branches, otherwise[1] if otherwise else None)

    def elif_(self, meta, children):
        return ("elif", children[0], children[1])

    def else_(self, meta, children):
        return ("else", children[0])

    def repeat(self, meta, children):
        count, var, body = children
        return ast.Repeat(self._span(meta), count, str(var) if var is not None else None, body)

    def with_(self, meta, children):
        *defaults, body = children
        return ast.With(self._span(meta), defaults, body)

    def frozen(self, meta, children):
        condition, body = children
        return ast.Frozen(self._span(meta), condition, body)

    def layer_defaults(self, meta, children):
        name, args = children
        return ast.LayerDefaults(self._span(meta), str(name), self._span(name), args or [])

    def merge(self, meta, children):
        op, *branches = children
        return ast.Merge(self._span(meta), op, branches)

    def merge_op(self, meta, children):
        return str(children[0])

    def branch(self, meta, children):
        name, body = children
        return ast.Branch(self._span(meta), str(name) if name is not None else None, body)

    def branch_repeat(self, meta, children):
        count, var, *branches = children
        return ast.BranchRepeat(self._span(meta), count, str(var) if var is not None else None,
                                branches)

    def output(self, meta, children):
        name, body = children
        return ast.Output(self._span(meta), self._tensor_name(name), body)

    def label(self, meta, children):
        name, body = children
        if isinstance(body, ast.Merge):
            body = [body]
        return ast.Label(self._span(meta), self._tensor_name(name), body)

    def step_line(self, meta, children):
        source, *steps = children
        return ast.StepLine(self._span(meta), [s for s in steps if s is not None], source)

    def from_(self, meta, children):
        return self._tensor_name(children[0])

    def _tensor_name(self, token: Token) -> ast.TensorName:
        """`c4`, or `p{i + 3}` with its {...} pieces parsed as expressions."""
        text = str(token)
        span = self._span(token)
        if token.type != "TEMPLATE":
            return ast.TensorName(span, text, [text])
        parts = []
        for match in re.finditer(r"\{[^{}]*\}|[^{]+", text):
            piece = match.group()
            parts.append(self._piece(token, match.start(), piece) if piece.startswith("{")
                         else piece)
        return ast.TensorName(span, text, parts)

    # steps
    def step(self, meta, children):
        step, cond = children
        return step if cond is None else ast.When(self._span(meta), step, cond)

    def choose(self, meta, children):
        then, cond, otherwise = children
        return ast.Choose(self._span(meta), then, cond, otherwise)

    def times(self, meta, children):
        step, *_, count = children
        return ast.Times(self._span(meta), step, count)

    def call(self, meta, children):
        name, args = children
        return ast.Call(self._span(meta), str(name), self._span(name), args)

    def group(self, meta, children):
        return ast.Group(self._span(meta), list(children))

    def table(self, meta, children):
        return self._desugar_table(children[0])

    def args(self, meta, children):
        out = []
        for c in children:
            if c is None:
                continue
            out.append(c if isinstance(c, ast.Arg) else ast.Arg(c.span, None, c))
        return out

    def kwarg(self, meta, children):
        name, value = children
        return ast.Arg(self._span(meta), str(name), value)

    # expressions
    def ifexp(self, meta, children):
        then, cond, otherwise = children
        return ast.IfExp(self._span(meta), cond, then, otherwise)

    def or_(self, meta, children):
        return ast.Or(self._span(meta), children[0], children[1])

    def and_(self, meta, children):
        return ast.And(self._span(meta), children[0], children[1])

    def not_(self, meta, children):
        return ast.Not(self._span(meta), children[0])

    def compare(self, meta, children):
        left, op, right = children
        return ast.Compare(self._span(meta), str(op), left, right)

    def binop(self, meta, children):
        left, op, right = children
        return ast.BinOp(self._span(meta), str(op), left, right)

    def unary(self, meta, children):
        op, operand = children
        return ast.Unary(self._span(meta), str(op), operand)

    def apply(self, meta, children):
        func, args = children
        return ast.Apply(self._span(meta), func, args or [])

    def index(self, meta, children):
        return ast.Index(self._span(meta), children[0], children[1])

    def attr(self, meta, children):
        return ast.Attr(self._span(meta), children[0], str(children[1]))

    def int_(self, meta, children):
        return ast.Int(self._span(meta), int(children[0]))

    def float_(self, meta, children):
        return ast.Float(self._span(meta), float(children[0]))

    def string(self, meta, children):
        return ast.Str(self._span(meta), str(children[0])[1:-1])

    def name(self, meta, children):
        return ast.Name(self._span(meta), str(children[0]))

    def tensor_name(self, meta, children):
        """A computed tensor name as an argument (`like=l{i + 2}`)."""
        return self._tensor_name(children[0])

    def true(self, meta, children):
        return ast.Bool(self._span(meta), True)

    def false(self, meta, children):
        return ast.Bool(self._span(meta), False)

    def none(self, meta, children):
        return ast.NoneLit(self._span(meta))

    def in_shape(self, meta, children):
        return ast.InShape(self._span(meta))

    def list_(self, meta, children):
        return ast.ListExpr(self._span(meta), [c for c in children if c is not None])

    def dims(self, meta, children):
        token = children[0]
        items = [self._piece(token, offset, text)
                 for offset, text in _split_pieces(str(token), "x×")]
        return ast.Dims(self._span(meta), items)

    # pieces of DIMS and DASHED tokens: numbers, words, or {expressions}
    def _piece(self, token: Token, offset: int, text: str) -> ast.Expr:
        line = token.line + self.line_offset
        col = token.column + self.col_offset + offset
        span = Span(self.source, line, col, line, col + len(text))
        if text.startswith("{"):
            inner = text[1:-1]
            if not inner.strip():
                raise SpecError(Diagnostic("E0102", "empty `{}` in a size, a name or table "
                                           "notation", span,
                                           help="put an expression between the braces: {classes}"))
            return parse_expr(inner, self.source, line, col + 1)
        if text.isdigit():
            return ast.Int(span, int(text))
        return ast.Name(span, text)

    def _desugar_table(self, token: Token) -> ast.Call:
        """The papers' table notation, as ordinary layer calls.

        convK-C  → conv(C, K, pad=same)    VGG Table 1: conv3-64, conv1-512 (stride 1, 'same')
        FC-N     → linear(N)               VGG Table 1, AlexNet: FC-4096, FC-{classes}
        soft-max → softmax                 VGG Table 1
        """
        text = str(token)
        span = self._span(token)
        pieces = _split_pieces(text, "-")
        head = pieces[0][1].lower()
        rest = [self._piece(token, offset, piece) for offset, piece in pieces[1:]]
        conv = re.fullmatch(r"conv(\d+)(?:x(\d+))?", head)
        if text.lower() == "soft-max":
            return ast.Call(span, "softmax", span, None, notation=text)
        if conv and len(rest) == 1:
            kh = int(conv.group(1))
            kernel: ast.Expr = ast.Int(span, kh)
            if conv.group(2):
                kernel = ast.Dims(span, [ast.Int(span, kh), ast.Int(span, int(conv.group(2)))])
            args = [ast.Arg(rest[0].span, None, rest[0]), ast.Arg(span, None, kernel),
                    ast.Arg(span, "pad", ast.Str(span, "same"))]
            return ast.Call(span, "conv", span, args, notation=text)
        if head == "fc" and len(rest) == 1:
            return ast.Call(span, "linear", span, [ast.Arg(rest[0].span, None, rest[0])],
                            notation=text)
        raise SpecError(Diagnostic("E0106", f"unknown table notation `{text}`", span,
                                   help=f"the table notation has the forms {_TABLE_FORMS}; "
                                        "write other layers as calls, e.g. conv(64, 3)"))


def _last_code_position(source: Source, first: int, line: int, col: int) -> tuple[int, int]:
    """Move an end position back over trailing newlines, indentation and comments (a rule's
    span includes its closing newline token) to just after its last code character."""
    text = source.line(line)[:col - 1]
    while line > first and not without_comment(text).strip():
        line -= 1
        text = source.line(line)
    return line, len(without_comment(text).rstrip()) + 1


def without_comment(text: str) -> str:
    """A line without its comment (a `#` inside a string is not one)."""
    in_string = False
    for i, ch in enumerate(text):
        if ch == '"':
            in_string = not in_string
        elif ch == "#" and not in_string:
            return text[:i]
    return text


def _split_pieces(text: str, separators: str) -> list[tuple[int, str]]:
    """Split `conv3-{c}` on `-` (or `3x{res}` on `x`), keeping {...} intact: (offset, piece)."""
    pieces, start, depth = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch in separators and depth == 0 and i > start:
            pieces.append((start, text[start:i]))
            start = i + 1
    pieces.append((start, text[start:]))
    return pieces

