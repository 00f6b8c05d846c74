"""Every layer kind against PyTorch: shape, parameters, running statistics and MACs.

Each registered kind must have examples here (a test fails when one is missing), including
the hard cases: non-square kernels, `same` padding at stride 2 with odd and even kernels
(asymmetric), dilation, groups, ceil mode, and vector inputs.
"""

import pytest
import torch

import archdsl
from archdsl.layers import LAYERS
from oracle import check_against_torch

# kind -> [(input shape, steps)]
EXAMPLES = {
    "conv": [
        ("4x50", "conv(8, 5, stride=2, pad=same)"),  # 1-D
        ("2x6x9x9", "conv(4, 3, stride=2, pad=same)"),  # 3-D
        ("2x6x9x9", "conv(4, 1x3x3, pad=[0, 1, 1])"),
        ("3x32x32", "conv(16, 3)"),
        ("3x32x32", "conv(16, 3, stride=2, pad=same)"),
        ("3x33x31", "conv(16, 4, stride=2, pad=same)"),  # even kernel: asymmetric padding
        ("8x17x17", "conv(16, 1x7, pad=same)"),
        ("8x17x17", "conv(16, 7x1, pad=[3, 0], bias=false)"),
        ("8x20x20", "conv(16, 3, dilation=2, pad=same)"),
        ("8x20x20", "conv(16, 3, groups=4, stride=3)"),
        ("3x227x227", "conv(96, 11, stride=4)"),
        ("3x9x9", "conv3-64"),
        ("4x9x9", "conv(8, 3, act=relu)"),
    ],
    "dfl": [
        ("64x100", "dfl"),
        ("32x7", "dfl(8)"),
    ],
    "dwconv": [
        ("8x40", "dwconv(4, pad=same)"),
        ("4x5x8x8", "dwconv(3, stride=2)"),
        ("8x16x16", "dwconv(3, pad=same)"),
        ("8x16x16", "dwconv(5, stride=2, pad=same, mult=2, bias=false)"),
    ],
    "sepconv": [
        ("8x16x16", "sepconv(32, 3, pad=same)"),
        ("8x15x15", "sepconv(32, 3, stride=2, pad=same, bias=false, mult=2)"),
    ],
    "linear": [("10x32", "linear(16)"), ("10x32 seq", "linear(8, bias=false)"),
               ("4x5x12 grid", "linear(6)"), ("3x8x8", "linear(10)"), ("100", "linear(20, bias=false)"), ("64", "FC-4096")],
    "bn": [("4x30", "bn"), ("4x3x6x6", "bn"), ("8x5x5", "bn"), ("100", "bn"), ("8x5x5", "bn(affine=false, eps=0.001)"),
           ("8x5x5", "bn(frozen=true)"), ("4x3x6x6", "bn(frozen=true)")],
    "lrn": [("16x20", "lrn"), ("16x8x8", "lrn"), ("16x8x8", "LRN(size=3, k=2)")],
    "dropout": [("7x16 seq", "dropout(0.1)"), ("3x4x8 grid", "dropout(0.1)"), ("8x5x5", "dropout(0.3)"), ("100", "dropout")],
    "droppath": [("8x5x5", "droppath(0.2)"), ("3x4x8 grid", "droppath(0.1)")],
    "maxpool": [
        ("4x31", "maxpool(3, stride=2, pad=1)"),
        ("2x7x8x8", "maxpool(2)"),
        ("2x7x8x9", "maxpool(2, pad=same)"),
        ("8x32x32", "maxpool"),
        ("8x55x55", "maxpool(3, stride=2)"),
        ("8x56x56", "maxpool(3, stride=2, pad=1)"),
        ("8x147x147", "maxpool(3, stride=2, pad=same)"),
        ("8x13x13", "maxpool(2, pad=same)"),  # even window, asymmetric padding
        ("8x14x14", "maxpool(3, stride=2, ceil=true)"),
    ],
    "avgpool": [
        ("4x31", "avgpool(4, stride=2, pad=same)"),  # uneven `same`, 1-D
        ("2x7x8x8", "avgpool(2, stride=1, pad=same)"),
        ("8x56x56", "avgpool(2)"),
        ("8x7x7", "avgpool(7, stride=1)"),
        ("8x15x15", "avgpool(3, stride=2, pad=same)"),
        ("8x14x14", "avgpool(3, stride=2, ceil=true)"),
    ],
    "gap": [("8x30", "gap"), ("8x3x4x5", "gap"), ("8x7x5", "gap")],
    "adaptive_avgpool": [("8x30", "adaptive_avgpool(7)"), ("8x6x6x6", "adaptive_avgpool(2x3x3)"), ("8x14x14", "adaptive_avgpool(4)"), ("8x13x7", "adaptive_avgpool(6x3)"),
                         ("8x5x6", "adaptive_avgpool(7)")],  # smaller than its output
    "gmp": [("8x30", "gmp"), ("8x7x5", "gmp")],
    "flatten": [("5x6 seq", "flatten"), ("8x7x5", "flatten"), ("3x4x5 grid", "flatten")],
    "zeropad": [("3x8x8", "zeropad(1)"), ("3x8x8", "zeropad([1, 2])"), ("3x8x8", "zeropad([0, 1, 2, 3])"),
                ("5x4x3 grid", "zeropad([0, 1, 2, 0]) linear(2)")],
    "identity": [("5x6 seq", "identity"), ("12 tokens of 100", "identity"), ("3x8x8", "identity")],
    "relu": [("3x8x8", "relu")],
    "relu6": [("3x8x8", "relu6")],
    "leakyrelu": [("3x8x8", "leakyrelu(0.2)")],
    "elu": [("3x8x8", "elu")],
    "gelu": [("5x6 seq", "gelu"), ("3x8x8", "gelu"), ("3x4x8 grid", "gelu"),
             ("5x6 seq", "gelu(approximate=\"tanh\")")],
    "silu": [("3x8x8", "silu")],
    "sigmoid": [("100", "sigmoid")],
    "tanh": [("3x8x8", "tanh")],
    "hardswish": [("3x8x8", "hardswish")],
    "hardsigmoid": [("3x8x8", "hardsigmoid")],
    "mish": [("3x8x8", "mish")],
    "softmax": [("5x6 seq", "softmax"), ("10", "softmax"), ("3x4x4", "soft-max"),
                ("3x4x5 grid", "softmax")],
    "add": [("5x8 seq", "add:\n        branch: linear(8)\n        branch: identity"), ("8x8x8", "add:\n        branch: conv(8, 3, pad=same)\n        branch: identity")],
    "mul": [("8x6x6", "mul:\n        branch: param(8x1x1, init=0.5)\n        branch: conv(8, 3, pad=1)"), ("8x8x8", "mul:\n        branch: identity\n        branch: gap conv(8, 1) sigmoid")],
    "concat": [("5x8 seq", "concat:\n        branch: param(1x8)\n        branch: identity"),
               ("3x4x8 grid", "concat:\n        branch: linear(5)\n        branch: identity"), ("6x20", "concat:\n        branch: conv(3, 1)\n        branch: identity"), ("8x8x8", "concat:\n        branch: conv(4, 1)\n        branch: maxpool(3, stride=1, pad=1)\n        branch: identity")],
    "layernorm": [("5x16 seq", "layernorm"), ("3x4x16 grid", "layernorm(eps=1e-6)"), ("16", "layernorm(eps=1e-6)"),
                  ("8x5x5", "layernorm(eps=1e-6)"), ("8x20", "layernorm(affine=false)")],
    "rmsnorm": [("5x16 seq", "rmsnorm"), ("3x4x16 grid", "rmsnorm"), ("16", "rmsnorm(eps=1e-6, affine=false)")],
    "groupnorm": [("8x5x5", "groupnorm(4)"), ("6x20", "groupnorm(1)"),
                  ("4x3x5x5", "groupnorm(2, affine=false)")],
    "instancenorm": [("8x5x5", "instancenorm"), ("6x20", "instancenorm(affine=true)"),
                     ("4x3x5x5", "instancenorm(track=true)")],
    "upsample": [("4x5x5", "upsample(2)"), ("4x5x5", "upsample(size=8x12, mode=\"linear\")"),
                 ("4x10", "upsample(1.5, mode=\"linear\")"), ("2x3x4x4", "upsample([1, 2, 2])"),
                 ("4x6x6", "upsample(2, mode=\"bilinear\", align_corners=true)")],
    "upconv": [("8x7x7", "upconv(4, 2, stride=2)"), ("8x7x7", "upconv(4, 3, stride=2, pad=1, out_pad=1)"),
               ("8x20", "upconv(4, 4, stride=2, pad=1, bias=false)"),
               ("4x3x4x4", "upconv(2, 2, stride=2, act=relu)"), ("8x5x5", "upconv(8, 3, groups=4)")],
    "pixelshuffle": [("16x5x5", "pixelshuffle(2)")],
    "channels": [("8x5x5", "channels(2, 6)"), ("8x5x5", "channels(4)"), ("10", "channels(0, 3)")],
    "channel_shuffle": [("12x4x4", "channel_shuffle(3)"), ("8x10", "channel_shuffle(2)")],
    "pick": [("5x16 seq", "pick(0)"), ("5x16 seq", "pick(-1)")],
    "param": [("5x16 seq", "add:\n        branch: identity\n        branch: param(5x16, init=\"normal\")"),
              ("3x4x8 grid", "mul:\n        branch: identity\n        branch: param(1x1x8, init=0.5)"),
              ("8", "add:\n        branch: identity\n        branch: param(8)")],
    "rearrange": [("8x4x6", 'rearrange("c h w -> (h w) c")'),
                  ("24x8 seq", 'rearrange("(h w) c -> c h w", h=4)'),
                  ("8x4x6", 'rearrange("c h w -> c w h")'),
                  ("5x16 seq", 'rearrange("l d -> d l", layout="map1d") conv(4, 3)'),
                  ("8x4x6", 'rearrange("c h w -> (c h w)")'),
                  ("8x4x6", 'rearrange("c h w -> h w c") linear(3)'),
                  ("6x8x5 grid", 'rearrange("(h a) (w b) c -> h w (b a c)", a=2, b=2) linear(4)'),
                  ("12x5 seq", 'rearrange("(h w) c -> h w c", h=3) layernorm')],
    "attention": [("10x32 seq", "attention(4)"), ("10x32 seq", "attention(2, causal=true, bias=false)"),
                  ("7x24 seq", "attention(3, dropout=0.1)")],
    "window_attention": [("14x14x32 grid", "window_attention(4)"),
                         ("14x14x32 grid", "window_attention(4, shift=3)"),
                         ("10x9x16 grid", "window_attention(2, 4, shift=2)"),  # padded
                         ("7x14x16 grid", "window_attention(2, shift=3)"),  # one axis shifted
                         ("5x6x8 grid", "window_attention(1, dropout=0.1, shift=3)"),
                         ("10x9x16 grid", "window_attention(2, 4, shift=2, v2=true)"),
                         ("14x7x32 grid", "window_attention(2, scale=0.1768)")],  # MaxViT's
    "embedding": [("12 tokens of 100", "embedding(32)"), ("12 tokens of 100", "embedding(16, vocab=120)"),
                  ("12 tokens of 100", "embedding(16, scale=4.0)"),
                  ("12 tokens of 100", "wte: embedding(16)\n    linear(100, tied=wte)")],
    "cross_attention": [("10x32 seq", "mem: linear(32)\n    from input\n    cross_attention(4, memory=mem)"),
                        # a memory twice as long as the sequence (the positions joined)
                        ("6x24 seq", "mem: concat:\n        branch: identity\n        branch: identity\n"
                                     "    from input\n    cross_attention(3, memory=mem, bias=false, dropout=0.1)"),
                        ("5x16 seq", "cross_attention(2, memory=input)")],
    "position_encoding": [("12x16 seq", "position_encoding"), ("5x8 seq", "position_encoding(base=100)")],
    "position_embedding": [("12x16 seq", "position_embedding(12)"),
                           ("5x16 seq", "position_embedding(32, std=1.0)")],
    "lstm": [("10x16 seq", "lstm(32)"), ("10x16 seq", "lstm(8, layers=2, bidirectional=true)"),
             ("6x12 seq", "lstm(5, layers=3, bias=false, dropout=0.2)")],
    "gru": [("10x16 seq", "gru(32)"), ("10x16 seq", "gru(8, layers=2, bidirectional=true)"),
            ("6x12 seq", "gru(5, bias=false)")],
}

CASES = [(kind, shape, steps) for kind, examples in EXAMPLES.items() for shape, steps in examples]


def test_every_layer_kind_has_examples():
    assert set(LAYERS) == set(EXAMPLES), set(LAYERS) ^ set(EXAMPLES)


def network(shape: str, steps: str):
    return archdsl.load(f"network t:\n    input {shape}\n    {steps}\n").network("t")


@pytest.mark.parametrize("kind,shape,steps", CASES, ids=[f"{k}:{s}" for k, _, s in CASES])
def test_layer_against_torch(kind, shape, steps):
    torch.manual_seed(0)
    net = network(shape, steps)
    assert kind in {node["kind"] for _, node in net.graph.layers()}
    check_against_torch(net)


def test_every_layer_states_all_its_facts():
    """No layer is silently counted as zero: each overrides every fact itself (checked at
    registration), documents itself, and types every parameter."""
    for kind in LAYERS.values():
        assert kind.doc, kind.name
        assert kind.family in {"conv", "linear", "norm", "activation", "pool", "structure",
                               "regularization", "merge", "resample", "attention"}, kind.name
        for p in kind.params:
            assert p.doc or kind.family == "activation", (kind.name, p.name)


def test_same_padding_gives_ceil_of_input_over_stride():
    for size in range(5, 40):
        for stride in (1, 2, 3):
            for k in (1, 2, 3, 4, 5, 7):
                net = network(f"3x{size}x{size}", f"conv(4, {k}, stride={stride}, pad=same)")
                assert net.output_shapes["output"][1] == -(-size // stride)


def test_same_padding_at_stride_two_matches_torchvision_layout():
    """Odd kernels pad k // 2 on each side, as torchvision's models do (weights stay compatible)."""
    net = network("3x224x224", "conv(64, 7, stride=2, pad=same, bias=false)")
    model = net.build()
    conv = model.conv
    assert conv.padding == (3, 3) and conv.stride == (2, 2)


# ---- pooling values against an independent computation --------------------------------------

def _pool_oracle(x, kind, kernel, stride, pads, ceil, explicit):
    """Pooling by its definition, one window at a time (numpy, float64): the max or the mean
    of the real pixels each window covers. With explicit padding (`pad=1`), avgpool counts
    the padded zeros, as PyTorch's AvgPool2d does by default; with `same` it leaves them out,
    as Keras does. Windows follow archdsl's `same` layout (odd pixel at the bottom/right)."""
    import numpy as np

    c, h, w = x.shape
    (kh, kw), (sh, sw), ((top, bottom), (left, right)) = kernel, stride, pads

    def starts(size, k, s, before, after):
        span = size + before + after - k
        count = (-(-span // s) if ceil else span // s) + 1
        if ceil and (count - 1) * s >= size + before:
            count -= 1
        return [i * s - before for i in range(count)]

    rows, cols = starts(h, kh, sh, top, bottom), starts(w, kw, sw, left, right)
    out = np.zeros((c, len(rows), len(cols)))
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            window = x[:, max(r, 0):min(r + kh, h), max(q, 0):min(q + kw, w)]
            if kind == "maxpool":
                out[:, i, j] = window.reshape(c, -1).max(axis=1)
            else:
                if explicit:  # the padded zeros count, up to the padded border
                    count = ((min(r + kh, h + bottom) - max(r, -top)) *
                             (min(q + kw, w + right) - max(q, -left)))
                else:
                    count = window.shape[1] * window.shape[2]
                out[:, i, j] = window.reshape(c, -1).sum(axis=1) / count
    return out


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("pad", ["same", "valid", "0", "1", "[0, 1]"])
def test_pooling_values_match_their_definition(kind, pad):
    """Every pooling and padding combination: values, not only shapes (an even kernel with
    `same` once averaged the zeros of its uneven padding in)."""
    import numpy as np

    from archdsl.layers.conv import resolve_padding

    rng = np.random.default_rng(0)
    checked = 0
    for size in ["2x5x5", "3x6x7", "1x8x8"]:
        for kernel in ["1", "2", "3", "4", "2x3"]:
            for stride in ["1", "2", "3"]:
                for ceil in ["false", "true"]:
                    text = (f"network n:\n    input {size}\n    {kind}({kernel}, stride={stride},"
                            f" pad={pad}, ceil={ceil})\n")
                    try:
                        net = archdsl.load(text).network("n")
                    except archdsl.SpecError:
                        continue  # a window larger than the input, or padding beyond half
                    node = net.graph[next(n for n, _ in net.graph.layers())]
                    a = node["args"]
                    pads = resolve_padding(a["pad"], a["kernel"])
                    x = rng.standard_normal(tuple(net.input_shape))
                    with torch.no_grad():
                        got = net.build().eval()(torch.tensor(x[None], dtype=torch.float64))
                    expected = _pool_oracle(x, kind, a["kernel"], a["stride"] or a["kernel"],
                                            pads, a["ceil"], explicit=pad not in ("same", "valid"))
                    assert tuple(got.shape[1:]) == expected.shape == tuple(node["shape"]), text
                    assert np.abs(got[0].numpy() - expected).max() < 1e-12, text
                    checked += 1
    assert checked > 30
