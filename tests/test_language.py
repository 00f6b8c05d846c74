"""Every construct of the language (docs/language.md), each in a small spec."""

import pytest

import archdsl
from archdsl import SpecError


def kinds(net):
    return [node["kind"] for _, node in net.graph.layers()]


def names(net):
    return [name for name, _ in net.graph.layers()]


def shape(net):
    return net.output_shapes["output"]


def errors(spec_text, text, name=None, **args):
    with pytest.raises(SpecError) as info:
        spec_text(text).network(name, **args)
    return [d.code for d in info.value.diagnostics]


# ---- files and definitions -----------------------------------------------------------------

def test_use_brings_in_blocks_of_another_file(tmp_path):
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "common.arch").write_text(
        "def ch(c, w) = divisible(c * w, 8)\n"
        "block conv_bn(c, k):\n    conv(c, k, pad=same, bias=false) bn\n")
    (tmp_path / "net.arch").write_text(
        'use "blocks/common.arch"\n\nnetwork n(w=0.5):\n    input 3x32x32\n'
        "    conv_bn(ch(64, w), 3) relu\n")
    net = archdsl.load(tmp_path / "net.arch").network("n")
    assert kinds(net) == ["conv", "bn", "relu"] and shape(net) == (32, 32, 32)


def test_use_cycle_is_an_error(tmp_path):
    (tmp_path / "a.arch").write_text('use "b.arch"\nblock x1:\n    relu\n')
    (tmp_path / "b.arch").write_text('use "a.arch"\nblock x2:\n    relu\n')
    with pytest.raises(SpecError) as info:
        archdsl.load(tmp_path / "a.arch")
    assert [d.code for d in info.value.diagnostics] == ["E0207"]


def test_use_refuses_files_that_are_not_specs(tmp_path):
    (tmp_path / "n.arch").write_text('use "/etc/passwd"\n')
    with pytest.raises(SpecError) as info:
        archdsl.load(tmp_path / "n.arch")
    assert info.value.diagnostics[0].code == "E0206"


def test_def_is_a_pure_function(spec_text):
    net = spec_text("""
        def half(c) = c // 2
        def scaled(c, w=2) = half(c) * w
        network n:
            input 3x8x8
            conv(scaled(16), 1)
    """).network("n")
    assert shape(net) == (16, 8, 8)


def test_variants_bind_arguments_and_can_chain(spec_text):
    spec = spec_text("""
        network base(c, classes=10):
            input 3x8x8
            conv(c, 3) gap linear(classes)
        network wide = base(64)
        network wide100 = wide(classes=100)
    """)
    assert spec.concrete_networks() == ["wide", "wide100"]
    assert shape(spec.network("wide100")) == (100,)
    assert spec.network("wide").graph.parameters == {"c": 64, "classes": 10}


def test_overrides_replace_what_a_variant_bound(spec_text):
    spec = spec_text("""
        network base(c, classes=10):
            input 3x8x8
            conv(c, 3) gap linear(classes)
        network wide = base(64, 20)
    """)
    net = spec.network("wide", c=8, classes=5)
    assert net.graph.parameters == {"c": 8, "classes": 5}
    assert shape(net) == (5,)


def test_string_arguments_are_expressions(spec_text):
    spec = spec_text("""
        block a(c):
            conv(c, 1)
        block b(c):
            conv(c, 3, pad=same)
        network n(unit=a, widths=[4]):
            input 3x8x8
            unit(widths[0])
    """)
    net = spec.network("n", unit="b", widths="[2 * 3]")
    assert net.graph[names(net)[0]]["args"]["kernel"] == (3, 3) and shape(net) == (6, 8, 8)


# ---- steps ---------------------------------------------------------------------------------

def test_layer_arguments_by_position_and_name(spec_text):
    net = spec_text("""
        network n:
            input 3x32x32
            conv(16, 3, 2, pad=1, bias=false)
    """).network("n")
    args = net.graph[names(net)[0]]["args"]
    assert args["stride"] == (2, 2) and args["pad"] == (1, 1) and args["bias"] is False
    assert shape(net) == (16, 16, 16)


def test_table_notation(spec_text):
    net = spec_text("""
        network n(classes=7):
            input 3x16x16
            conv3-64 conv1-32 LRN maxpool FC-4096 FC-{classes * 2} soft-max
    """).network("n")
    assert kinds(net) == ["conv", "conv", "lrn", "maxpool", "linear", "linear", "softmax"]
    first = net.graph[names(net)[0]]
    assert first["args"]["kernel"] == (3, 3) and first["args"]["pad"] == "same"
    assert first["notation"] == "conv3-64"
    assert shape(net) == (14,)


def test_input_interpolation_and_vectors(spec_text):
    spec = spec_text("""
        network image(res=40):
            input 3x{res}x{res // 2}
            conv(4, 1)
        network mlp:
            input 784
            FC-100 relu FC-10
    """)
    assert spec.network("image").input_shape == (3, 40, 20)
    assert shape(spec.network("mlp")) == (10,)


def test_blocks_as_arguments_and_partial_application(spec_text):
    net = spec_text("""
        block plain(c, k=1):
            conv(c, k, pad=same)
        block stack(unit, c, n):
            unit(c) x n
        network n:
            input 3x8x8
            stack(plain, 4, 2)
            stack(plain(k=3), 8, 1)
    """).network("n")
    kernels = [net.graph[n]["args"]["kernel"] for n in names(net)]
    assert kernels == [(1, 1), (1, 1), (3, 3)]


def test_layers_as_arguments(spec_text):
    net = spec_text("""
        block conv_act(c, act=relu):
            conv(c, 3, pad=same) act
        network n:
            input 3x8x8
            conv_act(4) conv_act(4, act=leakyrelu(0.2)) conv(4, 1, act=silu)
    """).network("n")
    assert kinds(net) == ["conv", "relu", "conv", "leakyrelu", "conv", "silu"]
    assert net.graph[names(net)[3]]["args"]["slope"] == 0.2


def test_repeats(spec_text):
    net = spec_text("""
        network n(k=2):
            input 3x8x8
            relu x 2
            [conv(4, 1) bn] x (k + 1)
            repeat 3 as i:
                conv(2 ** i, 1)
            repeat k:
                relu
    """).network("n")
    assert kinds(net) == ["relu"] * 2 + ["conv", "bn"] * 3 + ["conv"] * 3 + ["relu"] * 2
    assert shape(net) == (4, 8, 8)


def test_merges_and_identity(spec_text):
    net = spec_text("""
        network n:
            input 8x8x8
            add:
                branch: conv(8, 3, pad=same)
                branch: identity
            concat:
                branch: conv(4, 1)
                branch shortcut: identity
            mul:
                branch: identity
                branch: gap conv(12, 1) sigmoid
    """).network("n")
    assert shape(net) == (12, 8, 8)
    assert "concat.shortcut.identity" in names(net)
    concat = net.graph["concat"]
    assert concat["inputs"] == ["concat.0.conv", "concat.shortcut.identity"]


def test_side_outputs_and_when(spec_text):
    spec = spec_text("""
        block head(classes):
            gap linear(classes)
        network n(aux=true):
            input 3x8x8
            conv(4, 3)
            output aux1: head(5) when aux
            conv(6, 3)
            output features: identity
            head(10)
    """)
    net = spec.network("n")
    assert net.output_shapes == {"output": (10,), "aux1": (5,), "features": (6, 4, 4)}
    assert spec.network("n", aux=False).output_shapes == {"output": (10,), "features": (6, 4, 4)}


def test_conditionals(spec_text):
    spec = spec_text("""
        block shortcut(c, s):
            identity if s == 1 and in.c == c else conv(c, 1, stride=s)
        network n(deep=false, p=0.0):
            input 8x8x8
            shortcut(8, 1) shortcut(16, 2)
            if deep:
                conv(16, 3, pad=same)
            elif p > 0:
                relu
            else:
                bn
            dropout(p) when p > 0
    """)
    assert kinds(spec.network("n")) == ["identity", "conv", "bn"]
    assert kinds(spec.network("n", p=0.5)) == ["identity", "conv", "relu", "dropout"]
    assert kinds(spec.network("n", deep=True)) == ["identity", "conv", "conv"]


def test_let_and_in(spec_text):
    net = spec_text("""
        block squeeze(r=4):
            let c = in.c
            let hw = [in.h, in.w]
            conv(c // r, 1) conv(c, 1) avgpool(hw[0] // 2)
        network n:
            input 16x8x8
            squeeze flatten
            linear(in.c // 2)
    """).network("n")
    assert shape(net) == (32,)


def test_in_reads_a_grids_sizes_by_their_meaning(spec_text):
    """A grid (channels last): `in.h`, `in.w` its positions, `in.c` and `in.d` its features,
    `in.layout` says so; `in.l` is a sequence's, not a grid's."""
    net = spec_text("""
        network n:
            input 6x10x12 grid
            linear(in.h * 100 + in.w * 10 + in.d // 12 + in.c // 12 - 2)
            [identity] when in.layout == "grid"
    """).network("n")
    assert shape(net) == (6, 10, 700)
    with pytest.raises(archdsl.SpecError, match=r"it has no `l`"):
        spec_text("network n:\n    input 6x10x12 grid\n    linear(in.l)\n").network("n")


def test_with_sets_defaults_dynamically(spec_text):
    net = spec_text("""
        block unit(c):
            conv(c, 3)
        network n:
            input 3x8x8
            with conv(pad=same, bias=false):
                unit(4) conv(4, 3, bias=true)
            conv(4, 3)
    """).network("n")
    convs = [net.graph[n]["args"] for n in names(net)]
    assert [(a["pad"], a["bias"]) for a in convs] == [("same", False), ("same", True), ((0, 0), True)]


def test_labels_name_things(spec_text):
    net = spec_text("""
        block conv_bn(c):
            conv(c, 3, pad=same) bn
        block unit(c):
            conv_bn(c) relu
        network n:
            input 3x8x8
            stem: conv_bn(8)
            stage:
                unit(8)
                unit(8)
                unit(8)
            head: gap linear(10)
    """).network("n")
    assert names(net) == [
        "stem.conv", "stem.bn",
        "stage.0.conv_bn.conv", "stage.0.conv_bn.bn", "stage.0.relu",
        "stage.1.conv_bn.conv", "stage.1.conv_bn.bn", "stage.1.relu",
        "stage.2.conv_bn.conv", "stage.2.conv_bn.bn", "stage.2.relu",
        "head.gap", "head.linear"]


def test_duplicate_segments_are_numbered(spec_text):
    net = spec_text("""
        network n:
            input 3x8x8
            conv(4, 1) relu conv(4, 1) relu bn
    """).network("n")
    assert names(net) == ["conv1", "relu1", "conv2", "relu2", "bn"]


# ---- expressions ---------------------------------------------------------------------------

@pytest.mark.parametrize("expression,value", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 // 2", 3), ("-7 // 2", -4), ("7 % 3", 1),
    ("2 ** 3 ** 2", 512), ("-2 ** 2", -4), ("int(7 / 2)", 3), ("round(2.5)", 2),
    ("ceil(3.1)", 4), ("floor(3.9)", 3), ("min(4, 2, 3)", 2), ("max([4, 9])", 9),
    ("abs(-3)", 3), ("len([1, 2, 3])", 3), ("sum([1, 2, 3])", 6),
    ("[1, 2, 3][-1]", 3), ("[1, 2] + [3]", 3), ("4 if 1 < 2 else 5", 4),
    ("4 if not (1 < 2) else 5", 5), ("1 if 2 >= 2 and 3 != 4 or false else 0", 1),
    ("divisible(32 * 1.1, 8)", 32), ("divisible(16 * 0.25, 8)", 8), ("divisible(40 * 1.4)", 56),
    ("1x7[1]", 7),
])
def test_expressions(spec_text, expression, value):
    # the value becomes a channel count: offset so negative results are positive too
    if expression.startswith("[1, 2] +"):
        expression = f"len({expression})"
    text = f"network n:\n    input 3x8x8\n    let v = {expression}\n    conv(v + 100, 1)\n"
    assert shape(spec_text(text).network("n"))[0] == value + 100


@pytest.mark.parametrize("expression,code", [
    ("1 // 0", "E0601"), ("[1][3]", "E0602"), ("true + 1", "E0603"), ("2 ** 2 ** 100", "E0604"),
    ("nope", "E0202"), ("min()", "E0603"), ("ceil(1, 2)", "E0605"), ("[1] * 2000000", "E0604"),
    ("in.q", "E0603"), ("3(1)", "E0603"),
])
def test_expression_errors(spec_text, expression, code):
    assert errors(spec_text, f"network n:\n    input 3x8x8\n    conv({expression}, 1)\n") == [code]


def test_recursive_function_is_bounded(spec_text):
    text = "def f(n) = f(n + 1)\nnetwork n:\n    input 3x8x8\n    conv(f(1), 1)\n"
    assert errors(spec_text, text) == ["E0501"]


def test_bounded_recursion_works(spec_text):
    net = spec_text("""
        def fact(n) = 1 if n <= 1 else n * fact(n - 1)
        block tower(n):
            if n > 0:
                conv(fact(n), 1) tower(n - 1)
        network n:
            input 3x8x8
            tower(4)
    """).network("n")
    assert [net.graph[x]["args"]["out"] for x in names(net)] == [24, 6, 2, 1]


def test_every_independent_error_is_reported_in_one_run(spec_text):
    codes = errors(spec_text, """
        network n:
            input 3x32x32
            conv(16, 3, strid=2)
            conv(16, 3) rleu
            linear(undefined_name)
    """)
    assert codes == ["E0205", "E0201", "E0202"]


def test_layer_limit(spec_text):
    assert errors(spec_text, "network n:\n    input 3x8x8\n    relu x 200000\n") == ["E0507"]


def test_tensor_size_limit(spec_text):
    assert errors(spec_text, "network n:\n    input 3x8x8\n    conv(2 ** 40, 1)\n") == ["E0507"]


def test_a_repeated_layer_is_worked_out_again_when_anything_differs():
    """The elaborator reuses a layer's binding and shape when the same call applies again to
    the same input shape; a value of another type, or other `with` defaults, is not the same."""
    with pytest.raises(archdsl.SpecError, match="got `4.0` \\(a float\\)"):
        archdsl.load("network n:\n    input 3x8x8\n    repeat 2 as i:\n"
                     "        conv(4 if i == 0 else 4.0, 1)\n").network("n")
    net = archdsl.load("block b:\n    conv(4, 3)\nnetwork n:\n    input 3x8x8\n"
                       "    output aux: b\n    with conv(pad=same):\n        b\n").network("n")
    assert net.output_shapes == {"output": (4, 8, 8), "aux": (4, 6, 6)}


def test_act_identity_on_a_layer_means_no_activation():
    """`act=identity` works for a layer as it does for a block's activation parameter (issue
    18: it was refused as not an activation)."""
    net = archdsl.load("network n:\n    input 3x8x8\n    conv(4, 3, act=identity)\n"
                       "    conv(4, 3, act=relu)\n").network("n")
    assert [node["kind"] for _, node in net.graph.layers()] == ["conv", "conv", "relu"]


def test_a_reference_to_a_repeated_output_name_starts_from_it():
    net = archdsl.load("network n:\n    input 8\n    output a: linear(4)\n"
                       "    output b: from a linear(2)\n").network("n")
    assert net.output_shapes == {"a": (4,), "b": (2,)}


def test_a_file_of_several_networks_needs_a_name_in_the_api_too():
    """Spec.network() without a name builds the only network, and refuses to guess among
    several, as the command line does (issue 18: it took the first)."""
    assert archdsl.load("network a:\n    input 3\n    relu\n").network().name == "a"
    with pytest.raises(archdsl.SpecError, match="defines 2 networks \\(a, b\\); name the one"):
        archdsl.load("network a:\n    input 3\n    relu\nnetwork b:\n    input 3\n"
                     "    relu\n").network()
