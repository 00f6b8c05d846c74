"""Property tests: archdsl and PyTorch accept and reject the same window layers with the same
shapes; the expression language computes what Python computes."""

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import SpecError

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def infer(shape: str, step: str):
    """archdsl's output shape, or None when it reports an error."""
    try:
        net = archdsl.load(f"network t:\n    input {shape}\n    {step}\n").network("t")
    except SpecError:
        return None
    return tuple(net.output_shapes["output"]), net


def torch_shape(net, x):
    model = net.build().eval()
    with torch.no_grad():
        return tuple(model(x).shape[1:])


pads = st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"]))


@SETTINGS
@given(h=st.integers(1, 24), w=st.integers(1, 24), k=st.integers(1, 6), kw=st.integers(1, 6),
       stride=st.integers(1, 4), pad=pads, dilation=st.integers(1, 3), groups=st.sampled_from([1, 2]))
def test_conv_shapes_match_torch(h, w, k, kw, stride, pad, dilation, groups):
    step = f"conv(4, {k}x{kw}, stride={stride}, pad={pad}, dilation={dilation}, groups={groups})"
    result = infer(f"2x{h}x{w}", step)
    x = torch.randn(1, 2, h, w)
    conv_pad = {"same": None, "valid": 0}.get(pad, pad)
    try:
        if conv_pad is None:
            raise AssertionError("same padding is checked through archdsl's own module below")
        expected = tuple(torch.nn.Conv2d(2, 4, (k, kw), stride, conv_pad, dilation, groups)(x).shape[1:])
    except RuntimeError:
        expected = None  # torch refuses: the window does not fit
    except AssertionError:
        expected = "same"
    if expected == "same":
        assert result is not None  # `same` always fits
        shape, net = result
        assert shape == (4, -(-h // stride), -(-w // stride))
        assert torch_shape(net, x) == shape
    elif expected is None or 0 in expected:
        assert result is None
    else:
        assert result is not None and result[0] == expected


@SETTINGS
@given(h=st.integers(1, 24), k=st.integers(1, 5), stride=st.integers(1, 4),
       pad=st.integers(0, 3), ceil=st.booleans(), op=st.sampled_from(["maxpool", "avgpool"]))
def test_pool_shapes_match_torch(h, k, stride, pad, ceil, op):
    step = f"{op}({k}, stride={stride}, pad={pad}, ceil={'true' if ceil else 'false'})"
    result = infer(f"3x{h}x{h}", step)
    cls = torch.nn.MaxPool2d if op == "maxpool" else torch.nn.AvgPool2d
    try:
        expected = tuple(cls(k, stride, pad, ceil_mode=ceil)(torch.randn(1, 3, h, h)).shape[1:])
    except RuntimeError:
        expected = None
    if expected is None or 0 in expected:
        assert result is None
    else:
        assert result is not None and result[0] == expected


# ---- expressions ---------------------------------------------------------------------------

def expressions():
    leaves = st.integers(-20, 20).map(str)

    def combine(children):
        ops = st.sampled_from(["+", "-", "*", "//", "%"])
        return st.tuples(children, ops, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")

    return st.recursive(leaves, combine, max_leaves=12)


@SETTINGS
@given(expression=expressions())
def test_arithmetic_matches_python(expression):
    try:
        expected = eval(expression)  # the oracle: Python's own integer arithmetic
    except ZeroDivisionError:
        expected = None
    assume(expected is None or abs(expected) < 10**6)
    text = f"network t:\n    input 3x4x4\n    conv(({expression}) * 0 + 1, 1)\n    let v = {expression}\n    conv(abs(v) + 1, 1)\n"
    try:
        net = archdsl.load(text).network("t")
    except SpecError as error:
        assert expected is None
        assert error.diagnostics[0].code == "E0601"
        return
    assert expected is not None
    assert net.output_shapes["output"][0] == abs(expected) + 1


@SETTINGS
@given(size=st.integers(1, 400), out=st.integers(1, 400))
def test_adaptive_pooling_windows_in_closed_form(size, out):
    """The total window length of adaptive pooling, counted window by window as PyTorch lays
    them out, equals the closed form archdsl uses (so a huge width costs nothing)."""
    from archdsl.layers.pool import _adaptive_windows

    assume(out <= size)
    by_window = sum(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))
    assert _adaptive_windows(size, out) == by_window


@SETTINGS
@given(value=st.recursive(st.one_of(st.integers(-5, 5), st.booleans(), st.none(),
                                    st.text(max_size=5)),
                          lambda inner: st.lists(inner, max_size=6), max_leaves=40),
       limit=st.integers(3, 60))
def test_values_shown_cut_are_a_prefix_of_the_whole(value, limit):
    """Messages show values cut to a limit without walking them whole; what they show is
    the start of the full text."""
    from archdsl.layers.types import value_text

    whole = value_text(value, quote=True)
    cut = value_text(value, limit, quote=True)
    if len(whole) <= limit:
        assert cut == whole
    else:
        assert len(cut) == limit and cut.endswith("...") and whole.startswith(cut[:-3])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 20), w=st.integers(1, 20), window=st.integers(1, 8),
       shift=st.integers(0, 7), heads=st.sampled_from([1, 2, 4]), batch=st.integers(1, 3),
       v2=st.booleans())
def test_window_attention_equals_torchvisions(h, w, window, shift, heads, batch, v2):
    """Swin's window attention, V1 and V2, on any grid — odd, smaller than a window, not
    square — with any shift: the values of torchvision's ShiftedWindowAttention(V2) (its
    own padding, roll, mask and position bias), its weights loaded in."""
    from torchvision.models import swin_transformer

    from archdsl.backends.weights import copy_state

    assume(shift < window and (window > 1 or not v2))
    result = infer(f"{h}x{w}x16 grid", f"window_attention({heads}, {window}, shift={shift}, "
                                       f"v2={'true' if v2 else 'false'})")
    assert result is not None
    shape, net = result
    assert shape == (h, w, 16)
    torch.manual_seed(0)
    kind = swin_transformer.ShiftedWindowAttentionV2 if v2 else \
        swin_transformer.ShiftedWindowAttention
    theirs = kind(16, [window, window], [shift, shift], heads).eval()
    model = net.build().eval()
    copy_state(model, theirs)
    x = torch.randn(batch, h, w, 16)
    with torch.no_grad():
        assert (model(x) - theirs(x)).abs().max() <= 1e-5
