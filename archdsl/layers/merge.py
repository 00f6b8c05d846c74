"""Merges: the layers that join branches. A branch starts from the merge's input, or from a
named tensor (`branch: from c4 ...`); a merge combines their outputs, which must share a
layout. Shapes are checked strictly (add) or with broadcasting (mul); concat joins along the
first axis of the layout (channels of maps, features of vectors, positions of sequences)."""

from __future__ import annotations

from ..shapes import FEATURES, GRID, LAYOUT_WORDS, LAYOUTS, SEQ
from .registry import LayerKind, Params, ShapeError, TorchFunction, numel, register, show


class Merge(LayerKind):
    output_disposable = True  # its backward does not read its output
    is_merge = True
    family = "merge"
    accepts = FEATURES

    def same_layout(self, xs) -> None:
        layouts = {x.layout for x in xs}
        if len(layouts) > 1:
            raise ShapeError(f"`{self.name}` needs branches of one layout, got "
                             + ", ".join(f"{LAYOUT_WORDS[x.layout]} {show(x)}" for x in xs),
                             help="move every branch to the same layout first (rearrange, "
                                  "flatten, pick)")

    def params_count(self, a, xs):
        return Params()

    def macs(self, a, xs, y):
        return 0


def _shapes(xs) -> str:
    return ", ".join(show(x) for x in xs)


@register
class Add(Merge):
    decoding = "position"  # element by element
    name = "add"
    runs_in_place = True
    saves = ()
    doc = "Element-wise sum of branches of equal shape (residual connections)."

    def shape(self, a, xs):
        self.same_layout(xs)
        if any(x != xs[0] for x in xs):
            raise ShapeError(f"`add` needs branches of equal shape, got {_shapes(xs)}",
                             help="make the branches agree, e.g. a 1x1 conv with the right "
                                  "channels and stride on the shortcut")
        return xs[0]

    def flops(self, a, xs, y):
        return (len(xs) - 1) * numel(y)

    def torch(self, a, xs, y):
        return TorchFunction(" + ".join(["{}"] * len(xs)),
                             in_place="{}" + "".join([".add_({})"] * (len(xs) - 1)))


@register
class Mul(Merge):
    decoding = "position"
    name = "mul"
    doc = ("Element-wise product of branches, broadcasting sizes of 1 (squeeze-and-excitation: "
           "Cx1x1 gates times a CxHxW map).")

    def shape(self, a, xs):
        self.same_layout(xs)
        out = []
        for sizes in zip(*xs):
            big = {s for s in sizes if s != 1}
            if len(big) > 1:
                raise ShapeError(f"`mul` cannot broadcast {_shapes(xs)}",
                                 help="each size must be equal across branches or 1")
            out.append(big.pop() if big else 1)
        return xs[0].like(out)

    def flops(self, a, xs, y):
        return (len(xs) - 1) * numel(y)

    def torch(self, a, xs, y):
        return TorchFunction(" * ".join(["{}"] * len(xs)))


@register
class Concat(Merge):
    name = "concat"
    saves = ()
    doc = ("Concatenation of branches along the first axis: the channels of maps (Inception, "
           "DenseNet; the other sizes must agree), the features of vectors, the positions of "
           "sequences (ViT's class token before the patches); a grid's along its features, "
           "the last axis.")
    accepts = LAYOUTS

    @staticmethod
    def axis(x) -> int:
        return x.feature_axis if x.layout == GRID else 0

    def shape(self, a, xs):
        self.same_layout(xs)
        axis = self.axis(xs[0])
        rest = [tuple(x[:axis]) + tuple(x[axis + 1:]) for x in xs]
        if any(r != rest[0] for r in rest):
            what = ("features" if xs[0].layout == SEQ else "positions" if xs[0].layout == GRID
                    else "height and width" if len(xs[0]) == 3 else "sizes after the first")
            raise ShapeError(f"`concat` needs branches of equal {what}, got {_shapes(xs)}",
                             help="give every branch the same spatial stride and padding"
                             if xs[0].is_map else None)
        sizes = list(xs[0])
        sizes[axis] = sum(x[axis] for x in xs)
        return xs[0].like(sizes)

    def flops(self, a, xs, y):
        return 0  # copies only

    def torch(self, a, xs, y):
        return TorchFunction("torch.cat([" + ", ".join(["{}"] * len(xs)) + "], "
                             f"{self.axis(xs[0]) + 1})")
