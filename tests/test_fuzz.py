"""Fuzzing: archdsl answers every input with a result or a diagnostic, never anything else.

Four sources of input, all driven by hypothesis:

(a) the zoo's specs, mutated: lines deleted, duplicated, swapped or re-indented, tokens
    deleted, duplicated or swapped, numbers perturbed, stray characters inserted, the text cut;
(b) random well-formed networks built from the grammar: layers with random arguments, merges,
    repeats, blocks with parameters, `let`, `if`, `with`, side outputs;
(c) value-heavy programs: long, nested and shared lists, strings, rounding, comparisons,
    built in loops and recursive functions, then printed (in messages, as a layer's wrong
    argument, and in block titles) — what a hostile spec uses to make archdsl work hard;
(d) `use` of files that are not plain spec files: links to secrets, to /proc and /dev, to
    folders outside, dangling links and loops of links, FIFOs, folders named *.arch.

For each, one network is elaborated and counted as `archdsl summary` would. It must either
succeed or raise SpecError whose diagnostics are rendered without error; any other exception
fails the test. Every accepted network is then checked against PyTorch itself (tests/oracle.py,
on the meta device so no memory is allocated): each layer's shape, the parameter counts and
the MACs.

The suite runs a CI-sized number of cases. The long run (documented in docs/benchmarks.md) is
    ARCHDSL_FUZZ_EXAMPLES=6000 ARCHDSL_FUZZ_LOG=fuzz.log pytest tests/test_fuzz.py
(c) and (d) must also never take long (a hang is caught by an alarm and fails the case) nor
quote a file they should not read.
or simply `.venv/bin/python benchmarks/fuzz.py --write`, which also records the slowest case.
"""

import json
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import SpecError
from conftest import SPECS
from oracle import check_against_torch

EXAMPLES = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "300"))
LOG = os.environ.get("ARCHDSL_FUZZ_LOG")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LOG,
                suppress_health_check=list(HealthCheck))

ZOO = {p.name: p.read_text() for p in sorted(SPECS.glob("*.arch"))}


def answer(text: str, choice: int):
    """What `archdsl summary` does with a spec: parse, pick a buildable network, elaborate,
    count, render the summary or the diagnostics. Returns (network or None, seconds)."""
    start = time.perf_counter()
    net, code = None, "ok"
    try:
        spec = archdsl.load(text)
        names = spec.concrete_networks()
        if names:
            net = spec.network(names[choice % len(names)])
            net.summary()
    except SpecError as error:
        assert error.diagnostics
        for d in error.diagnostics:  # renders as text and as JSON
            assert re.fullmatch(r"E0\d{3}", d.code), d.code
            assert d.render().strip() and json.dumps(d.to_json())
        net, code = None, error.diagnostics[0].code
    seconds = time.perf_counter() - start
    if LOG:
        with open(LOG, "a") as log:
            log.write(f"{seconds:.4f}\t{code}\t{len(text)}\n")
        if seconds > 1:  # kept for whoever looks into it
            with open(LOG + ".slow", "a") as slow:
                slow.write(f"# {seconds:.2f} s, {code}\n{text}\n\n")
    return net, seconds


def oracle(net):
    """Accepted networks agree with PyTorch (on the meta device: shapes, no memory)."""
    if net is None:
        return
    check_against_torch(net, device="meta")


# ---- (a) mutated zoo specs -----------------------------------------------------------------

TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?(?:e-?\d+)?|\S")
NUMBER = re.compile(r"\b\d+\b")
NUMBERS = st.sampled_from(["0", "1", "2", "3", "7", "64", "-1", "1000", "100000", "2 ** 40",
                           "0.5", "true", "none", "[]", "[1, 2]"])
CHARS = st.sampled_from(list("()[]{}:,=+-*/%<>.x#\"'\t$!@ \n") + ["\n    ", "    "])


@st.composite
def mutation(draw, text: str) -> str:
    lines = text.split("\n")
    kind = draw(st.sampled_from(["delete_line", "duplicate_line", "swap_lines", "indent",
                                 "delete_token", "duplicate_token", "swap_tokens", "number",
                                 "insert_char", "truncate"]))
    if kind in ("delete_line", "duplicate_line", "swap_lines", "indent"):
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete_line":
            del lines[i]
        elif kind == "duplicate_line":
            lines.insert(i, lines[i])
        elif kind == "swap_lines":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = draw(st.sampled_from(["", " ", "    ", "        "])) + lines[i].lstrip()
        return "\n".join(lines)
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if kind == "insert_char":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(CHARS) + text[at:]
    if kind == "number":
        spans = [m.span() for m in NUMBER.finditer(text)]
        if not spans:
            return text
        a, b = draw(st.sampled_from(spans))
        return text[:a] + draw(NUMBERS) + text[b:]
    spans = [m.span() for m in TOKEN.finditer(text)]
    if not spans:
        return text
    a, b = draw(st.sampled_from(spans))
    if kind == "delete_token":
        return text[:a] + text[b:]
    if kind == "duplicate_token":
        return text[:b] + " " + text[a:b] + text[b:]
    k = spans.index((a, b))
    if k + 1 >= len(spans):
        return text
    c, d = spans[k + 1]
    return text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]


@st.composite
def mutated_spec(draw) -> str:
    text = ZOO[draw(st.sampled_from(sorted(ZOO)))]
    for _ in range(draw(st.integers(1, 3))):
        text = draw(mutation(text))
    return text


@FUZZ
@given(text=mutated_spec(), choice=st.integers(0, 50))
def test_mutated_zoo_specs_get_an_answer(text, choice):
    net, _ = answer(text, choice)
    if net is not None and net.macs < 2e9:  # larger ones are checked unmutated in test_specs
        oracle(net)


# ---- (b) random well-formed networks -------------------------------------------------------

ACTIVATIONS = ["relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "leakyrelu(0.1)",
               "elu", "mish"]


def pad_arg():
    return st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2).map(str),
                     st.sampled_from(["[0, 1]", "1x2"]))


def sizes():  # a kernel, stride or window: one number or per axis
    return st.one_of(st.integers(1, 5).map(str),
                     st.tuples(st.integers(1, 4), st.integers(1, 4)).map(lambda t: f"{t[0]}x{t[1]}"))


def optional_args(draw, named: dict) -> list[str]:
    """Each named argument (a strategy for its text) given or left to its default."""
    return [f"{name}={draw(value)}" for name, value in named.items() if draw(st.booleans())]


@st.composite
def layer_step(draw) -> str:
    # layers that make a vector are rare, so that most networks stay convolutional to the head
    kind = draw(st.sampled_from(["conv", "conv", "conv", "dwconv", "sepconv", "bn", "bn", "act",
                                 "act", "maxpool", "avgpool", "dropout", "zeropad", "identity",
                                 "lrn", "table", "droppath", "modern"] * 5
                                + ["linear", "gap", "flatten"]))
    c = draw(st.integers(1, 12))
    if kind == "modern":  # the layer kinds of issue 16, on maps
        return draw(st.sampled_from([
            f"groupnorm({draw(st.integers(1, 3))})", "instancenorm", "layernorm",
            f"upsample({draw(st.sampled_from(['2', '1.5', '[1, 2]']))})",
            "upsample(2, mode=\"linear\")",
            f"upconv({c}, {draw(st.integers(1, 3))}, stride={draw(st.integers(1, 2))})",
            f"channels({draw(st.integers(0, 2))}, {draw(st.integers(1, 6))})",
            f"channel_shuffle({draw(st.integers(1, 3))})", "pixelshuffle(2)",
            "adaptive_avgpool(2)", "gmp"]))
    if kind == "conv":
        args = [str(c), draw(sizes())] + optional_args(draw, {
            "stride": sizes(), "pad": pad_arg(), "dilation": st.integers(1, 2),
            "groups": st.sampled_from([1, 2, 3, 4]), "bias": st.sampled_from(["true", "false"]),
            "act": st.sampled_from(ACTIVATIONS[:4])})
        return f"conv({', '.join(args)})"
    if kind == "dwconv":
        return f"dwconv({draw(sizes())}, stride={draw(st.integers(1, 2))}, pad={draw(pad_arg())})"
    if kind == "sepconv":
        return f"sepconv({c}, {draw(st.integers(1, 3))}, pad={draw(pad_arg())})"
    if kind == "linear":
        return f"linear({draw(st.integers(1, 40))}" + (", bias=false)" if draw(st.booleans()) else ")")
    if kind == "act":
        return draw(st.sampled_from(ACTIVATIONS))
    if kind in ("maxpool", "avgpool"):
        args = [draw(sizes())] + optional_args(draw, {
            "stride": sizes(), "ceil": st.just("true"),
            "pad": st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"]))})
        return f"{kind}({', '.join(args)})"
    if kind == "dropout":
        return f"dropout({draw(st.sampled_from(['0', '0.1', '0.5']))})"
    if kind == "droppath":
        return f"droppath({draw(st.sampled_from(['0', '0.2']))})"
    if kind == "zeropad":
        return f"zeropad({draw(st.integers(0, 2))})"
    if kind == "lrn":
        return f"lrn({draw(st.integers(1, 5))})"
    if kind == "table":
        return draw(st.sampled_from([f"conv3-{c}", f"conv1-{c}", f"FC-{c}", "maxpool", "soft-max"]))
    return kind


@st.composite
def steps(draw, depth: int) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 9))
        if choice < 7 or depth > 1:
            parts.append(draw(layer_step()))
        elif choice == 7:
            parts.append(f"[{draw(steps(depth + 1))}] x {draw(st.integers(1, 3))}")
        else:
            parts.append(f"{draw(layer_step())} x {draw(st.integers(1, 3))}")
    return " ".join(parts)


# names for labels and the references to them: some defined, some not, some later
TENSORS = st.sampled_from(["t0", "t1", "t2", "t3"])


def source(draw, named=()) -> str:
    """A line's or branch's start: the flowing tensor, or `from` a named one — mostly one
    named above (`named`), sometimes any name (unknown, or named further down)."""
    if draw(st.integers(0, 3 if named else 12)):
        return ""
    if named and draw(st.integers(0, 6)):
        return f"from {draw(st.sampled_from(sorted(named)))} "
    return f"from {draw(TENSORS)} "


def label(draw, named) -> str:
    if draw(st.integers(0, 2)):
        return ""
    name = draw(TENSORS)
    named.add(name)
    return f"{name}: "


@st.composite
def body(draw, indent: str, depth: int, named=None) -> list[str]:
    named = set() if named is None else named  # the tensors labelled so far
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 11))
        if choice <= 5 or depth > 1:
            start = source(draw, named)
            lines.append(indent + label(draw, named) + start + draw(steps(depth)))
        elif choice in (6, 7):
            op = draw(st.sampled_from(["add", "concat", "mul"]))
            lines.append(f"{indent}{op}:")
            for _ in range(draw(st.integers(2, 3))):
                branch = "identity" if draw(st.integers(0, 3)) == 0 else draw(steps(depth + 1))
                lines.append(f"{indent}    branch: {source(draw, named)}{branch}")
        elif choice == 8:
            lines.append(f"{indent}if in.c {draw(st.sampled_from(['>', '<=', '=='])) } "
                         f"{draw(st.integers(1, 8))}:")
            lines += draw(body(indent + "    ", depth + 1, named))
            lines.append(f"{indent}else:")
            lines += draw(body(indent + "    ", depth + 1, named))
        elif choice == 9:
            lines.append(f"{indent}with conv(bias=false, pad=same), bn(eps=0.001):")
            lines += draw(body(indent + "    ", depth + 1, named))
        elif choice == 10:
            lines.append(f"{indent}unit({draw(st.integers(1, 12))}, {draw(st.integers(1, 2))})")
        else:
            lines.append(f"{indent}let c = {draw(st.integers(1, 6))} * in.c if in.rank == 3 else 4")
            lines.append(f"{indent}repeat {draw(st.integers(1, 3))} as i:")
            lines.append(f"{indent}    conv(c + i, 1)")
    return lines


@st.composite
def vector_steps(draw) -> str:
    return " ".join(draw(st.lists(st.one_of(
        st.integers(1, 40).map(lambda n: f"linear({n})"), st.integers(1, 40).map(lambda n: f"FC-{n}"),
        st.sampled_from(ACTIVATIONS + ["bn", "dropout(0.2)", "identity", "softmax"])),
        min_size=1, max_size=5)))


@st.composite
def sequence_steps(draw) -> str:
    return " ".join(draw(st.lists(st.one_of(
        st.integers(1, 4).map(lambda n: f"attention({n})"),
        st.integers(1, 4).map(lambda n: f"attention({n}, causal=true, bias=false)"),
        st.integers(1, 24).map(lambda n: f"linear({n})"),
        st.tuples(st.sampled_from(["lstm", "gru"]), st.integers(1, 9), st.integers(1, 2),
                  st.booleans()).map(lambda t: f"{t[0]}({t[1]}, layers={t[2]}, "
                                               f"bidirectional={str(t[3]).lower()})"),
        st.sampled_from(["layernorm", "rmsnorm", "gelu", "dropout(0.1)", "identity", "softmax",
                         'rearrange("l d -> d l", layout="map1d") conv(4, 3) '
                         'rearrange("c l -> l c")'])), min_size=1, max_size=5)))


@st.composite
def sequence_network(draw) -> str:
    """A transformer-like network: token ids or a sequence, residual branches, free tensors,
    references; ending in a vector or a sequence."""
    length, width = draw(st.integers(1, 12)), draw(st.sampled_from([4, 6, 8, 12]))
    named, endings = set(), ["", "pick(0) linear(3)", "pick(-1)", "flatten", "linear(5)"]
    if draw(st.booleans()):
        vocab = draw(st.integers(2, 50))
        lines = ["network n:", f"    input {length} tokens of {vocab}",
                 f"    t0: embedding({width})"]
        named.add("t0")
        endings.append(f"linear({width}) linear({vocab}, bias=false, tied=t0)")  # GPT's head
    else:
        lines = ["network n:", f"    input {length}x{width} seq"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            lines.append("    " + draw(sequence_steps()))
        elif kind == 1:
            lines += [f"    {label(draw, named) or 't1: '}add:",
                      f"        branch: {source(draw, named)}identity",
                      f"        branch: {draw(sequence_steps())}"]
        elif kind == 2:
            lines += ["    concat:", f"        branch: param(1x{draw(st.sampled_from([width, 4]))})",
                      "        branch: identity"]
        elif kind == 3:
            lines += ["    add:", "        branch: identity",
                      f"        branch: param({draw(st.integers(1, 13))}x{width}, init=\"normal\")"]
        else:
            lines.append(f"    {source(draw, named)}layernorm")
    lines.append("    " + draw(st.sampled_from(endings)))
    return "\n".join(lines) + "\n"


@st.composite
def random_network(draw) -> str:
    unit = "block unit(c, s=1):\n    conv(c, 3, stride=s, pad=same) bn relu\n"
    if draw(st.integers(0, 4)) == 0:
        return draw(sequence_network())
    if draw(st.integers(0, 5)) == 0:  # a multilayer perceptron
        lines = [unit, "network n:", f"    input {draw(st.integers(1, 64))}"]
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                lines.append("    " + draw(vector_steps()))
            else:
                lines += ["    add:", f"        branch: {draw(vector_steps())}",
                          "        branch: identity"]
        return "\n".join(lines) + "\n"
    spatial = draw(st.sampled_from([1, 2, 2, 2, 3]))  # signals, images, volumes
    shape = "x".join(str(n) for n in [draw(st.integers(1, 6))] + [
        draw(st.integers(4, 32 if spatial < 3 else 8)) for _ in range(spatial)])
    named = set()
    if draw(st.integers(0, 4)) == 0:  # a second input, joined to the map's features
        meta = draw(st.integers(1, 16))
        lines = [unit, "network n:", f"    input image: {shape}", f"    input meta: {meta}"]
        lines += draw(body("    ", 0, named))
        lines += ["    gap flatten", f"    {draw(st.sampled_from(['concat', 'add', 'mul']))}:",
                  "        branch: linear(8)", f"        branch: from meta {draw(vector_steps())} "
                  "linear(8)"]
        return "\n".join(lines) + "\n"
    lines = [unit, "network n:", f"    input {shape}"]
    lines += draw(body("    ", 0, named))
    if draw(st.booleans()):
        lines.append("    output aux: flatten linear(3)")
        lines += draw(body("    ", 1, named))
    if draw(st.integers(0, 5)) == 0:  # the network ends with its outputs: all of them main
        lines += ["    output a: gap linear(4)", "    output b: flatten linear(2)"]
        return "\n".join(lines) + "\n"
    lines.append("    " + draw(st.sampled_from(["", "gap linear(10)", "flatten FC-10 soft-max",
                                                  "gap flatten linear(5) relu linear(2)"])))
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=random_network())
def test_random_networks_agree_with_torch(text):
    net, _ = answer(text, 0)
    oracle(net)


# ---- (c) value-heavy programs --------------------------------------------------------------

NUMBERS_SMALL = st.sampled_from(["0", "1", "2", "3", "7", "-1", "-3", "0.5"])
NUMBERS_BIG = st.sampled_from(["1000", "99999", "1000000", "1000001", "-30000000", "2 ** 40"])


@st.composite
def number_expr(draw, names: dict, depth: int = 0) -> str:
    """A number: literals (often large), rounding, built-ins over lists and strings."""
    choices = ["literal", "literal", "big"] if depth > 2 else \
        ["literal", "big", "round", "len", "sum", "minmax", "arith", "index"]
    kind = draw(st.sampled_from(choices + (["name"] if names.get("number") else [])))
    if kind == "literal":
        return draw(NUMBERS_SMALL)
    if kind == "big":
        return draw(NUMBERS_BIG)
    if kind == "name":
        return draw(st.sampled_from(names["number"]))
    if kind == "round":
        return f"round({draw(number_expr(names, depth + 1))}, {draw(st.one_of(NUMBERS_SMALL, NUMBERS_BIG))})"
    if kind == "len":
        inner = draw(st.one_of(list_expr(names, depth + 1), string_expr(names, depth + 1)))
        return f"len({inner})"
    if kind == "sum":
        return f"sum([{draw(number_expr(names, depth + 1))}] * {draw(NUMBERS_BIG)})"
    if kind == "minmax":
        return f"{draw(st.sampled_from(['min', 'max']))}({draw(list_expr(names, depth + 1))})"
    if kind == "index":
        return f"({draw(list_expr(names, depth + 1))})[{draw(NUMBERS_SMALL)}]"
    op = draw(st.sampled_from(["+", "-", "*", "//", "**"]))
    return f"({draw(number_expr(names, depth + 1))}) {op} ({draw(number_expr(names, depth + 1))})"


@st.composite
def string_expr(draw, names: dict, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        if names.get("string") and draw(st.booleans()):
            return draw(st.sampled_from(names["string"]))
        return '"' + draw(st.text("ab\x1b[", max_size=6)).replace('"', "") + '"'
    return f"({draw(string_expr(names, depth + 1))}) + ({draw(string_expr(names, depth + 1))})"


@st.composite
def list_expr(draw, names: dict, depth: int = 0) -> str:
    """A list: literal, repeated (often a million times), joined, nested, shared."""
    if depth > 3:
        return "[" + ", ".join(draw(st.lists(NUMBERS_SMALL, max_size=3))) + "]"
    kind = draw(st.sampled_from(["literal", "repeat", "concat", "nest", "shared"]
                                + (["name"] if names.get("list") else [])))
    if kind == "name":
        return draw(st.sampled_from(names["list"]))
    if kind == "literal":
        items = draw(st.lists(st.one_of(number_expr(names, depth + 1),
                                        string_expr(names, depth + 1)), max_size=4))
        return "[" + ", ".join(items) + "]"
    if kind == "repeat":
        return f"({draw(list_expr(names, depth + 1))}) * {draw(st.one_of(NUMBERS_SMALL, NUMBERS_BIG))}"
    if kind == "concat":
        return f"({draw(list_expr(names, depth + 1))}) + ({draw(list_expr(names, depth + 1))})"
    if kind == "nest":
        return f"[{draw(list_expr(names, depth + 1))}, {draw(list_expr(names, depth + 1))}]"
    inner = draw(list_expr(names, depth + 1))
    return f"[{inner}] * {draw(st.one_of(NUMBERS_SMALL, NUMBERS_BIG))}"


@st.composite
def value_program(draw) -> str:
    """`let`s over values, some in loops and recursive functions, then values printed: as the
    wrong argument of a layer (its message quotes it), as a block's argument (its title), as
    a network argument (the summary's header), in comparisons."""
    names: dict[str, list[str]] = {"number": [], "string": [], "list": []}
    lines = ["def grow(s, n) = s if n <= 0 else grow(s + s, n - 1)",
             "def deep(v, n) = v if n <= 0 else deep([v, v], n - 1)",
             "block blk(v):", "    relu",
             f"network n(arg={draw(list_expr(names))}):", "    input 3x8x8"]
    kinds = {"number": number_expr, "string": string_expr, "list": list_expr}
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(sorted(kinds)))
        expr = draw(kinds[kind](names))
        if kind == "string" and draw(st.booleans()):
            expr = f"grow({expr}, {draw(st.integers(0, 25))})"
        if kind == "list" and draw(st.booleans()):
            expr = f"deep({expr}, {draw(st.integers(0, 70))})"
        if draw(st.integers(0, 3)) == 0:
            lines += [f"    repeat {draw(st.sampled_from(['10', '1000', '100000']))}:",
                      f"        let v{i} = {expr}"]
        else:
            lines.append(f"    let v{i} = {expr}")
            names[kind].append(f"v{i}")
    shown = draw(st.sampled_from(sum(names.values(), []) or ["arg"]))
    lines += [draw(st.sampled_from([f"    dropout({shown})", f"    blk({shown})",
                                    f"    conv({shown}, 3)", f"    relu when {shown} == arg",
                                    f"    relu when {shown} == {shown}", f"    maxpool({shown})",
                                    "    relu"]))]
    return "\n".join(lines) + "\n"


class _Alarm(Exception):
    pass


def bounded(seconds: int):
    """Fail instead of hanging: raises _Alarm in the main thread after `seconds`."""
    import contextlib
    import signal

    @contextlib.contextmanager
    def guard():
        def ring(*_):
            raise _Alarm(f"no answer within {seconds} s")

        previous = signal.signal(signal.SIGALRM, ring)
        signal.alarm(seconds)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    return guard()


# A third as many cases as the other fuzzers: the programs that run into the work budget take
# about a second each, by design.
FUZZ_THIRD = settings(max_examples=max(EXAMPLES // 3, 20), deadline=None, derandomize=not LOG,
                      suppress_health_check=list(HealthCheck))


@FUZZ_THIRD
@given(text=value_program())
def test_value_heavy_programs_get_an_answer(text):
    with bounded(60):  # budget-bound programs answer in about a second; this catches hangs
        net, _ = answer(text, 0)
    if net is not None:
        oracle(net)


# ---- (d) `use` of links and special files --------------------------------------------------

SECRET = "TOPSECRET the first line of a file archdsl must not quote"
TARGETS = ["lib.arch", "sub/inner.arch", "link_in.arch", "link_secret.arch", "link_out.arch",
           "link_proc.arch", "link_dev.arch", "dangling.arch", "loop_a.arch", "fifo.arch",
           "folder.arch", "../outside/blocks.arch", "/etc/passwd", "secret.txt", "missing.arch",
           "{tmp}/outside/blocks.arch", "./lib.arch", "sub/../lib.arch", "link_dir/lib.arch"]


def _plant(root: Path) -> Path:
    """A spec folder full of traps, next to a folder outside it and a secret."""
    import os

    spec, outside = root / "spec", root / "outside"
    (spec / "sub").mkdir(parents=True)
    outside.mkdir()
    block = "block b:\n    relu\n"
    (spec / "lib.arch").write_text(block)
    (spec / "sub" / "inner.arch").write_text(block)
    (outside / "blocks.arch").write_text(block)
    (root / "secret.txt").write_text(SECRET + "\n")
    (spec / "secret.txt").write_text(SECRET + "\n")
    links = {"link_in.arch": spec / "lib.arch", "link_secret.arch": root / "secret.txt",
             "link_out.arch": outside / "blocks.arch", "link_proc.arch": Path("/proc/self/environ"),
             "link_dev.arch": Path("/dev/zero"), "dangling.arch": spec / "nowhere.arch",
             "loop_a.arch": spec / "loop_b.arch", "loop_b.arch": spec / "loop_a.arch",
             "link_dir": outside}
    for name, target in links.items():
        (spec / name).symlink_to(target)
    os.mkfifo(spec / "fifo.arch")
    (spec / "folder.arch").mkdir()
    return spec


@FUZZ_THIRD
@given(uses=st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3),
       allow=st.booleans(), via_link=st.booleans())
def test_use_of_links_and_special_files_never_leaks_or_hangs(uses, allow, via_link):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        spec = _plant(root)
        lines = [f'use "{u.format(tmp=folder)}"' for u in uses]
        (spec / "n.arch").write_text("\n".join(lines) + "\nnetwork n:\n    input 3x8x8\n    relu\n")
        path = spec / "n.arch"
        if via_link:  # the spec itself reached through a link
            (root / "n_link.arch").symlink_to(path)
            path = root / "n_link.arch"
        try:
            with bounded(60):
                archdsl.load(path, allow_use=[root / "outside"] if allow else []).network("n")
        except SpecError as error:
            text = "\n".join(d.render() for d in error.diagnostics)
            assert SECRET not in text and "PATH=" not in text
            assert all(d.code in ("E0206", "E0207", "E0204", "E0507") for d in error.diagnostics), text


# ---- (e) the language server ---------------------------------------------------------------
# The same inputs, typed into an editor: `archdsl lsp` (a subprocess, over stdio) publishes
# diagnostics for each version (archdsl's codes only) and answers every request at any place —
# hover, completion, signature help, definition, references, inlay hints, symbols, semantic
# tokens, formatting, rename — without an internal error, and keeps answering.

FUZZ_LSP = settings(max_examples=max(EXAMPLES // 4, 20), deadline=None, derandomize=not LOG,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def server():
    from lsp_client import Client

    client = Client()
    client.uri = None
    yield client
    assert client.close() == 0
    assert b"Traceback" not in b"".join(client.stderr)


@FUZZ_LSP
@given(text=st.one_of(mutated_spec(), random_network(), value_program()),
       where=st.integers(0, 10 ** 6))
def test_the_language_server_answers_every_input(server, text, where):
    if server.uri is None:  # one buffer, never saved, in the zoo's folder (its `use`s work)
        server.uri = server.open(SPECS / "_fuzzed_.arch", text)
    else:
        server.change(server.uri, text)
    uri = server.uri
    for d in server.diagnostics(uri, server.versions[uri], timeout=60):
        assert re.fullmatch(r"E0\d{3}", d["code"]), d
    lines = text.split("\n")
    line = where % len(lines)
    at = server.at(uri, line, (where // len(lines)) % (len(lines[line]) + 1))
    whole = {"start": {"line": 0, "character": 0}, "end": {"line": len(lines), "character": 0}}
    document = {"textDocument": {"uri": uri}}
    for method, params in [
            ("textDocument/hover", at), ("textDocument/completion", at),
            ("textDocument/signatureHelp", at), ("textDocument/definition", at),
            ("textDocument/references", {**at, "context": {"includeDeclaration": True}}),
            ("textDocument/prepareRename", at),
            ("textDocument/inlayHint", {**document, "range": whole}),
            ("textDocument/documentSymbol", document),
            ("textDocument/semanticTokens/full", document),
            ("textDocument/formatting", {**document, "options": {"tabSize": 4,
                                                                 "insertSpaces": True}})]:
        server.request(method, params, timeout=60)
    logged = []
    while not server.notifications.empty():
        message = server.notifications.get()
        if message.get("method") == "window/logMessage":
            logged.append(message["params"]["message"])
    assert not logged, logged[0]


# ---- a few fixed cases the fuzzers found, kept as regressions ------------------------------

@pytest.mark.parametrize("text", [
    "network n:\n    input 3x8x8\n    relu)\n",                           # unmatched bracket
    "network n(a=1):\n    input 3x8x8\n    conv(2 ** 2 ** 100, 1)\n",      # power tower
    "network n:\n    input 3x8x8\n" + "    " + "-" * 30000 + "1\n",        # operator chain
    "network a = a()\n",                                                   # self variant
    "network n:\n    input 6x32x32\n    maxpool(2 ** 40, pad=same)\n",     # a padded input of 2**81
    "network n:\n    input 3x8x8\n    let xs = [1] * 10000000\n    conv(xs[0], 1)\n",
])
def test_regressions(text):
    net, _ = answer(text, 0)
    assert net is None


def test_random_command_lines_never_end_in_an_internal_error():
    """A few dozen of benchmarks/cli_fuzz.py's random command lines (it runs 2,000): every
    one ends with a status that is not 3, and prints no traceback."""
    import sys

    sys.path.insert(0, str(SPECS.parent / "benchmarks"))
    try:
        from cli_fuzz import run_cases
    finally:
        sys.path.pop(0)
    result = run_cases(int(os.environ.get("ARCHDSL_CLI_FUZZ_CASES", 60)), seed=1)
    assert not result["failures"], result["failures"][:3]
    assert 3 not in result["statuses"]
