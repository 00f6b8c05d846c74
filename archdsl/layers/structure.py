"""Layers that only move data: identity, flatten, zeropad; and the regularisers dropout and
droppath, which are the identity at inference."""

from __future__ import annotations

from .registry import (LayerKind, Param, TorchFunction, TorchModule, numel, register, spatial)
from .types import Float, Pads4


class NoCost(LayerKind):
    """Moves or masks data: no parameters, no multiply-adds, no arithmetic at inference."""

    def params_count(self, a, x):
        return 0, 0

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return 0


@register
class Identity(NoCost):
    name = "identity"
    family = "structure"
    doc = "Passes its input through unchanged (the shortcut branch of a residual block)."

    def shape(self, a, x):
        return x

    def torch(self, a, x, y):
        return TorchFunction("{x}")


@register
class Flatten(NoCost):
    name = "flatten"
    family = "structure"
    doc = "Flattens a feature map to a vector of C*H*W features (channel-major, as torch.flatten)."

    def shape(self, a, x):
        return (numel(x),)

    def torch(self, a, x, y):
        return TorchFunction("torch.flatten({x}, 1)")


@register
class ZeroPad(NoCost):
    name = "zeropad"
    family = "structure"
    doc = ("Pads a feature map with zeros (torch.nn.ZeroPad2d): `zeropad(1)`, per axis "
           "`zeropad([1, 2])` (height, width), or `zeropad([left, right, top, bottom])`.")
    params = (Param("pad", Pads4(), doc="pixels to add"),)

    def shape(self, a, x):
        c, h, w = spatial(self.name, x)
        left, right, top, bottom = a["pad"]
        return (c, h + top + bottom, w + left + right)

    def torch(self, a, x, y):
        return TorchModule("torch.nn.ZeroPad2d", dict(padding=a["pad"]))

    def describe(self, a):
        return "zeropad " + ",".join(str(p) for p in a["pad"])


@register
class Dropout(NoCost):
    name = "dropout"
    family = "regularization"
    doc = "Zeroes a random fraction p of the elements while training (torch.nn.Dropout)."
    params = (Param("p", Float(0.0, 1.0), 0.5, "probability of dropping an element, in [0, 1)"),)
    passes_input_through = True  # the input itself in eval mode; backward reads the mask

    def shape(self, a, x):
        return x

    def torch(self, a, x, y):
        return TorchModule("torch.nn.Dropout", dict(p=a["p"]))

    def describe(self, a):
        return f"dropout {a['p']:g}"


@register
class DropPath(NoCost):
    name = "droppath"
    aliases = ("stochastic_depth",)
    family = "regularization"
    doc = ("Stochastic depth (Huang et al. 2016): while training, drops the whole sample's "
           "residual branch with probability p and rescales the rest, as torchvision's "
           "StochasticDepth(p, 'row').")
    params = (Param("p", Float(0.0, 1.0), 0.0, "probability of dropping a sample's path"),)
    passes_input_through = True  # the input itself in eval mode; backward reads the mask

    def shape(self, a, x):
        return x

    def torch(self, a, x, y):
        return TorchModule("archdsl.backends.torch_modules.DropPath", dict(p=a["p"]))

    def describe(self, a):
        return f"droppath {a['p']:g}"
