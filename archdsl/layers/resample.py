"""Layers that raise a map's resolution: upsample (nearest, linear), upconv (transposed
convolution), pixelshuffle (sub-pixel convolution's rearrangement). On maps of any rank
but pixelshuffle (2-D)."""

from __future__ import annotations

import math

from ..shapes import MAP2D, MAPS, describe as describe_shape
from .conv import kernel_text, resolve_windows, stride_text, torch_class
from .registry import (LayerKind, Params, NoCost, Param, ShapeError, TorchFunction, TorchModule,
                       numel, register, show)
from .types import ArgType, ArgumentError, Bool, Choice, Int, Optional, Sizes, TensorLabel, \
    describe_value


class Scale(ArgType):
    """A factor per spatial axis: `2`, `1.5`, or one per axis (`[1, 2]`)."""

    description = "a positive factor such as 2 or [1, 2]"

    def accept(self, value):
        factors = value if isinstance(value, (list, tuple)) else [value]
        if (1 <= len(factors) <= 3 and all(isinstance(f, (int, float)) and not isinstance(f, bool)
                                           for f in factors)):
            if min(factors) <= 0 or not all(math.isfinite(f) for f in factors):
                raise ArgumentError(f"expected {self.description}, got {describe_value(value)}",
                                    code="E0304")
            return tuple(factors) if isinstance(value, (list, tuple)) else value
        raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")


# FLOPs per output element of interpolation: 2 multiply-adds per axis interpolated
# (linear: 2 taps on 1 axis, bilinear 4 on 2, trilinear 8 on 3) — a stated convention
_LINEAR = {"linear", "bilinear", "trilinear"}


@register
class Upsample(NoCost):
    name = "upsample"
    family = "resample"
    doc = ("Upsampling by a scale factor or to a size (torch.nn.Upsample): `upsample(2)`, "
           "`upsample(size=28x28)`, or to the size of a named tensor: `upsample(like=input)` "
           "(a segmentation head's logits to the image's size, read when the module runs, so "
           "it takes any image size). `mode=\"nearest\"` (default) or `\"linear\"` (bilinear "
           "on a 2-D map, trilinear on a volume). Each output size must be a whole number: the "
           "input's size times the factor.")
    params = (
        Param("scale", Optional(Scale()), None, "factor per spatial axis"),
        Param("size", Optional(Sizes()), None, "output size per spatial axis (instead of scale)"),
        Param("like", Optional(TensorLabel()), None,
              "a named tensor (a map of the same rank) whose size to take, instead of scale"),
        Param("mode", Choice("nearest", "linear", "bilinear", "trilinear"), "nearest",
              "how new pixels are computed"),
        Param("align_corners", Bool(), False, "PyTorch's align_corners, for linear modes"),
    )
    accepts = MAPS
    shape_inputs = {"like": "size"}

    def with_shapes(self, a, x, shapes):
        if a["like"] is None:
            return a
        if a["scale"] is not None:
            raise ShapeError("`upsample` takes one of `scale`, `size` and `like`",
                             help="`like=` gives the size already", arg="like", code="E0303")
        (ref,) = shapes
        if ref.layout not in MAPS or len(ref.spatial) != len(x.spatial):
            raise ShapeError(f"`like={a['like']}` names a tensor of {describe_shape(ref)}; "
                             f"upsampling {describe_shape(x)} needs a map of the same rank",
                             help="name a tensor with the spatial sizes to reach, such as "
                                  "the image: `like=input`", arg="like", code="E0404")
        return dict(a, size=tuple(ref.spatial))

    def resolve(self, a, x):
        a = resolve_windows(a, x, ("size",))
        if a["scale"] is not None:
            a = dict(a, scale=tuple(float(f) for f in _per_axis(a["scale"], len(x.spatial))))
        return a

    def shape(self, a, x):
        if (a["scale"] is None) == (a["size"] is None):
            raise ShapeError("`upsample` needs either `scale` or `size`",
                             help="write upsample(2) or upsample(size=28x28)", arg="scale",
                             code="E0303")
        if a["mode"] != "nearest" and a["mode"] != "linear" and a["mode"] != _linear_mode(x):
            raise ShapeError(f"mode `{a['mode']}` is for another rank; the input is "
                             f"{describe_shape(x)}", help='`"linear"` picks the one for the '
                             "input's rank", arg="mode", code="E0304")
        if a["size"] is not None:
            return x.like((x[0], *a["size"]))
        out = []
        for n, f in zip(x.spatial, a["scale"]):
            if not (n * f).is_integer():
                raise ShapeError(f"`upsample` by {f:g} gives a size of {n * f:g} from {n}, not a "
                                 "whole number", help="choose a factor that gives whole sizes, "
                                 "or give the size: upsample(size=...)", arg="scale",
                                 code="E0304")
            out.append(int(n * f))
        return x.like((x[0], *out))

    def flops(self, a, x, y):
        return 0 if a["mode"] == "nearest" else numel(y) * 2 * 2 ** len(x.spatial)

    def torch(self, a, x, y):
        mode = _linear_mode(x) if a["mode"] in _LINEAR else "nearest"
        if a["like"] is not None:  # the named tensor's size, read when the module runs
            corners = f", align_corners={a['align_corners']}" if mode != "nearest" else ""
            return TorchFunction(f"F.interpolate({{}}, size={{}}.shape[-{len(x.spatial)}:], "
                                 f"mode={mode!r}{corners})")
        # Whole factors are given as factors, so the module takes other input sizes too (as
        # Ultralytics' nn.Upsample(None, 2)); it computes the same values as with the size.
        # Other factors are given as the size they produce, exactly the spec's.
        whole = a["scale"] is not None and all(f.is_integer() for f in a["scale"])
        kwargs = dict(scale_factor=a["scale"], mode=mode) if whole else \
            dict(size=tuple(y.spatial), mode=mode)
        if mode != "nearest":
            kwargs["align_corners"] = a["align_corners"]
        return TorchModule("torch.nn.Upsample", kwargs)

    def describe(self, a):
        if a["scale"]:
            factors = [f"{f:g}" for f in a["scale"]]
            how = "x" + (factors[0] if len(set(factors)) == 1 else kernel_text(factors))
        elif a["like"] is not None:
            how = f"to {a['like']}'s size"
        else:
            how = f"to {kernel_text(a['size'])}"
        return f"upsample {how}" + ("" if a["mode"] == "nearest" else f", {a['mode']}")


def _per_axis(value, axes):
    if isinstance(value, tuple):
        if len(value) != axes:
            raise ShapeError(f"`scale` gives {len(value)} factors for an input with {axes} "
                             "spatial axes", arg="scale", code="E0304")
        return value
    return (value,) * axes


def _linear_mode(x) -> str:
    return {1: "linear", 2: "bilinear", 3: "trilinear"}[len(x.spatial)]


@register
class UpConv(LayerKind):
    name = "upconv"
    autocast = "low"
    aliases = ("convtranspose", "deconv")
    family = "conv"
    accepts_act = True
    output_disposable = True
    doc = ("Transposed convolution (torch.nn.ConvTranspose1d/2d/3d by the map's rank), the "
           "U-Net decoder's `up-conv 2x2`: `upconv(512, 2, stride=2)` doubles the resolution. "
           "Output size per axis: (n - 1) * stride - 2 * pad + dilation * (kernel - 1) + "
           "out_pad + 1. Its MACs are those of the input pixels times each filter tap.")
    params = (
        Param("out", Int(1), doc="output channels"),
        Param("kernel", Sizes(), doc="kernel size"),
        Param("stride", Sizes(), 1, "upsampling step"),
        Param("pad", Sizes(0), 0, "PyTorch's padding: removed from each side of the output"),
        Param("out_pad", Sizes(0), 0, "extra rows and columns on one side of the output"),
        Param("dilation", Sizes(), 1, "spacing of the kernel taps"),
        Param("groups", Int(1), 1, "channel groups"),
        Param("bias", Bool(), True, "add a learned bias"),
    )
    accepts = MAPS

    def resolve(self, a, x):
        return resolve_windows(a, x, ("kernel", "stride", "pad", "out_pad", "dilation"))

    def shape(self, a, x):
        g = a["groups"]
        if x[0] % g or a["out"] % g:
            raise ShapeError(f"`groups={g}` must divide both the input channels ({x[0]}) and "
                             f"the output channels ({a['out']})", arg="groups", code="E0405")
        for op, s, d in zip(a["out_pad"], a["stride"], a["dilation"]):
            if op >= max(s, d):
                raise ShapeError(f"`out_pad` {op} must be smaller than the stride or the "
                                 "dilation", arg="out_pad", code="E0304")
        out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d in zip(
            x.spatial, a["kernel"], a["stride"], a["pad"], a["out_pad"], a["dilation"]))
        if min(out) < 1:
            raise ShapeError(f"`upconv` output would be {show(out)}: its padding removes more "
                             "than the output has", arg="pad", code="E0403")
        return x.like((a["out"], *out))

    def params_count(self, a, x):
        weights = x[0] * (a["out"] // a["groups"]) * math.prod(a["kernel"])
        return Params(weights + (a["out"] if a["bias"] else 0))

    def macs(self, a, x, y):
        return numel(x) * (a["out"] // a["groups"]) * math.prod(a["kernel"])

    def flops(self, a, x, y):
        return 2 * self.macs(a, x, y) + (numel(y) if a["bias"] else 0)

    def torch(self, a, x, y):
        return TorchModule(torch_class("ConvTranspose", x), dict(
            in_channels=x[0], out_channels=a["out"], kernel_size=a["kernel"],
            stride=a["stride"], padding=a["pad"], output_padding=a["out_pad"],
            groups=a["groups"], bias=a["bias"], dilation=a["dilation"]))

    def describe(self, a):
        return f"upconv {kernel_text(a['kernel'])}, {a['out']}{stride_text(a['stride'])}"


@register
class PixelShuffle(NoCost):
    name = "pixelshuffle"
    family = "resample"
    doc = ("Rearranges C*r*r channels into an r-times larger map of C channels "
           "(torch.nn.PixelShuffle; Shi et al. 2016's sub-pixel convolution).")
    params = (Param("r", Int(1), doc="upscale factor"),)
    accepts = (MAP2D,)

    def shape(self, a, x):
        r = a["r"]
        if x[0] % (r * r):
            raise ShapeError(f"`pixelshuffle({r})` needs channels divisible by {r * r}, got "
                             f"{x[0]}", arg="r", code="E0405")
        return x.like((x[0] // (r * r), x[1] * r, x[2] * r))

    def torch(self, a, x, y):
        return TorchModule("torch.nn.PixelShuffle", dict(upscale_factor=a["r"]))

    def describe(self, a):
        return f"pixelshuffle {a['r']}"
