"""Pooling: maxpool, avgpool (windows), gap and gmp (global)."""

from __future__ import annotations

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
        return TorchModule(self.torch_class, self.torch_kwargs(a, padding),
                           pre=tuple(("pad", p, self.pad_value) for p in pre))

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
    (window i spans floor(i*size/out) to ceil((i+1)*size/out))."""
    return sum(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))


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
