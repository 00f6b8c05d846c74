"""Fuzzing: archdsl answers every input with a result or a diagnostic, never anything else.

Two sources of input, both driven by hypothesis:

(a) the zoo's specs, mutated: lines deleted, duplicated, swapped or re-indented, tokens
    deleted, duplicated or swapped, numbers perturbed, stray characters inserted, the text cut;
(b) random well-formed networks built from the grammar: layers with random arguments, merges,
    repeats, blocks with parameters, `let`, `if`, `with`, side outputs.

For each, one network is elaborated and counted as `archdsl summary` would. It must either
succeed or raise SpecError whose diagnostics are rendered without error; any other exception
fails the test. Every accepted network is then checked against PyTorch itself (tests/oracle.py,
on the meta device so no memory is allocated): each layer's shape, the parameter counts and
the MACs.

The suite runs a CI-sized number of cases. The long run (documented in docs/benchmarks.md) is
    ARCHDSL_FUZZ_EXAMPLES=6000 ARCHDSL_FUZZ_LOG=fuzz.log pytest tests/test_fuzz.py
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
                                 "lrn", "table", "droppath"] * 5 + ["linear", "gap", "flatten"]))
    c = draw(st.integers(1, 12))
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
            "stride": sizes(), "pad": st.integers(0, 2), "ceil": st.just("true")})
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


@st.composite
def body(draw, indent: str, depth: int) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 11))
        if choice <= 5 or depth > 1:
            lines.append(indent + draw(steps(depth)))
        elif choice in (6, 7):
            op = draw(st.sampled_from(["add", "concat", "mul"]))
            lines.append(f"{indent}{op}:")
            for _ in range(draw(st.integers(2, 3))):
                branch = "identity" if draw(st.integers(0, 3)) == 0 else draw(steps(depth + 1))
                lines.append(f"{indent}    branch: {branch}")
        elif choice == 8:
            lines.append(f"{indent}if in.c {draw(st.sampled_from(['>', '<=', '=='])) } "
                         f"{draw(st.integers(1, 8))}:")
            lines += draw(body(indent + "    ", depth + 1))
            lines.append(f"{indent}else:")
            lines += draw(body(indent + "    ", depth + 1))
        elif choice == 9:
            lines.append(f"{indent}with conv(bias=false, pad=same), bn(eps=0.001):")
            lines += draw(body(indent + "    ", depth + 1))
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
def random_network(draw) -> str:
    unit = "block unit(c, s=1):\n    conv(c, 3, stride=s, pad=same) bn relu\n"
    if draw(st.integers(0, 5)) == 0:  # a multilayer perceptron
        lines = [unit, "network n:", f"    input {draw(st.integers(1, 64))}"]
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                lines.append("    " + draw(vector_steps()))
            else:
                lines += ["    add:", f"        branch: {draw(vector_steps())}",
                          "        branch: identity"]
        return "\n".join(lines) + "\n"
    shape = f"{draw(st.integers(1, 6))}x{draw(st.integers(4, 32))}x{draw(st.integers(4, 32))}"
    lines = [unit, "network n:", f"    input {shape}"]
    lines += draw(body("    ", 0))
    if draw(st.booleans()):
        lines.append("    output aux: flatten linear(3)")
        lines += draw(body("    ", 1))
    lines.append("    " + draw(st.sampled_from(["", "gap linear(10)", "flatten FC-10 soft-max",
                                                  "gap flatten linear(5) relu linear(2)"])))
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=random_network())
def test_random_networks_agree_with_torch(text):
    net, _ = answer(text, 0)
    oracle(net)


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
