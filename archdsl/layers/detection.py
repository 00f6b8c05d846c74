"""Layers of detection heads."""

from __future__ import annotations

from ..shapes import MAP1D, Shape
from .registry import LayerKind, Param, Params, ShapeError, TorchModule, numel, register
from .types import Int


@register
class DFL(LayerKind):
    name = "dfl"
    family = "conv"
    doc = ("The integral of Distribution Focal Loss (Li et al., \"Generalized Focal Loss\", "
           "NeurIPS 2020), as YOLOv8's head decodes a box: each of the 4 sides of a box is "
           "predicted as a distribution over `bins` distances; a softmax over the bins and "
           "their expected value (a 1x1 convolution whose weights are 0, 1, ..., bins - 1, "
           "frozen) give the distance. Takes 4 x bins channels along the anchors "
           "(4·bins x A, a 1-D map) and gives 4 x A. Its `bins` weights are parameters "
           "without gradients, as Ultralytics' DFL holds them: frozen, counted apart.")
    params = (Param("bins", Int(2), 16, doc="distances per side (Ultralytics' reg_max)"),)
    accepts = (MAP1D,)
    saves = ()  # the softmax's output (the convolution's input: one tensor) is kept

    def saved_extra(self, a, x, y):
        return ((numel(x), "act"),)

    def shape(self, a, x):
        if x[0] != 4 * a["bins"]:
            raise ShapeError(f"`dfl` needs 4 x {a['bins']} = {4 * a['bins']} channels (a "
                             f"distribution of {a['bins']} bins for each side of a box), "
                             f"got {x[0]}", arg="bins",
                             help=f"the box branch ends in conv({4 * a['bins']}, 1)")
        return Shape((4, x[1]), MAP1D)

    def params_count(self, a, x):
        return Params(frozen=a["bins"])

    def macs(self, a, x, y):
        return numel(x)  # the expected value: one multiply-add per bin of each side

    def flops(self, a, x, y):
        return 5 * numel(x)  # softmax (exp, sum, divide: 3), then the weighted sum (2)

    def torch(self, a, x, y):
        return TorchModule("archdsl.backends.torch_modules.DFL", dict(bins=a["bins"]))

    def describe(self, a):
        return f"DFL integral, {a['bins']} bins"
