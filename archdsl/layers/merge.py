"""Merges: the layers that join branches. Every branch gets the same input; a merge combines
their outputs. Shapes are checked strictly (add) or with broadcasting (mul)."""

from __future__ import annotations

from .registry import LayerKind, ShapeError, TorchFunction, numel, register, show


class Merge(LayerKind):
    output_disposable = True  # its backward does not read its output
    is_merge = True
    family = "merge"

    def params_count(self, a, xs):
        return 0, 0

    def macs(self, a, xs, y):
        return 0


def _shapes(xs) -> str:
    return ", ".join(show(x) for x in xs)


@register
class Add(Merge):
    name = "add"
    runs_in_place = True
    doc = "Element-wise sum of branches of equal shape (residual connections)."

    def shape(self, a, xs):
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
    name = "mul"
    doc = ("Element-wise product of branches, broadcasting sizes of 1 (squeeze-and-excitation: "
           "Cx1x1 gates times a CxHxW map).")

    def shape(self, a, xs):
        rank = len(xs[0])
        if any(len(x) != rank for x in xs):
            raise ShapeError(f"`mul` needs branches of the same rank, got {_shapes(xs)}")
        out = []
        for sizes in zip(*xs):
            big = {s for s in sizes if s != 1}
            if len(big) > 1:
                raise ShapeError(f"`mul` cannot broadcast {_shapes(xs)}",
                                 help="each size must be equal across branches or 1")
            out.append(big.pop() if big else 1)
        return tuple(out)

    def flops(self, a, xs, y):
        return (len(xs) - 1) * numel(y)

    def torch(self, a, xs, y):
        return TorchFunction(" * ".join(["{}"] * len(xs)))


@register
class Concat(Merge):
    name = "concat"
    doc = "Concatenation of branches along channels (Inception, DenseNet); H and W must agree."

    def shape(self, a, xs):
        rank = len(xs[0])
        if any(len(x) != rank for x in xs):
            raise ShapeError(f"`concat` needs branches of the same rank, got {_shapes(xs)}")
        if rank == 3 and any(x[1:] != xs[0][1:] for x in xs):
            raise ShapeError(f"`concat` needs branches of equal height and width, got {_shapes(xs)}",
                             help="give every branch the same spatial stride and padding")
        return (sum(x[0] for x in xs), *xs[0][1:])

    def flops(self, a, xs, y):
        return 0  # copies only

    def torch(self, a, xs, y):
        return TorchFunction("torch.cat([" + ", ".join(["{}"] * len(xs)) + "], 1)")
