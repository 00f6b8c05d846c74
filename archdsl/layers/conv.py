"""Convolutions: conv, dwconv (depthwise), sepconv (depthwise + pointwise, Keras' SeparableConv2D).

Padding `same` means what Keras means by the output size — ceil(input / stride) — at any stride
(PyTorch's own padding='same' refuses stride > 1). The total padding per axis is
dilation * (kernel - 1), split evenly, with the odd pixel at the bottom/right. For odd kernels
that is PyTorch's usual `padding=kernel // 2`, the layout torchvision's models use; for even
kernels the padding is asymmetric and the PyTorch backend pads explicitly before the layer.
"""

from __future__ import annotations

from ..limits import MAX_ELEMENTS
from .registry import LayerKind, Param, ShapeError, TorchModule, register, show, spatial
from .types import Bool, Int, Padding, Pair

# ---- padding and output sizes (shared with pooling) ----------------------------------------


def resolve_padding(pad, kernel, dilation=(1, 1)) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for a Padding value."""
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        th = dilation[0] * (kernel[0] - 1)
        tw = dilation[1] * (kernel[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pad
    return (ph, ph, pw, pw)


def window_out(size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
               ceil_mode: bool = False) -> int:
    """Output length of a sliding window, by PyTorch's formula (Conv2d, MaxPool2d docs)."""
    span = size + before + after - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1  # the last window must start inside the input or the leading padding
    return max(out, 0)


def window_shape(kind: str, x, kernel, stride, dilation, pads, ceil_mode=False):
    """(Ho, Wo) of a window layer over x=(C, H, W), or a ShapeError that shows both sizes."""
    c, h, w = x
    top, bottom, left, right = pads
    padded_elements = c * (h + top + bottom) * (w + left + right)
    if padded_elements > MAX_ELEMENTS:  # PyTorch would build the padded input (found by fuzzing)
        raise ShapeError(
            f"`{kind}` would pad its {show(x)} input to {show((c, h + top + bottom, w + left + right))},"
            f" more than 2**40 elements", help="use a smaller kernel or padding",
            arg="pad" if any(pads) else "kernel", code="E0507")
    ho = window_out(h, kernel[0], stride[0], dilation[0], top, bottom, ceil_mode)
    wo = window_out(w, kernel[1], stride[1], dilation[1], left, right, ceil_mode)
    if ho < 1 or wo < 1:
        ek = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
        padded = (h + top + bottom, w + left + right)
        raise ShapeError(
            f"`{kind}` output would be {ho}x{wo}: its {show(ek)} window is larger than the "
            f"{'padded ' if any(pads) else ''}input {show(padded)}",
            help="use a smaller kernel, add padding (pad=same), or give the network a larger input",
            arg="kernel", code="E0403")
    return ho, wo


def torch_padding(pads):
    """PyTorch layers pad symmetrically; asymmetric padding becomes an explicit F.pad first."""
    top, bottom, left, right = pads
    if top == bottom and left == right:
        return (top, left), ()
    return (0, 0), ((left, right, top, bottom),)


def _kernel_text(k) -> str:
    return f"{k[0]}x{k[1]}"


def _stride_text(s) -> str:
    if s == (1, 1):
        return ""
    return f", /{s[0]}" if s[0] == s[1] else f", /{s[0]}x{s[1]}"


def _conv_common():
    return (
        Param("stride", Pair(), 1, "step of the window; an int or per axis (2 or 1x2)"),
        Param("pad", Padding(), 0, "`same`, `valid`, or pixels per side (1 or [0, 3])"),
        Param("dilation", Pair(), 1, "spacing of the kernel taps"),
    )


class _Convolution(LayerKind):
    """What the three convolutions share: padding handling, and FLOPs from MACs."""
    output_disposable = True  # its backward does not read its output

    family = "conv"
    accepts_act = True

    def window(self, a, x):
        return window_shape(self.name, x, a["kernel"], a["stride"], a["dilation"],
                            resolve_padding(a["pad"], a["kernel"], a["dilation"]))

    def flops(self, a, x, y):
        # a multiply-add is 2 FLOPs; the bias adds one per output element
        return 2 * self.macs(a, x, y) + (y[0] * y[1] * y[2] if a["bias"] else 0)

    def module(self, cls, a, **kwargs):
        padding, pre = torch_padding(resolve_padding(a["pad"], a["kernel"], a["dilation"]))
        return TorchModule(cls, dict(kernel_size=a["kernel"], stride=a["stride"],
                                     padding=padding, dilation=a["dilation"], **kwargs),
                           pre=tuple(("pad", p, 0.0) for p in pre))


@register
class Conv(_Convolution):
    name = "conv"
    aliases = ("conv2d",)
    doc = ("2-D convolution (torch.nn.Conv2d). `conv(64, 3, stride=2, pad=same)`; the kernel may "
           "be non-square (`1x7`). Table notation `conv3-64` is conv(64, 3, pad=same).")
    params = (
        Param("out", Int(1), doc="output channels"),
        Param("kernel", Pair(), doc="kernel size: 3, or height x width such as 1x7"),
        *_conv_common(),
        Param("groups", Int(1), 1, "channel groups; in and out channels must be divisible"),
        Param("bias", Bool(), True, "add a learned bias"),
    )

    def shape(self, a, x):
        c, _, _ = spatial(self.name, x)
        g = a["groups"]
        if c % g or a["out"] % g:
            raise ShapeError(
                f"`groups={g}` must divide both the input channels ({c}) and the output "
                f"channels ({a['out']})", help="choose a `groups` that divides both", arg="groups",
                code="E0405")
        ho, wo = self.window(a, x)
        return (a["out"], ho, wo)

    def params_count(self, a, x):
        kh, kw = a["kernel"]
        weights = a["out"] * (x[0] // a["groups"]) * kh * kw
        return weights + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, x, y):
        kh, kw = a["kernel"]
        return y[0] * y[1] * y[2] * (x[0] // a["groups"]) * kh * kw

    def torch(self, a, x, y):
        return self.module("torch.nn.Conv2d", a, in_channels=x[0], out_channels=a["out"],
                           groups=a["groups"], bias=a["bias"])

    def describe(self, a):
        text = f"conv {_kernel_text(a['kernel'])}, {a['out']}{_stride_text(a['stride'])}"
        if a["dilation"] != (1, 1):
            text += f", dilation {a['dilation'][0]}"
        if a["groups"] != 1:
            text += f", groups {a['groups']}"
        return text


@register
class DepthwiseConv(_Convolution):
    name = "dwconv"
    doc = ("Depthwise 2-D convolution: one filter per input channel (`mult` filters with a "
           "depth multiplier), as Keras' DepthwiseConv2D; in PyTorch a Conv2d with groups=C.")
    params = (
        Param("kernel", Pair(), doc="kernel size"),
        *_conv_common(),
        Param("mult", Int(1), 1, "depth multiplier: output channels = input channels * mult"),
        Param("bias", Bool(), True, "add a learned bias"),
    )

    def shape(self, a, x):
        c, _, _ = spatial(self.name, x)
        ho, wo = self.window(a, x)
        return (c * a["mult"], ho, wo)

    def params_count(self, a, x):
        kh, kw = a["kernel"]
        out = x[0] * a["mult"]
        return out * kh * kw + (out if a["bias"] else 0), 0

    def macs(self, a, x, y):
        kh, kw = a["kernel"]
        return y[0] * y[1] * y[2] * kh * kw

    def torch(self, a, x, y):
        return self.module("torch.nn.Conv2d", a, in_channels=x[0], out_channels=y[0],
                           groups=x[0], bias=a["bias"])

    def describe(self, a):
        text = f"dwconv {_kernel_text(a['kernel'])}{_stride_text(a['stride'])}"
        return text + (f", x{a['mult']}" if a["mult"] != 1 else "")


@register
class SeparableConv(_Convolution):
    name = "sepconv"
    doc = ("Depthwise-separable convolution as Keras' SeparableConv2D: a depthwise convolution "
           "(no bias) followed by a 1x1 pointwise convolution with the bias. Stride, padding "
           "and dilation apply to the depthwise part.")
    params = (
        Param("out", Int(1), doc="output channels"),
        Param("kernel", Pair(), doc="depthwise kernel size"),
        *_conv_common(),
        Param("mult", Int(1), 1, "depth multiplier of the depthwise part"),
        Param("bias", Bool(), True, "add a learned bias after the pointwise part"),
    )

    def shape(self, a, x):
        spatial(self.name, x)
        ho, wo = self.window(a, x)
        return (a["out"], ho, wo)

    def params_count(self, a, x):
        kh, kw = a["kernel"]
        mid = x[0] * a["mult"]
        return mid * kh * kw + mid * a["out"] + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, x, y):
        kh, kw = a["kernel"]
        mid = x[0] * a["mult"]
        pixels = y[1] * y[2]
        return pixels * mid * kh * kw + pixels * mid * y[0]

    def torch(self, a, x, y):
        return self.module("archdsl.backends.torch_modules.SeparableConv2d", a,
                           in_channels=x[0], out_channels=a["out"],
                           depth_multiplier=a["mult"], bias=a["bias"])

    def describe(self, a):
        return f"sepconv {_kernel_text(a['kernel'])}, {a['out']}{_stride_text(a['stride'])}"
