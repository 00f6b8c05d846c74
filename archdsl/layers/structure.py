"""Layers that only move data: identity, flatten, zeropad; and the regularisers dropout and
droppath, which are the identity at inference."""

from __future__ import annotations

import math
import re

from ..shapes import (FEATURES, FEATURES_LAST, GRID, LAYOUT_WORDS, LAYOUTS, MAP2D, MAPS, SEQ,
                      TOKENS, VECTOR, Shape, default_layout, describe as describe_shape,
                      layout_rank)
from .registry import (LayerKind, NoCost, Param, Params, ShapeError, TorchFunction, TorchModule,
                       numel, register, show)
from .types import (ArgType, ArgumentError, Choice, Float, Int, Optional, Pads4,
                    describe_value)


@register
class Identity(NoCost):
    name = "identity"
    view = True
    family = "structure"
    doc = "Passes its input through unchanged (the shortcut branch of a residual block)."
    accepts = LAYOUTS
    decoding = "position"

    def shape(self, a, x):
        return x

    def torch(self, a, x, y):
        return TorchFunction("{x}")


@register
class Flatten(NoCost):
    name = "flatten"
    view = True
    family = "structure"
    doc = ("Flattens a feature map to a vector of C*H*W features (channel-major, as "
           "torch.flatten); a sequence to a vector of L*D, a grid to one of H*W*D.")
    accepts = (VECTOR, *MAPS, *FEATURES_LAST)

    def shape(self, a, x):
        return Shape((numel(x),), VECTOR)

    def torch(self, a, x, y):
        return TorchFunction("torch.flatten({x}, 1)")


@register
class ZeroPad(NoCost):
    name = "zeropad"
    family = "structure"
    doc = ("Pads a feature map or a grid with zeros (torch.nn.ZeroPad2d): `zeropad(1)`, per "
           "axis `zeropad([1, 2])` (height, width), or `zeropad([left, right, top, bottom])`.")
    params = (Param("pad", Pads4(), doc="pixels to add"),)
    accepts = (MAP2D, GRID)

    def shape(self, a, x):
        left, right, top, bottom = a["pad"]
        if x.layout == GRID:
            h, w, c = x
            return x.like((h + top + bottom, w + left + right, c))
        c, h, w = x
        return x.like((c, h + top + bottom, w + left + right))

    def torch(self, a, x, y):
        if x.layout == GRID:  # the positions are the axes before the last
            left, right, top, bottom = a["pad"]
            return TorchFunction(f"F.pad({{x}}, (0, 0, {left}, {right}, {top}, {bottom}))")
        return TorchModule("torch.nn.ZeroPad2d", dict(padding=a["pad"]))

    def describe(self, a):
        return "zeropad " + ",".join(str(p) for p in a["pad"])


@register
class Dropout(NoCost):
    name = "dropout"
    decoding = "position"  # element by element (and nothing while generating: eval mode)

    def saved_extra(self, a, x, y):
        return ((numel(y), "bool"),) if a["p"] else ()  # which values were kept
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


# ---- moving between layouts, slicing channels, free tensors -----------------------------------


@register
class Channels(NoCost):
    name = "channels"
    view = True
    family = "structure"
    doc = ("The channels `start` to `stop` (stop excluded) of a map, or those features of a "
           "vector: ShuffleNet V2's channel split is `channels(0, in.c // 2)` in one branch "
           "and `channels(in.c // 2)` in the other.")
    params = (
        Param("start", Int(0), doc="first channel kept"),
        Param("stop", Optional(Int(1)), None, "channel after the last kept; `none`: the end"),
    )
    accepts = (VECTOR, *MAPS)

    def shape(self, a, x):
        stop = x[0] if a["stop"] is None else a["stop"]
        if not a["start"] < stop <= x[0]:
            raise ShapeError(f"channels {a['start']} to {stop} are not a slice of the {x[0]} "
                             "channels here", help=f"choose 0 <= start < stop <= {x[0]}",
                             arg="stop" if stop > x[0] else "start", code="E0304")
        return x.like((stop - a["start"], *x[1:]))

    def torch(self, a, x, y):
        stop = "" if a["stop"] is None or a["stop"] == x[0] else str(a["stop"])
        return TorchFunction(f"{{x}}[:, {a['start'] or ''}:{stop}]")

    def describe(self, a):
        return f"channels {a['start']}:{'' if a['stop'] is None else a['stop']}"


@register
class ChannelShuffle(NoCost):
    name = "channel_shuffle"
    family = "structure"
    doc = ("Interleaves the channels of `groups` groups (ShuffleNet, Zhang et al. 2018): "
           "channel j of group i moves to position j * groups + i, as torchvision's "
           "channel_shuffle.")
    params = (Param("groups", Int(1), doc="groups to interleave; must divide the channels"),)
    accepts = MAPS

    def shape(self, a, x):
        if x[0] % a["groups"]:
            raise ShapeError(f"`groups={a['groups']}` must divide the {x[0]} channels",
                             arg="groups", code="E0405")
        return x

    def torch(self, a, x, y):
        return TorchFunction(f"{{x}}.unflatten(1, ({a['groups']}, -1)).transpose(1, 2)"
                             ".flatten(1, 2)")

    def describe(self, a):
        return f"channel shuffle {a['groups']}"


@register
class Pick(NoCost):
    name = "pick"
    view = True
    family = "structure"
    doc = ("One position of a sequence, as a vector: `pick(0)` is ViT's class token "
           "(x[:, 0]); negative positions count from the end (`pick(-1)`, the last token).")
    params = (Param("index", Int(), doc="the position"),)
    accepts = (SEQ,)

    def shape(self, a, x):
        if not -x[0] <= a["index"] < x[0]:
            raise ShapeError(f"position {a['index']} is outside the sequence of {x[0]}",
                             help=f"positions run from 0 to {x[0] - 1} (or -{x[0]} to -1)",
                             arg="index", code="E0304")
        return Shape((x[1],), VECTOR)

    def torch(self, a, x, y):
        return TorchFunction(f"{{x}}[:, {a['index']}]")

    def describe(self, a):
        return f"pick {a['index']}"


class _TensorSizes(ArgType):
    description = "sizes such as 768, 1x768 or 96x1x1"

    def accept(self, value):
        sizes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if (isinstance(sizes, (list, tuple)) and 1 <= len(sizes) <= 4
                and all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)):
            if min(sizes) < 1:
                raise ArgumentError(f"expected {self.description}, got "
                                    f"{describe_value(value)}", code="E0304")
            return tuple(sizes)
        raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")


class _Init(ArgType):
    description = 'a number to fill it with, or "normal" (std 0.02)'

    def accept(self, value):
        if value == "normal":
            return value
        return Float().accept(value)


@register
class FreeParam(LayerKind):
    name = "param"
    saves = ()
    family = "structure"
    doc = ("A learned tensor of the given sizes, in the layout of its input, which it ignores "
           "but for the batch size (it is broadcast over the batch): a class token "
           "`param(1x768)` concatenated before the patches, a position embedding "
           "`param(197x768)` added to them, a layer scale `param(96x1x1, init=1e-6)` "
           "multiplied in. Initialised to `init`, a number, or \"normal\" (std 0.02).")
    params = (
        Param("sizes", _TensorSizes(), doc="its sizes, batch excluded"),
        Param("init", _Init(), 0.0, "its initial value"),
    )
    accepts = FEATURES

    def shape(self, a, x):
        if len(a["sizes"]) != len(x):
            raise ShapeError(f"`param` here takes the layout of its input, {describe_shape(x)}: "
                             f"it needs {len(x)} size{'s' if len(x) > 1 else ''}, got "
                             f"{show(a['sizes'])}", arg="sizes", code="E0304",
                             help="a sequence's tensor is LxD (1x768), a map's CxHxW (96x1x1)")
        return x.like(a["sizes"])

    def params_count(self, a, x):
        return Params(numel(a["sizes"]))

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return 0

    def torch(self, a, x, y):
        return TorchModule("archdsl.backends.torch_modules.FreeTensor",
                           dict(shape=a["sizes"], init=a["init"]))

    def describe(self, a):
        return f"param {show(a['sizes'])}"


class _Pattern(ArgType):
    description = 'an einops pattern such as "c h w -> (h w) c"'

    def accept(self, value):
        if not isinstance(value, str):
            raise ArgumentError(f"expected {self.description}, got {describe_value(value)}")
        try:
            parse_pattern(value)
        except ValueError as error:
            raise ArgumentError(f"bad pattern {describe_value(value)}: {error}",
                                help='write axes by name, groups in parentheses: '
                                     '"c h w -> (h w) c"') from None
        return value


def parse_pattern(text: str) -> tuple[list[list[str]], list[list[str]]]:
    """`"(h w) c -> c h w"` as ([["h", "w"], ["c"]], [["c"], ["h"], ["w"]])."""
    if text.count("->") != 1:
        raise ValueError("it needs one `->` between the input's axes and the output's")
    sides = []
    for side in text.split("->"):
        groups, group = [], None
        for token in re.findall(r"\(|\)|[A-Za-z_]\w*|\S", side):
            if token == "(":
                if group is not None:
                    raise ValueError("groups cannot be nested")
                group = []
            elif token == ")":
                if not group:
                    raise ValueError("a `)` without its `(`, or an empty group")
                groups.append(group)
                group = None
            elif token.isidentifier():
                if group is not None:
                    group.append(token)
                else:
                    groups.append([token])
            else:
                raise ValueError(f"`{token}` is not an axis name")
        if group is not None:
            raise ValueError("a `(` is not closed")
        if not groups:
            raise ValueError("a side has no axes")
        sides.append(groups)
    lhs, rhs = sides
    left = [n for g in lhs for n in g]
    right = [n for g in rhs for n in g]
    for names in (left, right):
        twice = {n for n in names if names.count(n) > 1}
        if twice:
            raise ValueError(f"axis `{sorted(twice)[0]}` appears twice on one side")
    if set(left) != set(right):
        odd = sorted(set(left) ^ set(right))[0]
        raise ValueError(f"axis `{odd}` is on one side only")
    return lhs, rhs


@register
class Rearrange(NoCost):
    name = "rearrange"
    family = "structure"
    doc = ("Reorders and regroups the axes of a tensor, batch excluded, in einops notation: "
           "`rearrange(\"c h w -> (h w) c\")` turns a map into a sequence of its pixels (ViT's "
           "patches), `rearrange(\"(h w) c -> c h w\", h=14)` turns it back; sizes a group "
           "leaves unknown are given by name. The result's layout is `layout`, by default "
           "from its rank: a vector, a sequence (2 axes), a 2-D map or, where the input's "
           "features end up last, a grid (3 axes: `rearrange(\"c h w -> h w c\")`, channels "
           "last), a 3-D map; a 1-D map needs `layout=\"map1d\"`.")
    params = (
        Param("pattern", _Pattern(), doc="input axes -> output axes"),
        Param("layout", Optional(Choice(*(lay for lay in LAYOUTS if lay != TOKENS))), None,
              "the output's layout"),
    )
    accepts = FEATURES
    named_sizes = True  # `h=14`: the sizes of axes, in a["sizes"]

    def axis_sizes(self, a, x) -> dict[str, int]:
        lhs, _ = parse_pattern(a["pattern"])
        if len(lhs) != len(x):
            raise ShapeError(f"the pattern's input side has {len(lhs)} axes, the input "
                             f"{show(x)} has {len(x)}", arg="pattern", code="E0304")
        sizes = dict(a.get("sizes") or {})
        names = {n for g in lhs for n in g}
        for name in sizes:
            if name not in names:
                raise ShapeError(f"the pattern has no axis `{name}`", arg=name, code="E0205")
        for group, size in zip(lhs, x):
            unknown = [n for n in group if n not in sizes]
            known = math.prod(sizes[n] for n in group if n in sizes)
            if len(unknown) > 1:
                raise ShapeError(f"the sizes of {', '.join(unknown)} in `({' '.join(group)})` "
                                 f"are unknown", arg="pattern", code="E0304",
                                 help=f"give all but one by name: {unknown[0]}=...")
            if unknown:
                if size % known:
                    raise ShapeError(f"{size} does not split into ({' '.join(group)}) with "
                                     + ", ".join(f"{n}={sizes[n]}" for n in group if n in sizes),
                                     arg="pattern", code="E0304")
                sizes[unknown[0]] = size // known
            elif known != size:
                raise ShapeError(f"`({' '.join(group)})` is {known}, the input's axis is {size}",
                                 arg="pattern", code="E0304")
        return sizes

    def shape(self, a, x):
        sizes = self.axis_sizes(a, x)
        _, rhs = parse_pattern(a["pattern"])
        out = tuple(math.prod(sizes[n] for n in g) for g in rhs)
        layout = a["layout"] or self.default_layout(a, x, len(out))
        if layout_rank(layout) != len(out):
            raise ShapeError(f"{LAYOUT_WORDS[layout]} has {layout_rank(layout)} axes, the "
                             f"pattern gives {len(out)}", arg="layout", code="E0304")
        return Shape(out, layout)

    @staticmethod
    def default_layout(a, x, rank: int) -> str:
        """Two axes are a sequence. Three are a grid when the axes of the input's features (a
        map's channels, a sequence's or a grid's last axis) end up in the last group —
        `c h w -> h w c`, `(h w) c -> h w c`, `(h a) (w b) c -> h w (b a c)` — else a map."""
        if rank == 2:
            return SEQ
        if rank == 3 and x.layout != VECTOR:
            lhs, rhs = parse_pattern(a["pattern"])
            if set(lhs[x.feature_axis]) & set(rhs[-1]):
                return GRID
        return default_layout(rank)

    def torch(self, a, x, y):
        """Split groups with unflatten, reorder with permute, join groups with flatten: no
        size is written in but those the spec names (`h=14`), so a module built for one
        input size takes others where the pattern allows (ViT's patches, YOLO's anchors)."""
        sizes = self.axis_sizes(a, x)
        named = a.get("sizes") or {}
        lhs, rhs = parse_pattern(a["pattern"])
        axes = [n for g in lhs for n in g]
        order = [axes.index(n) + 1 for g in rhs for n in g]
        text = "{x}"
        dim = 1
        for group in lhs:
            if len(group) > 1:  # the one size the spec leaves to the input is -1
                parts = [str(sizes[n]) if n in named else "-1" for n in group]
                text += f".unflatten({dim}, ({', '.join(parts)}))"
            dim += len(group)
        if order != sorted(order):
            text += ".permute(0, " + ", ".join(map(str, order)) + ")"
        starts = []
        dim = 1
        for group in rhs:
            starts.append((dim, len(group)))
            dim += len(group)
        for start, n in reversed(starts):  # the last first: the earlier dims stay in place
            if n > 1:
                text += f".flatten({start}, {start + n - 1})"
        return TorchFunction(text)

    def describe(self, a):
        return f"rearrange {a['pattern']}"
