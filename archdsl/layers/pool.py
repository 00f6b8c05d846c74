"""Pooling: maxpool, avgpool (windows), gap, gmp and adaptive_avgpool (global), on maps of
any rank: each runs in its input's (MaxPool1d/2d/3d...)."""

from __future__ import annotations

import math

from ..shapes import MAPS
from .conv import (kernel_text, resolve_padding, resolve_windows, stride_text, torch_class,
                   torch_padding, window_shape)
from .registry import LayerKind, Params, Param, ShapeError, TorchModule, numel, register
from .types import Bool, Optional, Padding, Sizes


class WindowPool(LayerKind):
    output_disposable = True  # its backward does not read its output
    family = "pool"
    doc_extra = ("The kernel defaults to 2 (Keras' default, and the tables' `maxpool`); the "
                 "stride defaults to the kernel; `ceil=true` is PyTorch's ceil_mode.")
    params = (
        Param("kernel", Sizes(), 2, "window size"),
        Param("stride", Optional(Sizes()), None, "step of the window; defaults to the kernel"),
        Param("pad", Padding(), 0, "`same`, `valid`, or pixels per side"),
        Param("ceil", Bool(), False, "round the output size up (PyTorch's ceil_mode)"),
    )
    accepts = MAPS
    torch_base = ""  # MaxPool, AvgPool: the class for the input's rank is chosen by torch_class
    pad_value = 0.0

    def resolve(self, a, x):
        return resolve_windows(a, x, ("kernel", "stride", "pad"))

    def stride(self, a):
        return a["stride"] or a["kernel"]

    def pads(self, a):
        return resolve_padding(a["pad"], a["kernel"])

    def shape(self, a, x):
        pads = self.pads(a)
        if a["pad"] not in ("same", "valid") and any(
                before > k // 2 for (before, _), k in zip(pads, a["kernel"])):
            raise ShapeError(f"`{self.name}` padding {kernel_text(a['pad'])} is more than half "
                             f"its {kernel_text(a['kernel'])} window",
                             help="PyTorch allows at most kernel // 2", arg="pad", code="E0304")
        out = window_shape(self.name, x, a["kernel"], self.stride(a), (1,) * len(a["kernel"]),
                           pads, a["ceil"])
        return x.like((x[0], *out))

    def params_count(self, a, x):
        return Params()

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return numel(y) * math.prod(a["kernel"])  # one comparison or add per window tap

    def torch_kwargs(self, a, padding):
        return dict(kernel_size=a["kernel"], stride=self.stride(a), padding=padding,
                    ceil_mode=a["ceil"])

    def torch(self, a, x, y):
        padding, pre = torch_padding(self.pads(a))
        kwargs = self.torch_kwargs(a, padding)
        if pre:  # uneven padding, applied before the pool
            pre, kwargs["ceil_mode"] = (self.explicit_pads(a, x, y),), False
        return TorchModule(torch_class(self.torch_base, x), kwargs,
                           pre=tuple(("pad", p, self.pad_value) for p in pre))

    def explicit_pads(self, a, x, y) -> tuple[int, ...]:
        """The sides to pad explicitly before the pool, as F.pad takes them (last axis
        first). In ceil mode PyTorch lets the last window start in padding it was given as
        input, so instead the end of each axis is padded far enough for floor mode to give
        exactly `y`'s windows (the extra pixels fill only the overhang that ceil mode allows,
        which maxima and AvgPoolSame's averages leave out)."""
        pads = list(self.pads(a))
        if a["ceil"]:
            for axis, (k, s) in enumerate(zip(a["kernel"], self.stride(a))):
                before, after = pads[axis]
                reach = (y[axis + 1] - 1) * s + k - x[axis + 1] - before
                pads[axis] = (before, max(after, reach))
        return tuple(side for before_after in reversed(pads) for side in before_after)

    def describe(self, a):
        return f"{self.name} {kernel_text(a['kernel'])}{stride_text(self.stride(a))}"


@register
class MaxPool(WindowPool):
    name = "maxpool"
    aliases = ("maxpool2d",)
    torch_base = "MaxPool"
    pad_value = float("-inf")
    doc = "Max pooling (torch.nn.MaxPool1d/2d/3d by the map's rank). " + WindowPool.doc_extra

    def saved_extra(self, a, x, y):
        return ((numel(y), "int64"),)  # where each maximum was


@register
class AvgPool(WindowPool):
    name = "avgpool"
    aliases = ("avgpool2d",)
    torch_base = "AvgPool"
    doc = ("Average pooling (torch.nn.AvgPool1d/2d/3d). With `pad=same` the padded pixels are left out "
           "of each average, as Keras does. " + WindowPool.doc_extra)

    def torch_kwargs(self, a, padding):
        kwargs = super().torch_kwargs(a, padding)
        kwargs["count_include_pad"] = a["pad"] != "same"
        return kwargs

    def torch(self, a, x, y):
        if a["pad"] == "same" and any(before != after for before, after in self.pads(a)):
            # uneven `same` padding (an even kernel): PyTorch's AvgPool2d pads evenly, and
            # an explicit zero pad before it would count the zeros in the averages
            return TorchModule("archdsl.backends.torch_modules.AvgPoolSame",
                               dict(kernel_size=a["kernel"], stride=self.stride(a),
                                    padding=self.explicit_pads(a, x, y)))
        return super().torch(a, x, y)


@register
class GlobalAvgPool(LayerKind):
    output_disposable = True  # its backward does not read its output
    name = "gap"
    aliases = ("global_avgpool",)
    family = "pool"
    doc = ("Global average pooling to Cx1x1 (torch.nn.AdaptiveAvgPool2d(1); Cx1 and Cx1x1x1 on "
           "other maps). A following `linear` flattens it; a following 1x1 `conv` sees a 1x1 "
           "map (squeeze-excitation).")
    accepts = MAPS
    torch_base = "AdaptiveAvgPool"
    saves = ()  # PyTorch averages to 1x1 with mean(), whose backward needs only sizes

    def shape(self, a, x):
        return x.like((x[0],) + (1,) * len(x.spatial))

    def params_count(self, a, x):
        return Params()

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return numel(x)  # one add per input element (and one divide per channel, negligible)

    def torch(self, a, x, y):
        return TorchModule(torch_class(self.torch_base, x), dict(output_size=1))

    def describe(self, a):
        return "global avgpool"


@register
class GlobalMaxPool(GlobalAvgPool):
    name = "gmp"
    aliases = ("global_maxpool",)
    doc = "Global max pooling to Cx1x1 (torch.nn.AdaptiveMaxPool2d(1)), on maps of any rank."
    torch_base = "AdaptiveMaxPool"
    saves = ("input",)

    def saved_extra(self, a, x, y):
        return ((numel(y), "int64"),)

    def describe(self, a):
        return "global maxpool"


def _adaptive_windows(size: int, out: int) -> int:
    """Total window length over the outputs of PyTorch's adaptive pooling along one axis
    (window i spans floor(i*size/out) to ceil((i+1)*size/out)). In closed form, so that a
    huge width costs nothing: the sum of the ceilings exceeds that of the floors by `size`,
    plus one for every i+1 whose window end is not a whole number (out - gcd of the two)."""
    return size + out - math.gcd(size, out)


@register
class AdaptiveAvgPool(LayerKind):
    output_disposable = True  # its backward does not read its output
    name = "adaptive_avgpool"
    family = "pool"
    doc = ("Average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d): "
           "`adaptive_avgpool(4)` gives Cx4x4 whatever the input's size, as torchvision's "
           "GoogLeNet auxiliary heads, AlexNet and VGG do; a smaller input repeats pixels "
           "(the windows overlap).")
    params = (Param("size", Sizes(), doc="output sizes: 4, or 6x6"),)
    accepts = MAPS

    def resolve(self, a, x):
        return resolve_windows(a, x, ("size",))

    def shape(self, a, x):
        # an input smaller than the output is fine, as in PyTorch: its windows overlap (a 5x6
        # map pooled to 7x7 repeats some pixels; torchvision's VGG at 160x192)
        return x.like((x[0], *a["size"]))

    def params_count(self, a, x):
        return Params()

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        # one add per window tap (windows may overlap), exactly as PyTorch computes them
        return x[0] * math.prod(_adaptive_windows(n, o) for n, o in zip(x.spatial, a["size"]))

    def torch(self, a, x, y):
        return TorchModule(torch_class("AdaptiveAvgPool", x), dict(output_size=a["size"]))

    def onnx_one_size(self, a, x):
        if any(s != 1 for s in a["size"]):  # to 1x1 it is ONNX's GlobalAveragePool
            return ("ONNX has no adaptive pooling (PyTorch writes it as a pool with a fixed "
                    "window)")
        return None

    def describe(self, a):
        return f"adaptive avgpool {kernel_text(a['size'])}"
