"""Convolutions: conv, dwconv (depthwise), sepconv (depthwise + pointwise, Keras' SeparableConv2D).

Padding `same` means what Keras means by the output size — ceil(input / stride) — at any stride
(PyTorch's own padding='same' refuses stride > 1). The total padding per axis is
dilation * (kernel - 1), split evenly, with the odd pixel at the bottom/right. For odd kernels
that is PyTorch's usual `padding=kernel // 2`, the layout torchvision's models use; for even
kernels the padding is asymmetric and the PyTorch backend pads explicitly before the layer.
"""

from __future__ import annotations

import math

from ..limits import MAX_ELEMENTS
from ..shapes import MAP2D, MAPS
from .registry import LayerKind, Params, Param, ShapeError, TorchModule, numel, register, show
from .types import Bool, Int, Padding, Sizes, per_axis

# ---- padding and output sizes (shared with pooling) ----------------------------------------


def resolve_padding(pad, kernel, dilation=None) -> tuple[tuple[int, int], ...]:
    """(before, after) per spatial axis for a resolved Padding value."""
    dilation = dilation or (1,) * len(kernel)
    if pad == "valid":
        return ((0, 0),) * len(kernel)
    if pad == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in pad)


def window_out(size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
               ceil_mode: bool = False) -> int:
    """Output length of a sliding window, by PyTorch's formula (Conv2d, MaxPool2d docs)."""
    span = size + before + after - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1  # the last window must start inside the input or the leading padding
    return max(out, 0)


def window_shape(kind: str, x, kernel, stride, dilation, pads, ceil_mode=False) -> tuple:
    """The output's spatial sizes for a window layer over the map x, or a ShapeError that
    shows both sizes."""
    spatial = x.spatial
    padded = tuple(n + before + after for n, (before, after) in zip(spatial, pads))
    if x[0] * math.prod(padded) > MAX_ELEMENTS:  # PyTorch would build the padded input
        raise ShapeError(
            f"`{kind}` would pad its {show(x)} input to {show((x[0], *padded))}, more than "
            "2**40 elements", help="use a smaller kernel or padding",
            arg="pad" if any(map(any, pads)) else "kernel", code="E0507")
    out = tuple(window_out(n, k, s, d, before, after, ceil_mode) for n, k, s, d, (before, after)
                in zip(spatial, kernel, stride, dilation, pads))
    if min(out) < 1:
        reach = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ShapeError(
            f"`{kind}` output would be {show(out)}: its {show(reach)} window is larger than the "
            f"{'padded ' if any(map(any, pads)) else ''}input {show(padded)}",
            help="use a smaller kernel, add padding (pad=same), or give the network a larger input",
            arg="kernel", code="E0403")
    return out


def torch_padding(pads) -> tuple[tuple, tuple]:
    """PyTorch layers pad symmetrically: (their padding, the explicit F.pad steps before
    them). Uneven padding becomes one F.pad, whose sides run from the last axis back."""
    if all(before == after for before, after in pads):
        return tuple(before for before, _ in pads), ()
    flat = tuple(side for before_after in reversed(pads) for side in before_after)
    return (0,) * len(pads), (flat,)


def resolve_windows(a: dict, x, names=("kernel", "stride", "dilation", "pad")) -> dict:
    """The window arguments with one size per spatial axis of the input (a kernel `3` on a
    2-D map is 3x3, on a volume 3x3x3); a list of the wrong length is an error."""
    axes = len(x.spatial)
    out = dict(a)
    for name in names:
        value = a.get(name)
        if value is None or value in ("same", "valid"):
            continue
        try:
            out[name] = per_axis(value, axes, name)
        except ValueError as error:
            raise ShapeError(str(error), arg=name, code="E0304",
                             help=f"give one size for each of the {axes} spatial axes, or "
                                  "a single number") from None
    return out


def kernel_text(k) -> str:
    return "x".join(map(str, k))


def stride_text(s) -> str:
    if all(v == 1 for v in s):
        return ""
    return f", /{s[0]}" if len(set(s)) == 1 else f", /{kernel_text(s)}"


def torch_class(base: str, x) -> str:
    """`torch.nn.Conv2d` for `Conv` on a 2-D map; Conv1d, Conv3d by the map's rank."""
    return f"torch.nn.{base}{len(x.spatial)}d"


def _conv_common():
    return (
        Param("stride", Sizes(), 1, "step of the window; an int or per axis (2 or 1x2)"),
        Param("pad", Padding(), 0, "`same`, `valid`, or pixels per side (1 or [0, 3])"),
        Param("dilation", Sizes(), 1, "spacing of the kernel taps"),
    )


class _Convolution(LayerKind):
    """What the convolutions share: windows in the input's rank, padding, FLOPs from MACs."""
    output_disposable = True  # its backward does not read its output

    family = "conv"
    accepts_act = True
    accepts = MAPS
    autocast = "low"

    def resolve(self, a, x):
        return resolve_windows(a, x)

    def window(self, a, x):
        return window_shape(self.name, x, a["kernel"], a["stride"], a["dilation"],
                            resolve_padding(a["pad"], a["kernel"], a["dilation"]))

    def flops(self, a, x, y):
        # a multiply-add is 2 FLOPs; the bias adds one per output element
        return 2 * self.macs(a, x, y) + (numel(y) if a["bias"] else 0)

    def module(self, cls, a, **kwargs):
        padding, pre = torch_padding(resolve_padding(a["pad"], a["kernel"], a["dilation"]))
        return TorchModule(cls, dict(kernel_size=a["kernel"], stride=a["stride"],
                                     padding=padding, dilation=a["dilation"], **kwargs),
                           pre=tuple(("pad", p, 0.0) for p in pre))


@register
class Conv(_Convolution):
    name = "conv"
    aliases = ("conv2d",)
    doc = ("Convolution in the input's rank (torch.nn.Conv1d, Conv2d, Conv3d on a CxL, CxHxW or "
           "CxDxHxW map). `conv(64, 3, stride=2, pad=same)`; sizes may differ per axis (`1x7`). "
           "Table notation `conv3-64` is conv(64, 3, pad=same).")
    params = (
        Param("out", Int(1), doc="output channels"),
        Param("kernel", Sizes(), doc="kernel size: 3, or height x width such as 1x7"),
        *_conv_common(),
        Param("groups", Int(1), 1, "channel groups; in and out channels must be divisible"),
        Param("bias", Bool(), True, "add a learned bias"),
    )

    def shape(self, a, x):
        c = x[0]
        g = a["groups"]
        if c % g or a["out"] % g:
            raise ShapeError(
                f"`groups={g}` must divide both the input channels ({c}) and the output "
                f"channels ({a['out']})", help="choose a `groups` that divides both", arg="groups",
                code="E0405")
        return x.like((a["out"], *self.window(a, x)))

    def params_count(self, a, x):
        weights = a["out"] * (x[0] // a["groups"]) * math.prod(a["kernel"])
        return Params(weights + (a["out"] if a["bias"] else 0))

    def macs(self, a, x, y):
        return numel(y) * (x[0] // a["groups"]) * math.prod(a["kernel"])

    def torch(self, a, x, y):
        return self.module(torch_class("Conv", x), a, in_channels=x[0], out_channels=a["out"],
                           groups=a["groups"], bias=a["bias"])

    def describe(self, a):
        text = f"conv {kernel_text(a['kernel'])}, {a['out']}{stride_text(a['stride'])}"
        if any(d != 1 for d in a["dilation"]):
            text += f", dilation {a['dilation'][0]}"
        if a["groups"] != 1:
            text += f", groups {a['groups']}"
        return text


@register
class DepthwiseConv(_Convolution):
    name = "dwconv"
    doc = ("Depthwise convolution: one filter per input channel (`mult` filters with a depth "
           "multiplier), as Keras' DepthwiseConv2D; in PyTorch a Conv1d/2d/3d with groups=C.")
    params = (
        Param("kernel", Sizes(), doc="kernel size"),
        *_conv_common(),
        Param("mult", Int(1), 1, "depth multiplier: output channels = input channels * mult"),
        Param("bias", Bool(), True, "add a learned bias"),
    )

    def shape(self, a, x):
        return x.like((x[0] * a["mult"], *self.window(a, x)))

    def params_count(self, a, x):
        out = x[0] * a["mult"]
        return Params(out * math.prod(a["kernel"]) + (out if a["bias"] else 0))

    def macs(self, a, x, y):
        return numel(y) * math.prod(a["kernel"])

    def torch(self, a, x, y):
        return self.module(torch_class("Conv", x), a, in_channels=x[0], out_channels=y[0],
                           groups=x[0], bias=a["bias"])

    def describe(self, a):
        text = f"dwconv {kernel_text(a['kernel'])}{stride_text(a['stride'])}"
        return text + (f", x{a['mult']}" if a["mult"] != 1 else "")


@register
class SeparableConv(_Convolution):
    name = "sepconv"
    doc = ("Depthwise-separable convolution as Keras' SeparableConv2D: a depthwise convolution "
           "(no bias) followed by a 1x1 pointwise convolution with the bias. Stride, padding "
           "and dilation apply to the depthwise part. On 2-D maps.")
    accepts = (MAP2D,)
    params = (
        Param("out", Int(1), doc="output channels"),
        Param("kernel", Sizes(), doc="depthwise kernel size"),
        *_conv_common(),
        Param("mult", Int(1), 1, "depth multiplier of the depthwise part"),
        Param("bias", Bool(), True, "add a learned bias after the pointwise part"),
    )

    def shape(self, a, x):
        return x.like((a["out"], *self.window(a, x)))

    def params_count(self, a, x):
        mid = x[0] * a["mult"]
        taps = math.prod(a["kernel"])
        return Params(mid * taps + mid * a["out"] + (a["out"] if a["bias"] else 0))

    def macs(self, a, x, y):
        mid = x[0] * a["mult"]
        pixels = numel(y[1:])
        return pixels * mid * math.prod(a["kernel"]) + pixels * mid * y[0]

    def saved_extra(self, a, x, y):
        return ((x[0] * a["mult"] * numel(y[1:]), "act"),)  # the depthwise part's output

    def torch(self, a, x, y):
        return self.module("archdsl.backends.torch_modules.SeparableConv2d", a,
                           in_channels=x[0], out_channels=a["out"],
                           depth_multiplier=a["mult"], bias=a["bias"])

    def describe(self, a):
        return f"sepconv {kernel_text(a['kernel'])}, {a['out']}{stride_text(a['stride'])}"
