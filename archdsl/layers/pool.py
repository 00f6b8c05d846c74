"""Pooling: maxpool, avgpool (windows), gap and gmp (global)."""

from __future__ import annotations

import math

from .conv import _kernel_text, _stride_text, resolve_padding, torch_padding, window_shape
from .registry import LayerKind, Param, ShapeError, TorchModule, numel, register, spatial
from .types import Bool, Optional, Padding, Pair


class WindowPool(LayerKind):
    output_disposable = True  # its backward does not read its output
    family = "pool"
    doc_extra = ("The kernel defaults to 2 (Keras' default, and the tables' `maxpool`); the "
                 "stride defaults to the kernel; `ceil=true` is PyTorch's ceil_mode.")
    params = (
        Param("kernel", Pair(), 2, "window size"),
        Param("stride", Optional(Pair()), None, "step of the window; defaults to the kernel"),
        Param("pad", Padding(), 0, "`same`, `valid`, or pixels per side"),
        Param("ceil", Bool(), False, "round the output size up (PyTorch's ceil_mode)"),
    )
    torch_class = ""
    pad_value = 0.0

    def stride(self, a):
        return a["stride"] or a["kernel"]

    def pads(self, a):
        return resolve_padding(a["pad"], a["kernel"])

    def shape(self, a, x):
        c, _, _ = spatial(self.name, x)
        top, bottom, left, right = self.pads(a)
        kh, kw = a["kernel"]
        if a["pad"] not in ("same", "valid") and (top > kh // 2 or left > kw // 2):
            raise ShapeError(f"`{self.name}` padding {top}x{left} is more than half its "
                             f"{kh}x{kw} window", help="PyTorch allows at most kernel // 2",
                             arg="pad", code="E0304")
        ho, wo = window_shape(self.name, x, a["kernel"], self.stride(a), (1, 1), self.pads(a),
                              a["ceil"])
        return (c, ho, wo)

    def params_count(self, a, x):
        return 0, 0

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        kh, kw = a["kernel"]
        return numel(y) * kh * kw  # one comparison (max) or add (average) per window tap

    def torch_kwargs(self, a, padding):
        return dict(kernel_size=a["kernel"], stride=self.stride(a), padding=padding,
                    ceil_mode=a["ceil"])

    def torch(self, a, x, y):
        padding, pre = torch_padding(self.pads(a))
        kwargs = self.torch_kwargs(a, padding)
        if pre:  # uneven padding, applied before the pool
            pre, kwargs["ceil_mode"] = (self.explicit_pads(a, x, y),), False
        return TorchModule(self.torch_class, kwargs,
                           pre=tuple(("pad", p, self.pad_value) for p in pre))

    def explicit_pads(self, a, x, y) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) for padding explicitly before the pool. In ceil mode
        PyTorch lets the last window start in padding it was given as input, so instead the
        bottom and right are padded far enough for floor mode to give exactly `y`'s windows
        (the extra pixels fill only the overhang that ceil mode allows, which maxima and
        AvgPool2dSame's averages leave out)."""
        top, bottom, left, right = self.pads(a)
        if a["ceil"]:
            (kh, kw), (sh, sw) = a["kernel"], self.stride(a)
            bottom = max(bottom, (y[1] - 1) * sh + kh - x[1] - top)
            right = max(right, (y[2] - 1) * sw + kw - x[2] - left)
        return (left, right, top, bottom)

    def describe(self, a):
        return f"{self.name} {_kernel_text(a['kernel'])}{_stride_text(self.stride(a))}"


@register
class MaxPool(WindowPool):
    name = "maxpool"
    aliases = ("maxpool2d",)
    torch_class = "torch.nn.MaxPool2d"
    pad_value = float("-inf")
    doc = "Max pooling (torch.nn.MaxPool2d). " + WindowPool.doc_extra


@register
class AvgPool(WindowPool):
    name = "avgpool"
    aliases = ("avgpool2d",)
    torch_class = "torch.nn.AvgPool2d"
    doc = ("Average pooling (torch.nn.AvgPool2d). With `pad=same` the padded pixels are left out "
           "of each average, as Keras does. " + WindowPool.doc_extra)

    def torch_kwargs(self, a, padding):
        kwargs = super().torch_kwargs(a, padding)
        kwargs["count_include_pad"] = a["pad"] != "same"
        return kwargs

    def torch(self, a, x, y):
        top, bottom, left, right = self.pads(a)
        if a["pad"] == "same" and (top, left) != (bottom, right):
            # uneven `same` padding (an even kernel): PyTorch's AvgPool2d pads evenly, and
            # an explicit zero pad before it would count the zeros in the averages
            return TorchModule("archdsl.backends.torch_modules.AvgPool2dSame",
                               dict(kernel_size=a["kernel"], stride=self.stride(a),
                                    padding=self.explicit_pads(a, x, y)))
        return super().torch(a, x, y)


@register
class GlobalAvgPool(LayerKind):
    output_disposable = True  # its backward does not read its output
    name = "gap"
    aliases = ("global_avgpool",)
    family = "pool"
    doc = ("Global average pooling to Cx1x1 (torch.nn.AdaptiveAvgPool2d(1)). A following "
           "`linear` flattens it; a following 1x1 `conv` sees a 1x1 map (squeeze-excitation).")

    def shape(self, a, x):
        c, _, _ = spatial(self.name, x)
        return (c, 1, 1)

    def params_count(self, a, x):
        return 0, 0

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return numel(x)  # one add per input element (and one divide per channel, negligible)

    def torch(self, a, x, y):
        return TorchModule("torch.nn.AdaptiveAvgPool2d", dict(output_size=1))

    def describe(self, a):
        return "global avgpool"


@register
class GlobalMaxPool(GlobalAvgPool):
    name = "gmp"
    aliases = ("global_maxpool",)
    doc = "Global max pooling to Cx1x1 (torch.nn.AdaptiveMaxPool2d(1))."

    def torch(self, a, x, y):
        return TorchModule("torch.nn.AdaptiveMaxPool2d", dict(output_size=1))

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
           "GoogLeNet auxiliary heads and AlexNet do.")
    params = (Param("size", Pair(), doc="output height and width: 4, or 6x6"),)

    def shape(self, a, x):
        c, h, w = spatial(self.name, x)
        oh, ow = a["size"]
        if oh > h or ow > w:
            raise ShapeError(f"`adaptive_avgpool` to {oh}x{ow} needs an input at least that "
                             f"large, got {h}x{w}", arg="size", code="E0403")
        return (c, oh, ow)

    def params_count(self, a, x):
        return 0, 0

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        # one add per window tap (windows may overlap), exactly as PyTorch computes them
        return x[0] * _adaptive_windows(x[1], y[1]) * _adaptive_windows(x[2], y[2])

    def torch(self, a, x, y):
        return TorchModule("torch.nn.AdaptiveAvgPool2d", dict(output_size=a["size"]))

    def describe(self, a):
        return f"adaptive avgpool {a['size'][0]}x{a['size'][1]}"
