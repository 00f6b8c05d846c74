"""Every documented limit (docs/language.md, "Limits"), at its boundary: the largest spec
within it is accepted, the smallest beyond it is refused with its error code and exit status 1.

Limits that the golden catalogue already shows in full (tests/ui: structure_too_many_layers,
structure_exponential_recursion, expr_exponential_function, structure_recursion,
expr_function_recursion, shape_tensor_too_large, expr_power_tower, expr_list_too_long,
expr_string_too_long) are checked here at the boundary only. How long each refusal takes is
measured by benchmarks/limits.py, not here.
"""

import re
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main
from archdsl import limits
from archdsl.elaborate import elaborator
from conftest import ROOT

NETWORK = "network n:\n    input 3x8x8\n"


def codes(text_or_path) -> list[str]:
    """The error codes of a spec, every buildable network checked (empty when it is fine)."""
    from archdsl.api import load_all
    from archdsl.diagnostics import Diagnostics

    diagnostics = Diagnostics()
    if isinstance(text_or_path, Path):
        specs = load_all([text_or_path], diagnostics)
    else:
        try:
            specs = [archdsl.load(text_or_path)]
        except archdsl.SpecError as error:
            return [d.code for d in error.diagnostics]
    budget = elaborator.WorkBudget()
    for spec in specs:
        for name in spec.concrete_networks():
            spec.elaborate(name, diagnostics=diagnostics, budget=budget)
    return [d.code for d in diagnostics]


def test_the_documented_values_are_the_code_values():
    text = (ROOT / "docs" / "language.md").read_text()
    table = text[text.index("## Limits"):text.index("## Decisions")]
    for shown in [f"{limits.MAX_FILE_BYTES // 1024} KiB", f"{limits.MAX_TOTAL_BYTES // 1024} KiB",
                  f"{limits.MAX_FILES} files", f"{limits.MAX_NESTING} levels",
                  f"{limits.MAX_BRACKET_DEPTH} levels", f"| {limits.MAX_NODES:,} |",
                  f"{limits.MAX_WORK:,} units", f"a layer {limits.LAYER_WORK},",
                  f"a function call {limits.FUNCTION_CALL_WORK},",
                  f"a block call {limits.BLOCK_CALL_WORK},",
                  f"{limits.MAX_BLOCK_DEPTH} deep", f"{limits.MAX_CALL_DEPTH} deep",
                  f"variants of variants | {limits.MAX_VARIANT_DEPTH} deep",
                  f"an error reported {limits.ERROR_WORK},",
                  f"1 per {limits.ITEMS_PER_WORK} list items",
                  f"lists inside lists | {limits.MAX_VALUE_DEPTH} deep",
                  f"{limits.MAX_LIST:,} |"]:
        assert shown in table, shown
    assert limits.MAX_ELEMENTS == limits.MAX_PARAMS == 2 ** 40 and "2**40" in table
    assert limits.MAX_INT == 2 ** 62 and "2**62" in table


# ---- files ---------------------------------------------------------------------------------

def _padded(size: int) -> str:
    """A valid spec of exactly `size` bytes (a comment fills it up)."""
    text = NETWORK + "    relu\n"
    return text + "#" * (size - len(text) - 1) + "\n"


def test_file_size(tmp_path):
    limit = limits.MAX_FILE_BYTES
    (tmp_path / "ok.arch").write_text(_padded(limit))
    (tmp_path / "big.arch").write_text(_padded(limit + 1))
    assert codes(tmp_path / "ok.arch") == []
    assert codes(tmp_path / "big.arch") == ["E0507"]
    assert codes(_padded(limit + 1)) == ["E0507"]  # text given to the API directly, too


def test_total_size_of_used_files(tmp_path):
    third = limits.MAX_TOTAL_BYTES // 3
    for name in "abc":
        (tmp_path / f"{name}.arch").write_text(f"block {name}:\n    relu\n" + "#" * third + "\n")
    (tmp_path / "two.arch").write_text('use "a.arch"\nuse "b.arch"\n' + NETWORK + "    a b\n")
    (tmp_path / "three.arch").write_text('use "a.arch"\nuse "b.arch"\nuse "c.arch"\n' + NETWORK
                                         + "    a b c\n")
    assert codes(tmp_path / "two.arch") == []
    assert "E0507" in codes(tmp_path / "three.arch")


def test_number_of_used_files(tmp_path):
    def chain(n):  # f0 uses f1 uses f2 ... : n files
        folder = tmp_path / str(n)
        folder.mkdir()
        for i in range(n):
            uses = f'use "f{i + 1}.arch"\n' if i + 1 < n else ""
            (folder / f"f{i}.arch").write_text(uses + f"block b{i}:\n    relu\n")
        (folder / "f0.arch").write_text('use "f1.arch"\n' + NETWORK + "    b1\n")
        return folder / "f0.arch"

    assert codes(chain(limits.MAX_FILES)) == []
    assert "E0507" in codes(chain(limits.MAX_FILES + 1))


# ---- nesting -------------------------------------------------------------------------------

def _nested_bodies(levels: int) -> str:
    """A network body (level 1) holding `with` bodies down to `levels` levels."""
    lines = [NETWORK.rstrip("\n")]
    for level in range(1, levels):
        lines.append("    " * level + "with relu():")
    lines.append("    " * levels + "relu")
    return "\n".join(lines) + "\n"


def test_body_nesting():
    assert codes(_nested_bodies(limits.MAX_NESTING)) == []
    assert codes(_nested_bodies(limits.MAX_NESTING + 1)) == ["E0105"]


def test_bracket_nesting():
    def nested(depth):  # conv( is the first bracket
        return NETWORK + "    conv(" + "(" * (depth - 1) + "4" + ")" * (depth - 1) + ", 1)\n"

    assert codes(nested(limits.MAX_BRACKET_DEPTH)) == []
    assert codes(nested(limits.MAX_BRACKET_DEPTH + 1)) == ["E0507"]


@pytest.mark.parametrize("operator", ["+", "**", " if true else "])
def test_operator_chains(operator):
    assert codes(NETWORK + "    conv(" + operator.join(["1"] * 500) + ", 1)\n") == []
    assert codes(NETWORK + "    conv(" + operator.join(["1"] * 20000) + ", 1)\n") == ["E0507"]


def test_unary_chains():
    assert codes(NETWORK + "    conv(" + "--" * 100 + "1, 1)\n") == []
    assert codes(NETWORK + "    conv(" + "-" * 30000 + "1, 1)\n") == ["E0507"]
    assert codes(NETWORK + "    dropout(0.5) when " + "not " * 15000 + "true\n") == ["E0507"]


# ---- elaboration ---------------------------------------------------------------------------

def test_number_of_layers():
    limit = limits.MAX_NODES
    assert codes(NETWORK + f"    relu x {limit}\n") == []
    assert codes(NETWORK + f"    relu x {limit - 1} relu relu\n") == ["E0507"]


def test_work_budget_of_a_network():
    # branching recursion: 2**n block calls; n=8 is fine, n=40 is refused after ~1 second
    tree = ("block tree(n):\n    if n > 0:\n        tree(n - 1)\n        tree(n - 1)\n"
            "    else:\n        identity\n")
    assert codes(tree + NETWORK + "    tree(8)\n") == []
    assert codes(tree + NETWORK + "    tree(40)\n") == ["E0507"]
    loops = NETWORK + "    repeat 1000:\n        repeat 1000:\n            let a = 1\n    relu\n"
    assert codes(loops) == ["E0507"]


def test_work_budget_is_shared_by_the_networks_of_a_file(tmp_path, capsys):
    # each network alone is well within the budget; a hundred of them are not
    per_network = limits.MAX_WORK // 10 // (limits.LAYER_WORK + 1)
    text = NETWORK + f"    relu x {per_network}\n" + "".join(
        f"network v{i} = n()\n" for i in range(100))
    path = tmp_path / "many.arch"
    path.write_text(text)
    assert archdsl.load(path).network("v99") is not None
    assert main(["check", str(path)]) == 1
    assert "E0507" in capsys.readouterr().err


def test_block_call_depth():
    chain = "block b(n):\n    relu\n    b(n - 1) when n > 1\n"
    assert codes(chain + NETWORK + f"    b({limits.MAX_BLOCK_DEPTH})\n") == []
    assert codes(chain + NETWORK + f"    b({limits.MAX_BLOCK_DEPTH + 1})\n") == ["E0501"]


def test_function_call_depth():
    down = "def down(n) = 1 if n <= 1 else down(n - 1)\n"
    assert codes(down + NETWORK + f"    conv(down({limits.MAX_CALL_DEPTH}), 1)\n") == []
    assert codes(down + NETWORK + f"    conv(down({limits.MAX_CALL_DEPTH + 1}), 1)\n") \
        == ["E0501"]


# ---- sizes and values ----------------------------------------------------------------------

def test_tensor_elements():
    side = 2 ** 19  # 4 x 2**19 x 2**19 = 2**40
    assert codes(f"network n:\n    input 4x{side}x{side}\n    relu\n") == []
    assert codes(f"network n:\n    input 4x{side}x{side}\n    conv(5, 1)\n") == ["E0507"]
    assert codes(f"network n:\n    input 5x{side}x{side}\n    relu\n") == ["E0507"]


def test_layer_parameters():
    # linear(n) on n features has n*n + n parameters
    assert codes("network n:\n    input 1000000\n    linear(1000000)\n") == []
    assert codes("network n:\n    input 1048576\n    linear(1048576)\n") == ["E0507"]


def test_integers():
    assert codes(NETWORK + "    let big = 2 ** 62\n    relu\n") == []
    assert codes(NETWORK + "    let big = 2 ** 62 + 1\n    relu\n") == ["E0604"]
    assert codes(NETWORK + "    let big = -(2 ** 62) - 1\n    relu\n") == ["E0604"]
    assert codes(NETWORK + "    let big = 2 ** 2 ** 100\n    relu\n") == ["E0604"]


def test_list_and_string_length():
    limit = limits.MAX_LIST
    assert codes(NETWORK + f"    let xs = [0] * {limit}\n    relu\n") == []
    assert codes(NETWORK + f"    let xs = [0] * {limit + 1}\n    relu\n") == ["E0604"]
    grow = "def grow(s, n) = s if n == 0 else grow(s + s, n - 1)\n"
    assert codes(grow + NETWORK + '    let s = grow("a", 19)\n    relu\n') == []  # 524,288
    assert codes(grow + NETWORK + '    let s = grow("a", 20)\n    relu\n') == ["E0604"]


def test_every_limit_error_is_located():
    """A refusal points into the spec (not at line 0), so an editor can show it."""
    for text in [NETWORK + "    relu x 100001\n", NETWORK + "    conv(2 ** 70, 1)\n",
                 "def f(n) = f(n + 1)\n" + NETWORK + "    conv(f(1), 1)\n"]:
        with pytest.raises(archdsl.SpecError) as error:
            archdsl.load(text).network("n")
        (diagnostic,) = error.value.diagnostics
        assert diagnostic.span is not None and diagnostic.span.line >= 1
        assert re.match(r"E0[56]0\d", diagnostic.code)


def test_variant_depth():
    def chain(n):  # v1 is a variant of the network, v2 of v1, ... vn
        return NETWORK + "    relu\nnetwork v1 = n()\n" + "".join(
            f"network v{i} = v{i - 1}()\n" for i in range(2, n + 1))

    assert codes(chain(limits.MAX_VARIANT_DEPTH)) == []
    assert codes(chain(limits.MAX_VARIANT_DEPTH + 1)) == ["E0501"]


def test_nested_list_size_and_depth():
    limit = limits.MAX_LIST
    # [[0] * 999] * 1000: 1000 + 1000 * 999 = 1,000,000 items in all
    assert codes(NETWORK + "    let xs = [[0] * 999] * 1000\n    relu\n") == []
    assert codes(NETWORK + "    let xs = [[0] * 999] * 1001\n    relu\n") == ["E0604"]
    assert codes(NETWORK + f'    let xs = ["ab"] * {limit // 3}\n    relu\n') == []
    assert codes(NETWORK + f'    let xs = ["ab"] * {limit // 3 + 1}\n    relu\n') == ["E0604"]
    deep = limits.MAX_VALUE_DEPTH
    assert codes(NETWORK + "    let xs = " + "[" * deep + "]" * deep + "\n    relu\n") == []
    lets = "".join(f"    let l{i} = [l{i - 1}]\n" for i in range(1, deep + 1))
    assert codes(NETWORK + "    let l0 = []\n" + lets + "    relu\n") == ["E0604"]


def test_work_on_values_is_metered_by_size():
    # 15 rounds of building a million-item list stay well within the budget; 100 do not
    loop = NETWORK + "    repeat {}:\n        let n = len([0] * 1000000)\n    relu\n"
    assert codes(loop.format(15)) == []
    assert codes(loop.format(100)) == ["E0507"]
    compare = (NETWORK + "    let xs = [0] * 1000000\n    let ys = [0] * 1000000\n"
               "    repeat {}:\n        let same = xs == ys\n    relu\n")
    assert codes(compare.format(15)) == []
    assert codes(compare.format(100)) == ["E0507"]
